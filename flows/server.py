"""A long-running local Prefect server (and process worker) for people who run the CLI often.

Without one, every ``brukardata run`` starts a temporary Prefect server (15–20 s). With
``brukardata server`` running, the CLI finds it through a small state file in PREFECT_HOME and
each run costs about a second of orchestration. The processes are tracked by PID and stopped
with ``brukardata server --stop``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console

WORK_POOL = "brukardata"
STARTUP_TIMEOUT_S = 120.0
console = Console()


def _state_file() -> Path:
    return Path(os.environ["PREFECT_HOME"]) / "brukardata-server.json"


@dataclass(frozen=True)
class ServerState:
    """What ``brukardata server`` started: where the API listens and which processes to stop."""

    api_url: str
    server_pid: int
    worker_pid: int | None

    def save(self) -> None:
        _state_file().parent.mkdir(parents=True, exist_ok=True)
        _state_file().write_text(json.dumps(asdict(self)), encoding="utf-8")

    @classmethod
    def load(cls) -> ServerState | None:
        try:
            return cls(**json.loads(_state_file().read_text(encoding="utf-8")))
        except (FileNotFoundError, ValueError, TypeError):
            return None


def is_healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(f"{api_url}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def running_server_url() -> str | None:
    """The API URL of a healthy server started by ``brukardata server``, if there is one."""
    state = ServerState.load()
    return state.api_url if state is not None and is_healthy(state.api_url) else None


def use_running_server() -> str | None:
    """Point Prefect at a running local server unless the user chose an API already.

    Must be called before Prefect is imported: Prefect reads its settings at import.
    """
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    url = running_server_url()
    if url is not None:
        os.environ["PREFECT_API_URL"] = url
    return url


def _prefect(*args: str) -> list[str]:
    return [sys.executable, "-m", "prefect", *args]


def _spawn(command: list[str], log: Path, env: dict[str, str]) -> int:
    """Start a detached process (own session, so a terminal's Ctrl-C does not reach it)."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    return process.pid


def stop_process(pid: int, timeout: float = 20.0) -> None:
    """SIGTERM, again after a pause (a Prefect worker sometimes needs two), then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout / 2
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


def start_server(port: int) -> ServerState:
    """Start server and worker, wait until the API answers, and remember their PIDs."""
    home = Path(os.environ["PREFECT_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    api_url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_API_URL": api_url}
    server_pid = _spawn(
        _prefect("server", "start", "--host", "127.0.0.1", "--port", str(port)),
        home / "server.log",
        env,
    )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    with console.status(f"Starting the Prefect server on {api_url} …"):
        while not is_healthy(api_url):
            if time.monotonic() > deadline:
                stop_process(server_pid)
                raise RuntimeError(
                    f"the Prefect server did not answer within {STARTUP_TIMEOUT_S:.0f} s"
                )
            time.sleep(0.5)
    subprocess.run(
        _prefect("work-pool", "create", WORK_POOL, "--type", "process", "--overwrite"),
        env=env,
        check=True,
        capture_output=True,
    )
    worker_pid = _spawn(_prefect("worker", "start", "--pool", WORK_POOL), home / "worker.log", env)
    state = ServerState(api_url=api_url, server_pid=server_pid, worker_pid=worker_pid)
    state.save()
    return state


def stop_server() -> bool:
    """Stop what ``start_server`` started; False when nothing was running."""
    state = ServerState.load()
    if state is None:
        return False
    for pid in (state.worker_pid, state.server_pid):
        if pid is not None:
            stop_process(pid)
    _state_file().unlink(missing_ok=True)
    return True


def server(
    port: Annotated[int, typer.Option(help="Port of the Prefect API on 127.0.0.1.")] = 4200,
    stop: Annotated[bool, typer.Option("--stop", help="Stop the server and worker.")] = False,
) -> None:
    """Start a local Prefect server and worker that later CLI runs use (or --stop them)."""
    if stop:
        console.print("Stopped." if stop_server() else "No server was running.")
        return
    url = running_server_url()
    if url is not None:
        console.print(f"A Prefect server is already running: {url}")
        return
    state = start_server(port)
    console.print(
        f"Prefect server: {state.api_url} (UI: {state.api_url.removesuffix('/api')}), "
        f"work pool '{WORK_POOL}' with a worker. `brukardata run` uses it from now on; "
        "stop it with `brukardata server --stop`."
    )
