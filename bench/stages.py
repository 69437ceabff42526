"""The annual load's steps timed one by one: ``flows.load.ingest_survey_year`` itself, with
each Prefect task replaced by its plain function, timed.

The steps, their order and their arguments are the flow's own; only the orchestration is left
out, so the figures are the work itself and ``brukardata run`` adds the orchestration on top.
Run as its own process, so that its peak resident memory is the pipeline's:

    .venv/bin/python -m bench.stages --source DIR --year 2024 --warehouse duckdb:///w.duckdb
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar
from unittest.mock import patch
from uuid import UUID, uuid4

import pandas as pd
from prefect import Task

import flows.load
import tasks.aggregate
import tasks.suppression
from flows.settings import Settings
from schemas.catalogue import SURVEYS, default_catalogue
from tasks.load import prepare_warehouse_task

T = TypeVar("T")
STAGES = ("fetch+parse", "validation", "aggregation", "load", "audit")
SUPPRESSION = "of which suppression"  # disclosure control, inside the aggregation
# The stage each task of a load counts in; a task not listed counts in "load".
STAGE_OF_TASK = {
    "fetch_task": "fetch+parse",
    "parse_task": "fetch+parse",
    "validate_task": "validation",
    "aggregate_task": "aggregation",
    "read_staged_task": "audit",
    "published_results_task": "audit",
    "audit_task": "audit",
    "record_audit_task": "audit",
}


def timed(times: dict[str, float], name: str, step: Callable[[], T]) -> T:
    """Run ``step``, adding its wall time to ``times[name]``."""
    started = time.perf_counter()
    result = step()
    times[name] = times.get(name, 0.0) + time.perf_counter() - started
    return result


@dataclass
class Finished:
    """A task run that has already finished, as its future answers."""

    value: Any
    task_run_id: UUID = field(default_factory=uuid4)

    def result(self) -> Any:
        return self.value


class Done(list[Finished]):
    """A mapped task's futures, every one finished."""

    def result(self) -> list[Any]:
        return [future.result() for future in self]


class InPlace:
    """A Prefect task's plain function, called in place and timed into ``times[stage]``."""

    def __init__(self, task: Task[..., Any], times: dict[str, float], stage: str) -> None:
        self.fn, self.times, self.stage = task.fn, times, stage

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return timed(self.times, self.stage, lambda: self.fn(*args, **kwargs))

    def map(self, over: list[Any], *unmapped: Any) -> Done:
        return Done(Finished(self(item, *(fixed.value for fixed in unmapped))) for item in over)


@contextmanager
def without_orchestration(times: dict[str, float]) -> Iterator[None]:
    """Every task of a load in place, timed by stage, and disclosure control timed apart."""
    with ExitStack() as stack:
        for name, value in vars(flows.load).items():
            if isinstance(value, Task):
                stage = STAGE_OF_TASK.get(name, "load")
                stack.enter_context(patch.object(flows.load, name, InPlace(value, times, stage)))
        stack.enter_context(patch.object(flows.load, "as_completed", iter))
        stack.enter_context(suppression_timed(times))
        yield


@contextmanager
def suppression_timed(times: dict[str, float]) -> Iterator[None]:
    """Add the time of every disclosure-control call the aggregation makes to ``times``."""

    def suppress(*args: Any, **kwargs: Any) -> pd.Series:
        return timed(times, SUPPRESSION, lambda: tasks.suppression.suppress(*args, **kwargs))

    with patch.object(tasks.aggregate, "suppress", suppress):
        yield


def run_year(source: str, year: int, warehouse: str) -> dict[str, float]:
    """Load both surveys of ``year``; seconds per stage, plus ``peak_rss_mb`` of this process."""
    times: dict[str, float] = {SUPPRESSION: 0.0}
    settings = Settings(warehouse=warehouse)
    catalogue = default_catalogue()
    timed(
        times,
        "load",
        lambda: prepare_warehouse_task.fn(warehouse, catalogue, settings.load_lock_timeout),
    )
    with without_orchestration(times):
        for survey in SURVEYS:
            outcome = flows.load.ingest_survey_year(survey, year, source, settings, catalogue)
            if outcome.error is not None:
                raise RuntimeError(f"{survey} {year}: {outcome.error}")
    times["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True)
    parser.add_argument("--year", type=int, required=True)
    parser.add_argument("--warehouse", required=True)
    args = parser.parse_args()
    print(json.dumps(run_year(args.source, args.year, args.warehouse)))


if __name__ == "__main__":
    main()
