"""A long-running local Prefect server (and process worker) for people who run the CLI often.

Without one, every ``brukardata run`` starts a temporary Prefect server (15–20 s). With
``brukardata server`` running, the CLI finds it through a small state file in PREFECT_HOME and
each run costs about a second of orchestration. The processes are tracked by PID and stopped
with ``brukardata server --stop``.

The worker runs the deployments of ``prefect.yaml`` (the scheduled annual runs, ``rerun``): the
source and warehouse they use are the ones ``brukardata server --source … --warehouse …`` gives
the worker's environment, recorded in the state file and shown when the server starts.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console

from flows.defaults import DEFAULT_WAREHOUSE
from flows.prefect_home import prefect_home
from flows.problems import CommandError, source_folder

WORK_POOL = "brukardata"
STARTUP_TIMEOUT_S = 120.0
console = Console()


def _state_file() -> Path:
    return prefect_home() / "brukardata-server.json"


@dataclass(frozen=True)
class ServerState:
    """What ``brukardata server`` started: where the API listens and which processes to stop."""

    api_url: str
    server_pid: int
    worker_pid: int | None
    source: str | None = None
    warehouse: str | None = None

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


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def running_server() -> ServerState | None:
    """What ``brukardata server`` started, if its server still runs and answers.

    A healthy URL alone is not enough: another server may have taken the port since.
    """
    state = ServerState.load()
    if state is None or not alive(state.server_pid) or not is_healthy(state.api_url):
        return None
    return state


def running_server_url() -> str | None:
    """The API URL of a healthy server started by ``brukardata server``, if there is one."""
    state = running_server()
    return None if state is None else state.api_url


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


class ServerStartError(CommandError):
    """The server could not be started as asked (exit status 2); the message says why."""


def port_taken(port: int) -> bool:
    """Whether something already listens on 127.0.0.1:``port``."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text("utf-8", errors="replace").splitlines() if line]
    return lines[-1].strip() if lines else "no output"


def _wait_until_healthy(api_url: str, server_pid: int, log: Path) -> None:
    """Wait for *our* server to answer; fail if it exits or does not answer in time."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    with console.status(f"Starting the Prefect server on {api_url} …"):
        while not is_healthy(api_url):
            if not alive(server_pid):
                raise ServerStartError(f"the Prefect server stopped: {_last_line(log)} ({log})")
            if time.monotonic() > deadline:
                stop_process(server_pid)
                raise ServerStartError(
                    f"the Prefect server did not answer within {STARTUP_TIMEOUT_S:.0f} s ({log})"
                )
            time.sleep(0.5)
    if not alive(server_pid):  # something else answered on the port
        raise ServerStartError(f"the Prefect server stopped: {_last_line(log)} ({log})")


def start_server(port: int, source: str | None, warehouse: str) -> ServerState:
    """Start server and worker, wait until *our* server answers, and remember their PIDs.

    A port already in use is refused before anything starts, so the work pool of another
    server is never touched. The worker's environment carries ``source`` and ``warehouse``.
    """
    if port_taken(port):
        raise ServerStartError(
            f"port {port} on 127.0.0.1 is already in use by another process: "
            "stop it or choose another port with --port"
        )
    home = prefect_home()
    home.mkdir(parents=True, exist_ok=True)
    api_url = f"http://127.0.0.1:{port}/api"
    # The server and worker log to their own files in full, not through the CLI's logging.
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_LOGGING_SETTINGS_PATH"}
    env["PREFECT_API_URL"] = api_url
    log = home / "server.log"
    server_pid = _spawn(
        _prefect("server", "start", "--host", "127.0.0.1", "--port", str(port)), log, env
    )
    try:
        _wait_until_healthy(api_url, server_pid, log)
    except ServerStartError:
        stop_process(server_pid)
        raise
    subprocess.run(
        _prefect("work-pool", "create", WORK_POOL, "--type", "process", "--overwrite"),
        env=env,
        check=True,
        capture_output=True,
    )
    worker_env = {**env, "BRUKARDATA_WAREHOUSE": warehouse}
    if source is not None:
        worker_env["BRUKARDATA_SOURCE"] = source
    worker_pid = _spawn(
        _prefect("worker", "start", "--pool", WORK_POOL), home / "worker.log", worker_env
    )
    state = ServerState(api_url, server_pid, worker_pid, source=source, warehouse=warehouse)
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


def absolute_source(source: str) -> str:
    """A local source as an absolute path: the worker runs flows in the project folder."""
    return source if "://" in source else str(Path(source).expanduser().resolve())


def absolute_warehouse(warehouse: str) -> str:
    """A DuckDB file named relative to here as an absolute URL, for the same reason."""
    database = warehouse.removeprefix("duckdb:///")
    if database == warehouse or database in ("", ":memory:") or database.startswith("/"):
        return warehouse
    return f"duckdb:///{Path(database).expanduser().resolve()}"


DEFAULT_PORT = 4200


def default_port() -> int:
    """The port of ``PREFECT_API_URL`` when it names this machine, so that the server starts
    where the ``prefect`` command will look for it; else 4200."""
    url = httpx.URL(os.environ.get("PREFECT_API_URL", ""))
    if url.host in ("127.0.0.1", "localhost") and url.port is not None:
        return url.port
    return DEFAULT_PORT


def server(
    port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="Port of the Prefect API on 127.0.0.1 "
            "(default: the port of PREFECT_API_URL on this machine, else 4200).",
        ),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            help="Source the worker's runs read (scheduled and deployed runs; "
            "default: BRUKARDATA_SOURCE)."
        ),
    ] = None,
    warehouse: Annotated[
        str | None,
        typer.Option(
            help="Warehouse the worker's runs publish to "
            f"(default: BRUKARDATA_WAREHOUSE, else {DEFAULT_WAREHOUSE})."
        ),
    ] = None,
    stop: Annotated[bool, typer.Option("--stop", help="Stop the server and worker.")] = False,
) -> None:
    """Start a local Prefect server and worker that later CLI runs and deployments use."""
    if stop:
        console.print("Stopped." if stop_server() else "No server was running.")
        return
    running = running_server()
    if running is not None:
        console.print(
            f"A Prefect server is already running: {running.api_url}; its worker reads "
            f"{running.source or 'no source'} into {running.warehouse}"
        )
        return
    from flows.settings import command_settings

    settings = command_settings(source=source, warehouse=warehouse)
    source = settings.source
    if source is not None:
        source = absolute_source(source)
        source_folder(source)
    warehouse = absolute_warehouse(settings.warehouse)
    state = start_server(default_port() if port is None else port, source, warehouse)
    console.print(
        f"Prefect server: {state.api_url} (UI: {state.api_url.removesuffix('/api')}), "
        f"work pool '{WORK_POOL}' with a worker that reads "
        f"{source or 'no source (deployed runs must pass one)'} into {warehouse}. "
        "`brukardata run` uses it from now on; stop it with `brukardata server --stop`."
    )
