"""The annual run: every survey of one year, from the source folder to published reporting views."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run
from prefect.states import Completed, Failed

from flows.settings import Settings
from schemas.catalogue import SURVEYS, Catalogue, default_catalogue
from tasks.aggregate import aggregate_task
from tasks.fetch import SourceError, fetch_task
from tasks.load import begin_load_task, fail_load_task, publish_task
from tasks.parse import parse_task
from tasks.summary import headline_figures
from tasks.validate import validate_task
from warehouse.db import create_warehouse_engine, upgrade
from warehouse.load import sync_dimensions


@dataclass
class SurveyYearOutcome:
    """What one (survey, year) of a run did: the files, the row accounting and the headline."""

    survey: str
    year: int
    load_id: int
    files: pd.DataFrame = field(repr=False)  # schemas.frames.FileReport
    refused: list[str]
    headline: list[str]
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.refused

    def total(self, column: str) -> int:
        return int(self.files[column].sum()) if len(self.files) else 0


@dataclass
class RunSummary:
    """The outcome of a run, returned by the flow and printed by the CLI."""

    warehouse: str
    outcomes: list[SurveyYearOutcome]

    @property
    def ok(self) -> bool:
        return all(outcome.ok for outcome in self.outcomes)

    @property
    def problems(self) -> list[str]:
        """One line per refused file or failed survey-year."""
        lines: list[str] = []
        for o in self.outcomes:
            lines += [f"{o.survey} {o.year}: refused {line}" for line in o.refused]
            if o.error:
                lines.append(f"{o.survey} {o.year}: {o.error}")
        return lines


def ingest_survey_year(
    survey: str, year: int, source: str, settings: Settings, catalogue: Catalogue
) -> SurveyYearOutcome:
    """Fetch, parse, validate, aggregate and publish one (survey, year) in one transaction.

    Bad input never raises here: refused files and an unreadable source end in the outcome,
    so the other survey still runs and the user sees one line per problem.
    """
    engine = create_warehouse_engine(settings.warehouse)
    load_id = begin_load_task(
        engine,
        survey=survey,
        year=year,
        source=source,
        flow_run_id=flow_run.get_id(),
        settings=settings.statistical_settings(),
    )
    try:
        files = fetch_task(source, survey, year)
    except SourceError as err:
        fail_load_task(engine, load_id=load_id, error=str(err), files=None)
        return SurveyYearOutcome(survey, year, load_id, pd.DataFrame(), [], [], error=str(err))
    parsed = parse_task(files, survey, year, catalogue)
    validated = validate_task(parsed, survey, year, catalogue)
    if validated.respondents.empty:
        error = "no valid rows: nothing published, the previous figures stay"
        fail_load_task(engine, load_id=load_id, error=error, files=validated.files)
        return SurveyYearOutcome(
            survey, year, load_id, validated.files, validated.refused, [], error
        )
    aggregates = aggregate_task(
        validated.respondents,
        validated.answers,
        validated.distributed,
        survey=survey,
        year=year,
        catalogue=catalogue,
        threshold=settings.suppression_threshold,
        confidence=settings.confidence_level,
    )
    publish_task(
        engine,
        load_id=load_id,
        survey=survey,
        year=year,
        files=validated.files,
        respondents=validated.respondents,
        answers=validated.answers,
        quarantine=validated.quarantine,
        results=aggregates.results,
        distribution=aggregates.distribution,
        response_counts=aggregates.response_counts,
    )
    headline = headline_figures(aggregates.results, survey, catalogue)
    return SurveyYearOutcome(survey, year, load_id, validated.files, validated.refused, headline)


def last_completed_survey_year(today: date) -> int:
    """The newest survey year whose autumn fieldwork is over: last calendar year."""
    return today.year - 1


@flow(name="annual-run", log_prints=True)
def annual_run(
    source: str,
    year: int | None = None,
    surveys: list[str] | None = None,
    warehouse: str | None = None,
) -> State[Any]:
    """The annual ingestion of one survey year (both surveys unless ``surveys`` is given).

    ``year`` defaults to the last completed survey year, decided when the run starts (so a
    schedule deployed once keeps loading the right year). Ends Completed when every file
    loaded, Failed (with the summary as its result) otherwise.
    """
    logger = get_run_logger()
    year = year or last_completed_survey_year(date.today())
    settings = Settings() if warehouse is None else Settings(warehouse=warehouse)
    catalogue = default_catalogue()
    engine = create_warehouse_engine(settings.warehouse)
    upgrade(engine)
    sync_dimensions(engine, catalogue)
    outcomes = []
    for survey in surveys or list(SURVEYS):
        logger.info("%s %s: ingesting from %s", survey, year, source)
        outcomes.append(ingest_survey_year(survey, year, source, settings, catalogue))
    summary = RunSummary(warehouse=settings.warehouse, outcomes=outcomes)
    for line in summary.problems:
        logger.error(line)
    if summary.ok:
        return Completed(message="every file loaded", data=summary)
    return Failed(message=f"{len(summary.problems)} problem(s)", data=summary)
