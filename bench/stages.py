"""The annual load's steps timed one by one, in the order of ``flows.annual._ingest_locked``.

Runs the plain functions behind the Prefect tasks (no orchestration), so the figures are the
work itself; ``brukardata run`` adds the orchestration on top. Run as its own process, so that
its peak resident memory is the pipeline's:

    .venv/bin/python -m bench.stages --source DIR --year 2024 --warehouse duckdb:///w.duckdb
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, TypeVar
from unittest.mock import patch

import pandas as pd
from sqlalchemy import Engine

import tasks.aggregate
import tasks.suppression
from flows.settings import Settings
from schemas.catalogue import SURVEYS, default_catalogue
from tasks.aggregate import aggregate
from tasks.audit import AUDITED_STAGING, audit_load
from tasks.fetch import fetch_survey_year
from tasks.parse import parse_survey_year
from tasks.validate import validate_survey_year
from warehouse.db import create_warehouse_engine
from warehouse.load import (
    begin_load,
    prepare_warehouse,
    publish,
    published_results,
    read_staged,
    record_audit,
    stage,
)

T = TypeVar("T")
STAGES = ("fetch+parse", "validation", "aggregation", "load", "audit")
SUPPRESSION = "of which suppression"  # disclosure control, inside the aggregation


def timed(times: dict[str, float], name: str, step: Callable[[], T]) -> T:
    """Run ``step``, adding its wall time to ``times[name]``."""
    started = time.perf_counter()
    result = step()
    times[name] = times.get(name, 0.0) + time.perf_counter() - started
    return result


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
    engine = create_warehouse_engine(warehouse)
    timed(times, "load", lambda: prepare_warehouse(engine, catalogue))
    with suppression_timed(times):
        for survey in SURVEYS:
            load_survey(times, survey, source=source, year=year, settings=settings, engine=engine)
    times["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return times


def load_survey(
    times: dict[str, float],
    survey: str,
    *,
    source: str,
    year: int,
    settings: Settings,
    engine: Engine,
) -> None:
    """One survey-year's steps, each timed into ``times``."""
    catalogue = default_catalogue()
    parsed = timed(
        times,
        "fetch+parse",
        lambda: parse_survey_year(
            fetch_survey_year(source, survey, year, settings.landing_root(), settings.hold_up_to),
            survey,
            year,
            catalogue,
        ),
    )
    validated = timed(
        times, "validation", partial(validate_survey_year, parsed, survey, year, catalogue)
    )
    del parsed  # as the flow does: the files' text is not held through the later steps
    load_id = timed(
        times,
        "load",
        lambda: begin_load(
            engine,
            survey=survey,
            year=year,
            source=source,
            flow_run_id=None,
            settings=settings.statistical_settings(),
        ),
    )
    aggregates = timed(
        times,
        "aggregation",
        lambda: aggregate(
            validated.respondents,
            validated.answers,
            validated.distributed,
            survey=survey,
            year=year,
            catalogue=catalogue,
            threshold=settings.suppression_threshold,
            confidence=settings.confidence_level,
        ),
    )
    timed(
        times,
        "load",
        lambda: stage(
            engine,
            load_id=load_id,
            survey=survey,
            year=year,
            files=validated.files,
            respondents=validated.respondents,
            answers=validated.answers,
            quarantine=validated.quarantine,
            distributed=validated.distributed,
            results=aggregates.results,
            distribution=aggregates.distribution,
            response_counts=aggregates.response_counts,
        ),
    )
    answer_files = validated.files[validated.files["kind"] == "answers"]
    audit = timed(
        times,
        "audit",
        lambda: audit_load(
            read_staged(engine, load_id, AUDITED_STAGING),
            load_id=load_id,
            rows_loaded=int(answer_files["rows_loaded"].sum()),
            input_kommuner=sorted(set(validated.respondents["kommun_kod"])),
            threshold=settings.suppression_threshold,
            previous_results=published_results(engine, survey, year - 1),
            max_change_points=settings.max_change_points,
            data_docs_dir=settings.data_docs_dir(),
        ),
    )
    timed(
        times,
        "audit",
        lambda: record_audit(
            engine,
            load_id=load_id,
            status=audit.status,
            expectations=audit.expectations,
            data_docs_path=audit.data_docs_path,
        ),
    )
    timed(
        times,
        "load",
        lambda: publish(engine, load_id=load_id, survey=survey, year=year, files=validated.files),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True)
    parser.add_argument("--year", type=int, required=True)
    parser.add_argument("--warehouse", required=True)
    args = parser.parse_args()
    print(json.dumps(run_year(args.source, args.year, args.warehouse)))


if __name__ == "__main__":
    main()
