"""`brukardata server`: a real Prefect server and worker, used by later CLI runs, stopped by PID."""

from __future__ import annotations

import http.server
import subprocess
import threading
from pathlib import Path
from typing import ClassVar

import httpx

from flows.server import alive
from sample.generate import generate_exports
from tests.flows.conftest import BRUKARDATA, free_port, start_server


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
    # From its first line the user sees the run's progress: no wait for a temporary server.
    progress = run.stderr.splitlines()
    assert progress, run.stderr
    assert all(line.startswith("  ifo 2024: ") for line in progress), run.stderr
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


class _AnotherPrefectServer(http.server.BaseHTTPRequestHandler):
    """Answers like a healthy Prefect API and remembers every request made to it."""

    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.requests.append(f"GET {self.path}")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"true")

    def do_POST(self) -> None:
        self.requests.append(f"POST {self.path}")
        self.send_response(201)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        """Quiet: the test reads ``requests``."""


def test_a_port_taken_by_another_server_is_refused_and_that_server_left_alone(
    cli_env: dict[str, str],
) -> None:
    port = free_port()
    other = http.server.HTTPServer(("127.0.0.1", port), _AnotherPrefectServer)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        started = start_server(cli_env, port)
    finally:
        other.shutdown()
        other.server_close()
    assert started.returncode == 2
    assert started.stderr.splitlines() == [
        f"error: port {port} on 127.0.0.1 is already in use by another process: "
        "stop it or choose another port with --port"
    ]
    assert _AnotherPrefectServer.requests == []  # its work pools were never touched
    assert not (Path(cli_env["PREFECT_HOME"]) / "brukardata-server.json").exists()
