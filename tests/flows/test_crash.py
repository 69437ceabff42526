"""Crash safety: a load killed at any point leaves the published figures as they were.

A real subprocess runs the annual flow with ``PauseAt.point`` naming a point of the
load; when it says it paused there, it is killed with SIGKILL (no cleanup runs). Every reporting
view must then read exactly as before, and the next run must complete. A killed
``brukardata run`` leaves a temporary Prefect server and a Running flow run behind: the next
command stops the one and marks the other Crashed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL
from sqlalchemy import text

from flows.annual import annual_run
from flows.leftovers import SERVER_APP, command_line, is_running, process_start
from tests.conftest import PROJECT
from tests.flows.conftest import BRUKARDATA
from tests.flows.test_rerun import view_checksums
from warehouse.db import create_warehouse_engine
from warehouse.load import INTERRUPTED

pytestmark = pytest.mark.prefect

YEAR = 2024
POINTS = ("after-begin", "after-stage", "after-audit", "before-commit")


def paused_at(point: str) -> str:
    """Python that makes a load of this process pause at ``point``."""
    return f"from warehouse.load import PauseAt; PauseAt.point = {point!r}"


def _killed_at(point: str, source: Path, warehouse: str) -> None:
    """Run the annual flow in a subprocess and SIGKILL it when it pauses at ``point``."""
    call = (
        f"{paused_at(point)}; from flows.annual import annual_run; "
        f"annual_run(source={str(source)!r}, year={YEAR}, surveys=['ifo'], "
        f"warehouse={warehouse!r})"
    )
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
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


@pytest.mark.usefixtures("prefect_server")
def test_a_load_killed_at_any_point_leaves_the_published_figures(
    tmp_path: Path, backend_url: str
) -> None:
    from sample.generate import generate_exports

    generate_exports(tmp_path / "source", [YEAR], n_kommuner=4, seed=3)
    warehouse = backend_url
    (tmp_path / "warehouse").mkdir()  # a DuckDB file's folder
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


def _children(pid: int) -> list[int]:
    """The PIDs of process ``pid``'s children, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text(encoding="utf-8", errors="replace").rsplit(")", 1)[-1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _paused(process: subprocess.Popen[bytes], point: str, timeout: float) -> None:
    """Read the process's stderr until it says it paused at ``point``."""
    assert process.stderr is not None
    watchdog = threading.Timer(timeout, process.kill)
    watchdog.start()
    try:
        for line in process.stderr:
            if line.strip() == f"paused at {point}".encode():
                return
        pytest.fail(f"the run ended without pausing at {point}")
    finally:
        watchdog.cancel()


def _flow_run_states(prefect_home: Path) -> list[tuple[str, str]]:
    """(flow run state, task run states) of every flow run in Prefect's database, oldest first."""
    with contextlib.closing(sqlite3.connect(prefect_home / "prefect.db")) as db:
        return db.execute(
            "SELECT f.state_type, group_concat(DISTINCT t.state_type) FROM flow_run f "
            "LEFT JOIN task_run t ON t.flow_run_id = f.id GROUP BY f.id ORDER BY f.created"
        ).fetchall()


def test_a_killed_command_leaves_no_prefect_server_and_no_running_flow_run(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    from sample.generate import generate_exports

    generate_exports(tmp_path / "source", [YEAR], n_kommuner=3, seed=3)
    arguments = ["run", "--year", str(YEAR), "--survey", "ifo",
                 "--source", str(tmp_path / "source"),
                 "--warehouse", f"duckdb:///{tmp_path / 'w.duckdb'}"]  # fmt: skip
    pausing = [
        sys.executable,
        "-c",
        f"{paused_at('after-stage')}; from flows.cli import main; main()",
    ]
    env = {**cli_env, "BRUKARDATA_LANDING": str(tmp_path / "landing")}
    killed = subprocess.Popen([*pausing, *arguments], env=env, cwd=tmp_path, stderr=subprocess.PIPE)
    servers: list[int] = []
    try:
        _paused(killed, "after-stage", timeout=300)
        servers = [pid for pid in _children(killed.pid) if SERVER_APP in command_line(pid)]
        assert len(servers) == 1, "the command runs one temporary Prefect server"
        server, started = servers[0], process_start(servers[0])
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        assert is_running(server, started), "SIGKILL runs no cleanup: the server outlives it"

        following = subprocess.run(
            [BRUKARDATA, *arguments], env=env, cwd=tmp_path, capture_output=True, text=True,
            timeout=600, check=False,
        )  # fmt: skip
        assert following.returncode == 0, following.stdout + following.stderr
        states = _flow_run_states(Path(cli_env["PREFECT_HOME"]))
        assert [flow for flow, _ in states] == ["CRASHED", "COMPLETED"], (
            f"the killed run is marked Crashed; server still running: {is_running(server, started)}"
        )
        assert not {"RUNNING", "PENDING"} & set(states[0][1].split(","))
        assert not is_running(server, started), "the next command stopped the orphaned server"
        assert "Marked Crashed 1 flow run(s) of a command that was killed" in following.stderr
        assert f"Stopped the temporary Prefect server (PID {server})" in following.stderr
    finally:
        killed.kill()
        killed.wait()
        for pid in servers:  # a failed test leaves no server behind either
            if SERVER_APP in command_line(pid):
                os.kill(pid, signal.SIGKILL)
