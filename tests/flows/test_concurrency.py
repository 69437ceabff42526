"""No double loads: two loads of the same survey and year never run at the same time."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import text

from flows.annual import annual_run
from warehouse.db import create_warehouse_engine
from warehouse.locks import LoadLockTimeoutError, load_lock

YEAR = 2024


def test_a_held_lock_makes_the_next_load_wait_then_fail_in_one_line(backend_url: str) -> None:
    create_warehouse_engine(backend_url)  # creates the DuckDB file's folder
    with load_lock(backend_url, "ifo", YEAR, timeout=5):
        with (
            pytest.raises(LoadLockTimeoutError, match="another load of ifo 2024 is still running"),
            load_lock(backend_url, "ifo", YEAR, timeout=0.5),
        ):
            pytest.fail("two holders of one lock")
        with load_lock(backend_url, "fh", YEAR, timeout=0.5):
            pass  # another survey-year is not blocked
    with load_lock(backend_url, "ifo", YEAR, timeout=0.5):
        pass  # released


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_server")
def test_two_concurrent_runs_load_one_after_the_other(
    backend_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from sample.generate import generate_exports

    generate_exports(tmp_path / "source", [YEAR], n_kommuner=4, seed=5)
    states: list[Any] = []

    def run() -> None:
        states.append(
            annual_run(
                source=str(tmp_path / "source"),
                year=YEAR,
                surveys=["ifo"],
                warehouse=backend_url,
                return_state=True,
            )
        )

    # the warehouse is migrated first, so the two runs race for the load, not the migration
    create_warehouse_engine(backend_url)
    from warehouse.db import upgrade

    upgrade(create_warehouse_engine(backend_url))
    threads = [threading.Thread(target=run) for _ in range(2)]
    # both runs start while a load of ifo 2024 is under way, so both must wait for it
    with load_lock(backend_url, "ifo", YEAR, timeout=5):
        for thread in threads:
            thread.start()
        time.sleep(3)
    for thread in threads:
        thread.join()
    assert [state.is_completed() for state in states] == [True, True]
    assert "waiting for another load of ifo 2024" in caplog.text
    with create_warehouse_engine(backend_url).connect() as conn:
        loads = pd.read_sql(
            text("SELECT status, started_at, finished_at FROM audit.loads ORDER BY started_at"),
            conn,
        )
        respondents = conn.execute(text("SELECT count(*) FROM raw.respondents")).scalar_one()
        loaded = conn.execute(
            text(
                "SELECT sum(rows_loaded) FROM audit.load_files WHERE kind = 'answers' "
                "AND load_id = (SELECT max(load_id) FROM audit.loads)"
            )
        ).scalar_one()
        duplicates = conn.execute(
            text(
                "SELECT count(*) FROM (SELECT level, area_code, verksamhet, gender, question_id "
                "FROM reporting.results GROUP BY 1, 2, 3, 4, 5 HAVING count(*) > 1) AS d"
            )
        ).scalar_one()
    assert loads["status"].tolist() == ["published", "published"]
    assert loads["finished_at"].iloc[0] <= loads["started_at"].iloc[1]
    assert respondents == loaded > 0
    assert duplicates == 0


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_server")
@pytest.mark.parametrize("taken_meanwhile", [False, True])
def test_a_load_whose_lock_session_ends_publishes_only_under_its_lock_again(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, taken_meanwhile: bool
) -> None:
    """PostgreSQL ends every session of the load after its audit (as a restart does). The load
    takes its lock again before publishing; if another load has taken it meanwhile, IFO fails
    in one line with nothing published, and FH is still loaded."""
    from flows import load
    from sample.generate import generate_exports
    from warehouse.locks import lock_key

    generate_exports(tmp_path / "source", [YEAR], n_kommuner=3, seed=3)
    engine = create_warehouse_engine(postgres_url)
    other_load = engine.connect()

    def sessions_ended(point: str) -> None:
        if point != "after-audit":
            return
        other_load.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        if taken_meanwhile:
            other_load.execute(text(f"SELECT pg_advisory_lock({lock_key(f'ifo-{YEAR}')})"))
        monkeypatch.setattr(load, "pause_point", lambda _point: None)  # once

    monkeypatch.setattr(load, "pause_point", sessions_ended)
    try:
        state = annual_run(
            source=str(tmp_path / "source"), year=YEAR, warehouse=postgres_url, return_state=True
        )
    finally:
        other_load.close()
    summary: Any = state.result(raise_on_failure=False)
    with engine.connect() as conn:
        loads = conn.execute(text("SELECT survey, status FROM audit.loads ORDER BY load_id"))
        statuses = [tuple(row) for row in loads]
    if taken_meanwhile:
        assert summary.problems == [
            f"ifo {YEAR}: the load of ifo {YEAR} lost its lock when its database session "
            "ended, and another load holds it now: nothing was published"
        ]
        assert statuses == [("ifo", "failed"), ("fh", "published")]
    else:
        assert state.is_completed(), state.message
        assert statuses == [("ifo", "published"), ("fh", "published")]
