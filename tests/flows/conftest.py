"""A real Prefect server started the way a user starts it, for the operations tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

BRUKARDATA = str(Path(sys.executable).with_name("brukardata"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a user's shell: its own Prefect home, no API chosen."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    env["PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS"] = "2"  # schedule runs right away
    env["PREFECT_WORKER_QUERY_SECONDS"] = "2"  # pick runs up right away
    return env


def start_server(cli_env: dict[str, str], port: int) -> subprocess.CompletedProcess[str]:
    """``brukardata server --port PORT`` as a user runs it."""
    return subprocess.run(
        [BRUKARDATA, "server", "--port", str(port)],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture
def started_server(cli_env: dict[str, str]) -> Iterator[dict[str, object]]:
    started = start_server(cli_env, free_port())
    assert started.returncode == 0, started.stdout + started.stderr
    state_file = Path(cli_env["PREFECT_HOME"]) / "brukardata-server.json"
    state: dict[str, object] = json.loads(state_file.read_text("utf-8"))
    try:
        yield state
    finally:
        subprocess.run([BRUKARDATA, "server", "--stop"], env=cli_env, timeout=60, check=False)
