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
    from tasks.generate import generate_exports

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
