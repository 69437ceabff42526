"""Load: the warehouse writes of a survey-year, as Prefect tasks that retry only transient faults.

A lost connection or a locked database is worth another try; a constraint violation or any
other error in the data is not, and fails at once.
"""

from __future__ import annotations

from typing import Any

from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from sqlalchemy.exc import DisconnectionError, OperationalError

from schemas.catalogue import Catalogue
from warehouse.db import create_warehouse_engine
from warehouse.load import (
    begin_load,
    fail_load,
    last_published_files,
    prepare_warehouse,
    publish,
    published_kommuner,
    published_raw,
    published_results,
    read_staged,
    record_audit,
    stage,
)
from warehouse.locks import HeldLock, preparation_lock

TRANSIENT_DB_ERRORS: tuple[type[Exception], ...] = (OperationalError, DisconnectionError)


def is_disk_full(err: BaseException) -> bool:
    """Whether a database error is its disk running full (DuckDB's file, PostgreSQL's server):
    an operator must free space, so retrying within seconds only repeats it."""
    return "No space left on device" in str(err)


def is_transient_db_error(_task: Task[..., Any], _run: TaskRun, state: State[Any]) -> bool:
    """Retry condition: only errors a later attempt can cure."""
    error = state.result(raise_on_failure=False)
    return isinstance(error, TRANSIENT_DB_ERRORS) and not is_disk_full(error)


_DB_RETRIES: dict[str, Any] = {
    "retries": 3,
    "retry_condition_fn": is_transient_db_error,
    "cache_policy": NO_CACHE,
}


def prepare_under_lock(warehouse: str, catalogue: Catalogue, lock_timeout: float) -> None:
    """Migrate the warehouse and replace its dimensions under the preparation lock.

    One step, so that connecting for the lock is retried like the preparation itself: a
    database down when a run starts is tried again before it is called unreachable.
    """
    engine = create_warehouse_engine(warehouse)
    try:
        with preparation_lock(warehouse, lock_timeout):
            prepare_warehouse(engine, catalogue)
    finally:
        engine.dispose()


prepare_warehouse_task = task(name="prepare-warehouse", **_DB_RETRIES)(prepare_under_lock)


def confirm_lock(lock: HeldLock) -> None:
    """Before publishing: the load still holds its lock (taken again if its session ended)."""
    lock.confirm()


confirm_lock_task = task(name="confirm-load-lock", **_DB_RETRIES)(confirm_lock)
begin_load_task = task(name="begin-load", **_DB_RETRIES)(begin_load)
stage_task = task(name="stage", **_DB_RETRIES)(stage)
publish_task = task(name="publish", **_DB_RETRIES)(publish)
fail_load_task = task(name="record-failed-load", **_DB_RETRIES)(fail_load)
read_staged_task = task(name="read-staged", **_DB_RETRIES)(read_staged)
published_results_task = task(name="read-published-results", **_DB_RETRIES)(published_results)
record_audit_task = task(name="record-audit", **_DB_RETRIES)(record_audit)
last_published_files_task = task(name="read-published-files", **_DB_RETRIES)(last_published_files)
published_raw_task = task(name="read-published-rows", **_DB_RETRIES)(published_raw)
published_kommuner_task = task(name="read-published-kommuner", **_DB_RETRIES)(published_kommuner)
