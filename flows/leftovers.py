"""What a killed command leaves behind, cleaned up by the next one.

Without ``PREFECT_API_URL`` a command starts a temporary Prefect server (Prefect's own
``SubprocessASGIServer``, a ``uvicorn`` child process) and stops it at exit. A command killed
with SIGKILL runs no exit handler: its server keeps listening, and its flow runs stay
``Running`` in Prefect's database for ever. Prefect records neither who started a temporary
server nor which process runs a flow called in-process, so this module does:

- ``PREFECT_HOME/temporary-servers/<pid>.json`` names the command's process and its server's
  (PID, start time, port), and is removed at a normal exit;
- every flow run a command starts carries the tags ``brukardata-cli`` and
  ``brukardata-cli:<host>:<pid>:<start time>``.

The next command stops a dead command's server, only after checking that the PID is still
that server (same start time, Prefect's server on that port on its command line: a PID the
system gave to another process since is never signalled), and marks its flow runs (and their
task runs) that are still Pending or Running as Crashed. A process is known by its PID *and*
its start time, so a reused PID never passes for the process that died.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from flows.prefect_home import prefect_home

TAG = "brukardata-cli"
SERVER_APP = "prefect.server.api.server:create_app"
STOP_TIMEOUT_S = 10.0


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name, None if there is no such
    process (or no ``/proc``: then nothing is ever taken for a dead command's)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks after boot), None if it is gone or a zombie."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])  # field 22 of stat(5): starttime


def command_line(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def is_running(pid: int, started: int | None) -> bool:
    """Whether the process that started at ``started`` is still process ``pid``."""
    return started is not None and process_start(pid) == started


def _records() -> Path:
    return prefect_home() / "temporary-servers"


@dataclass(frozen=True)
class TemporaryServer:
    """A temporary Prefect server and the command that started it."""

    owner_pid: int
    owner_started: int | None
    server_pid: int
    server_started: int | None
    port: int

    @property
    def path(self) -> Path:
        return _records() / f"{self.owner_pid}.json"

    def save(self) -> None:
        _records().mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(asdict(self)), encoding="utf-8")

    def owner_alive(self) -> bool:
        return is_running(self.owner_pid, self.owner_started)

    def is_that_server(self) -> bool:
        """Whether ``server_pid`` is still the server this record names, not a reused PID."""
        if not is_running(self.server_pid, self.server_started):
            return False
        command = command_line(self.server_pid)
        return SERVER_APP in command and str(self.port) in command


def recorded_servers() -> list[TemporaryServer]:
    found = []
    for path in sorted(_records().glob("*.json")):
        try:
            found.append(TemporaryServer(**json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, TypeError):
            path.unlink(missing_ok=True)  # unreadable: a command killed while writing it
    return found


def _terminate(pid: int, started: int | None) -> None:
    """SIGTERM, then SIGKILL if it has not ended within STOP_TIMEOUT_S."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            if not is_running(pid, started):
                return
            time.sleep(0.1)


def stop_orphaned_servers() -> list[TemporaryServer]:
    """Stop the temporary servers of commands that died without stopping them."""
    stopped = []
    for record in recorded_servers():
        if record.owner_pid == os.getpid() or record.owner_alive():
            continue
        if record.is_that_server():
            _terminate(record.server_pid, record.server_started)
            stopped.append(record)
        record.path.unlink(missing_ok=True)
    return stopped


def start_temporary_server() -> TemporaryServer:
    """Start Prefect's temporary server for this process (the one its client would start on
    first use) and record it, the record removed again at a normal exit."""
    from prefect.server.api.server import SubprocessASGIServer

    me = os.getpid()
    record_path = _records() / f"{me}.json"
    atexit.register(record_path.unlink, missing_ok=True)  # runs after Prefect's own stop
    server = SubprocessASGIServer()
    server.start()
    assert server.server_process is not None
    assert server.port is not None
    pid = server.server_process.pid
    record = TemporaryServer(me, process_start(me), pid, process_start(pid), server.port)
    record.save()
    return record


def owner_tag(pid: int | None = None) -> str:
    """The tag naming the process (this one by default) that runs a flow."""
    pid = os.getpid() if pid is None else pid
    return f"{TAG}:{socket.gethostname()}:{pid}:{process_start(pid)}"


def _owner_is_dead(tags: list[str]) -> bool:
    """Whether a flow run's tags name a process on this machine that no longer runs."""
    for tag in tags:
        parts = tag.split(":")
        if len(parts) == 4 and parts[0] == TAG and parts[1] == socket.gethostname():
            started = None if parts[3] == "None" else int(parts[3])
            return started is not None and not is_running(int(parts[2]), started)
    return False


def crash_orphaned_runs() -> list[Any]:
    """Mark Crashed the Pending and Running flow runs (and their task runs) whose command died.

    Returns the flow runs marked.
    """
    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
        TaskRunFilter,
        TaskRunFilterState,
        TaskRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    unfinished = [StateType.PENDING, StateType.RUNNING]
    message = "The command running this flow was killed: its process is gone."
    crashed = []
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[TAG]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=unfinished)),
            )
        )
        for run in runs:
            if not _owner_is_dead(run.tags):
                continue
            tasks = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])),
                task_run_filter=TaskRunFilter(
                    state=TaskRunFilterState(type=TaskRunFilterStateType(any_=unfinished))
                ),
            )
            for task in tasks:
                client.set_task_run_state(task.id, Crashed(message=message), force=True)
            client.set_flow_run_state(run.id, Crashed(message=message), force=True)
            crashed.append(run)
    return crashed


@contextlib.contextmanager
def prefect_session(say: Callable[[str], None]) -> Iterator[None]:
    """For the ``with`` block: what dead commands left cleaned up, a Prefect API to talk to
    (the running server, else a recorded temporary one) and this process's tags on every flow
    run. ``say`` is given the lines the user should read."""
    for record in stop_orphaned_servers():
        say(
            f"Stopped the temporary Prefect server (PID {record.server_pid}) of a command "
            f"that was killed (PID {record.owner_pid})."
        )
    if not os.environ.get("PREFECT_API_URL") and not (_records() / f"{os.getpid()}.json").exists():
        say(
            "Starting a temporary Prefect server for this run (10-20 s); "
            "`brukardata server` keeps one running and avoids the wait."
        )
        start_temporary_server()
    try:
        crashed = crash_orphaned_runs()
    except Exception:  # tidying up never stops a run: the flow reports an unreachable API
        logging.getLogger(__name__).warning("could not look for killed runs", exc_info=True)
        crashed = []
    if crashed:
        names = ", ".join(run.name for run in crashed)
        say(f"Marked Crashed {len(crashed)} flow run(s) of a command that was killed: {names}.")
    from prefect import tags

    with tags(TAG, owner_tag()):
        yield
