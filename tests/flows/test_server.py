"""`brukardata server`: a real Prefect server and worker, used by later CLI runs, stopped by PID."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tasks.generate import generate_exports

BRUKARDATA = str(Path(sys.executable).with_name("brukardata"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a user's shell: its own Prefect home, no API chosen."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    return env


@pytest.fixture
def started_server(cli_env: dict[str, str]) -> Iterator[dict[str, object]]:
    port = free_port()
    started = subprocess.run(
        [BRUKARDATA, "server", "--port", str(port)],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert started.returncode == 0, started.stdout + started.stderr
    state_file = Path(cli_env["PREFECT_HOME"]) / "brukardata-server.json"
    state: dict[str, object] = json.loads(state_file.read_text("utf-8"))
    try:
        yield state
    finally:
        subprocess.run([BRUKARDATA, "server", "--stop"], env=cli_env, timeout=60, check=False)


def test_cli_runs_use_the_running_server_and_stop_ends_every_process(
    started_server: dict[str, object], cli_env: dict[str, str], tmp_path: Path
) -> None:
    api_url = str(started_server["api_url"])
    assert httpx.get(f"{api_url}/health", timeout=5).status_code == 200
    exports = tmp_path / "exports"
    generate_exports(exports, [2024], n_kommuner=3, seed=1)
    warehouse = f"duckdb:///{tmp_path / 'w.duckdb'}"
    run = subprocess.run(
        [
            BRUKARDATA,
            "run",
            "--year",
            "2024",
            "--survey",
            "ifo",
            "--source",
            str(exports),
            "--warehouse",
            warehouse,
        ],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Starting temporary server" not in run.stdout + run.stderr
    flow_runs = httpx.post(f"{api_url}/flow_runs/filter", json={}, timeout=10).json()
    assert [r["state_type"] for r in flow_runs] == ["COMPLETED"]

    pids = [int(str(started_server["server_pid"])), int(str(started_server["worker_pid"]))]
    stopped = subprocess.run(
        [BRUKARDATA, "server", "--stop"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Stopped." in stopped.stdout
    assert not any(alive(pid) for pid in pids)
