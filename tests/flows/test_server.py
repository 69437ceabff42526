"""`brukardata server`: a real Prefect server and worker, used by later CLI runs, stopped by PID."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from tasks.generate import generate_exports
from tests.flows.conftest import BRUKARDATA, alive


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
