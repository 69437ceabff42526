"""One load at a time per (survey, year): a lock held for the whole load, freed if the process dies.

``begin_load`` treats a ``running`` load of the same survey and year as a dead process's and
clears it; that is only true while this lock is held, so a load takes it before beginning. The
operating system releases both kinds of lock when their holder dies: PostgreSQL ends a killed
client's session (and its session-level advisory locks), and the kernel drops a dead process's
file lock (``filelock``, beside a DuckDB file). A second load waits up to ``timeout``
seconds, then fails with one line.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from filelock import FileLock, Timeout
from sqlalchemy import URL, Connection, create_engine, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

POLL_SECONDS = 0.2
logger = logging.getLogger(__name__)


class LoadLockTimeoutError(RuntimeError):
    """Another load of the same survey and year held the lock for longer than the timeout."""


class LoadLockLostError(RuntimeError):
    """The lock's database session ended (a server restart) and another load holds it now."""


class HeldLock:
    """A lock held for a ``with`` block. ``confirm`` makes sure, before a step that must only
    run under it, that it still is: a PostgreSQL lock dies with its session, and is then
    taken again on a new one, or LoadLockLostError is raised if another load took it."""

    def __init__(self, confirm: Callable[[], None] | None = None) -> None:
        self._confirm = confirm

    def confirm(self) -> None:
        if self._confirm is not None:
            self._confirm()


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for the lock ``name`` (e.g. ``ifo-2024``)."""
    digest = hashlib.sha256(f"brukardata-lock:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_file(database: str, name: str) -> Path:
    """The DuckDB lock file: a sibling of the database file, e.g. ``w.duckdb.ifo-2024.lock``."""
    path = Path(database).expanduser()
    return path.with_name(f"{path.name}.{name}.lock")


def _wait(try_lock: Callable[[], bool], what: str, timeout: float) -> None:
    """Call ``try_lock`` until it returns True, logging once that we wait; fail after timeout."""
    deadline = time.monotonic() + timeout
    if try_lock():
        return
    logger.warning("waiting for another %s to finish (up to %.0f s)", what, timeout)
    while time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        if try_lock():
            return
    raise LoadLockTimeoutError(
        f"another {what} is still running after {timeout:.0f} s; try again later"
    )


def load_lock(
    warehouse: str, survey: str, year: int, timeout: float
) -> contextlib.AbstractContextManager[HeldLock]:
    """Hold the load lock of (survey, year) in ``warehouse`` for the ``with`` block."""
    return _lock(warehouse, f"{survey}-{year}", f"load of {survey} {year}", timeout)


def preparation_lock(warehouse: str, timeout: float) -> contextlib.AbstractContextManager[HeldLock]:
    """Hold the lock under which the warehouse is migrated and its dimensions replaced, so that
    runs starting together do not prepare it twice at once."""
    return _lock(warehouse, "prepare", "preparation of the warehouse", timeout)


@contextlib.contextmanager
def _lock(warehouse: str, name: str, what: str, timeout: float) -> Iterator[HeldLock]:
    """Hold the lock ``name`` of ``warehouse``; ``what`` names it in messages."""
    url = make_url(warehouse)
    if url.get_backend_name() == "postgresql":
        with _advisory_lock(url, lock_key(name), what, timeout) as held:
            yield held
    elif url.database in (None, "", ":memory:"):
        yield HeldLock()  # an in-memory database belongs to this one process
    else:
        path = lock_file(url.database, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        file_lock = FileLock(path)

        def try_file_lock() -> bool:
            try:
                file_lock.acquire(blocking=False)
            except Timeout:
                return False
            return True

        _wait(try_file_lock, what, timeout)
        try:
            yield HeldLock()  # the kernel holds it for as long as this process lives
        finally:
            file_lock.release()


@contextlib.contextmanager
def _advisory_lock(url: URL, key: int, what: str, timeout: float) -> Iterator[HeldLock]:
    """A PostgreSQL session-level advisory lock, on a session of its own."""
    engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    sessions: list[Connection] = []

    def try_lock() -> bool:
        locked = sessions[-1].execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
        return bool(locked.scalar_one())

    def confirm() -> None:
        try:
            sessions[-1].execute(text("SELECT 1"))
            return
        except DBAPIError:
            logger.warning("the %s lost its database session: taking its lock again", what)
        sessions.append(engine.connect())  # a server still restarting raises: retried
        if not try_lock():
            raise LoadLockLostError(
                f"the {what} lost its lock when its database session ended, and another "
                "load holds it now: nothing was published"
            )

    try:
        sessions.append(engine.connect())
        _wait(try_lock, what, timeout)
        try:
            yield HeldLock(confirm)
        finally:
            # a session that is gone (a server restart) has released its locks already
            with contextlib.suppress(DBAPIError):
                sessions[-1].execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    finally:
        for session in sessions:
            with contextlib.suppress(DBAPIError):
                session.close()
        engine.dispose()
