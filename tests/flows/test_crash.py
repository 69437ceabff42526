"""Crash safety: a load killed at any point leaves the published figures as they were.

A real subprocess runs the annual flow with ``BRUKARDATA_TEST_PAUSE_AT`` naming a point of the
load; when it says it paused there, it is killed with SIGKILL (no cleanup runs). Every reporting
view must then read exactly as before, and the next run must complete.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL
from sqlalchemy import text

from flows.annual import annual_run
from tests.conftest import PROJECT
from tests.flows.test_rerun import view_checksums
from warehouse.db import create_warehouse_engine
from warehouse.load import INTERRUPTED, PAUSE_AT

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_server")]

YEAR = 2024
POINTS = ("after-begin", "after-stage", "after-audit", "before-commit")


def _killed_at(point: str, source: Path, warehouse: str) -> None:
    """Run the annual flow in a subprocess and SIGKILL it when it pauses at ``point``."""
    call = (
        "from flows.annual import annual_run; "
        f"annual_run(source={str(source)!r}, year={YEAR}, surveys=['ifo'], "
        f"warehouse={warehouse!r})"
    )
    env = {**os.environ, PAUSE_AT: point, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    process = subprocess.Popen(
        [sys.executable, "-c", call], cwd=PROJECT, env=env, stderr=subprocess.PIPE
    )
    assert process.stderr is not None
    watchdog = threading.Timer(60, process.kill)  # a load that never pauses fails, not hangs
    watchdog.start()
    try:
        for line in process.stderr:
            if line.strip() == f"paused at {point}".encode():
                break
        else:
            pytest.fail(f"the load ended without pausing at {point}")
    finally:
        watchdog.cancel()
        process.send_signal(signal.SIGKILL)
        process.wait()


def test_a_load_killed_at_any_point_leaves_the_published_figures(tmp_path: Path) -> None:
    from sample.generate import generate_exports

    generate_exports(tmp_path / "source", [YEAR], n_kommuner=4, seed=3)
    warehouse = f"duckdb:///{tmp_path / 'w.duckdb'}"
    first = annual_run(
        source=str(tmp_path / "source"),
        year=YEAR,
        surveys=["ifo"],
        warehouse=warehouse,
        return_state=True,
    )
    assert first.is_completed(), first.message
    published = view_checksums(warehouse)
    # a changed input, so a load that got through would change the figures
    answers = sorted((tmp_path / "source" / "ifo" / str(YEAR)).glob("ifo_*_[0-9]*.csv"))[0]
    lines = answers.read_bytes().rstrip(b"\r\n").splitlines(keepends=True)
    answers.write_bytes(b"".join(lines[:-1]))

    for point in POINTS:
        _killed_at(point, tmp_path / "source", warehouse)
        after = view_checksums(warehouse)
        # the dead load shows as running in load_history; every figure is as published
        assert {k: v for k, v in after.items() if k != "load_history"} == {
            k: v for k, v in published.items() if k != "load_history"
        }, point

    final = annual_run(
        source=str(tmp_path / "source"),
        year=YEAR,
        surveys=["ifo"],
        warehouse=warehouse,
        return_state=True,
    )
    assert final.is_completed(), final.message
    with create_warehouse_engine(warehouse).connect() as conn:
        statuses = conn.execute(
            text("SELECT status, error FROM audit.loads ORDER BY load_id")
        ).all()
        staged = conn.execute(text("SELECT count(*) FROM staging.respondents")).scalar_one()
    assert [status for status, _ in statuses] == ["published", *["failed"] * 4, "published"]
    assert all(error == INTERRUPTED for _, error in statuses[1:-1])
    assert staged == 0
    assert view_checksums(warehouse)["results"] != published["results"]
