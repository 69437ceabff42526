"""The annual run: every survey of one year, from the source folder to published reporting views."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_link_artifact
from prefect.client.schemas.objects import State
from prefect.states import Completed, Failed

from flows.artifacts import publish_run_artifacts
from flows.load import SurveyYearOutcome, ingest_survey_year, unreachable
from flows.notify import notify_failure
from flows.runners import runner_from_settings
from flows.settings import Settings
from schemas.catalogue import SURVEYS, Catalogue
from tasks.load import TRANSIENT_DB_ERRORS, prepare_warehouse_task
from tasks.redact import masked_warehouse, redacted
from tasks.report import write_report_task
from warehouse.db import create_warehouse_engine


@dataclass
class RunSummary:
    """The outcome of a run, returned by the flow and printed by the CLI."""

    warehouse: str
    outcomes: list[SurveyYearOutcome]

    @property
    def ok(self) -> bool:
        return all(outcome.ok for outcome in self.outcomes)

    def as_json(self) -> dict[str, Any]:
        """The summary as plain data (what ``--json`` prints)."""
        return {
            "warehouse": self.warehouse,
            "ok": self.ok,
            "outcomes": [
                {
                    "survey": o.survey,
                    "year": o.year,
                    "load_id": o.load_id,
                    "status": o.status,
                    "files": len(o.files),
                    "rows_read": o.total("rows_read"),
                    "rows_loaded": o.total("rows_loaded"),
                    "rows_quarantined": o.total("rows_quarantined"),
                    "suppressed_cells": o.suppressed_cells,
                    "refused_files": o.refused,
                    "error": o.error,
                    "headline": o.headline,
                }
                for o in self.outcomes
            ],
            "problems": self.problems,
        }

    @property
    def problems(self) -> list[str]:
        """One line per refused file or failed survey-year."""
        lines: list[str] = []
        for o in self.outcomes:
            lines += [f"{o.survey} {o.year}: refused {line}" for line in o.refused]
            if o.error:
                lines.append(f"{o.survey} {o.year}: {o.error}")
        return lines


def last_completed_survey_year(today: date) -> int:
    """The newest survey year whose autumn fieldwork is over: last calendar year."""
    return today.year - 1


class NoSourceError(ValueError):
    """A run was started without a source: a deployment's worker was given none."""


NO_SOURCE = (
    "no source: pass the source parameter, or start the worker with "
    "`brukardata server --source FOLDER_OR_URL` (it sets BRUKARDATA_SOURCE)"
)


def run_settings(warehouse: str | None) -> Settings:
    """A flow run's settings, read once when it starts: the environment of the process that
    runs it (a command, or a deployment's worker), with the warehouse it was given."""
    return Settings.given(warehouse=warehouse)


def open_warehouse(settings: Settings, source: str | None) -> tuple[str, Catalogue]:
    """The run's source (the argument, else the setting) and catalogue, with the warehouse
    migrated and its dimensions in step with the catalogue."""
    source = source or settings.source
    if source is None:
        raise NoSourceError(NO_SOURCE)
    catalogue = settings.catalogue()
    prepare_warehouse_task(settings.warehouse, catalogue, settings.load_lock_timeout)
    return source, catalogue


@flow(
    name="annual-run",
    log_prints=True,
    on_failure=[notify_failure],
    task_runner=runner_from_settings(),
)
def annual_run(
    source: str | None = None,
    year: int | None = None,
    surveys: list[str] | None = None,
    warehouse: str | None = None,
) -> State[Any]:
    """The annual ingestion of one survey year (both surveys unless ``surveys`` is given).

    ``source`` defaults to the ``BRUKARDATA_SOURCE`` setting, ``year`` to the last completed
    survey year, decided when the run starts (so a schedule deployed once keeps loading the
    right year). Ends Completed when every file loaded, Failed (with the summary as its result)
    otherwise.
    """
    logger = get_run_logger()
    year = year or last_completed_survey_year(date.today())
    settings = run_settings(warehouse)
    try:
        source, catalogue = open_warehouse(settings, source)
    except NoSourceError as err:
        return not_started(str(err))
    except TRANSIENT_DB_ERRORS as err:
        return not_started(unreachable("warehouse", masked_warehouse(settings.warehouse), err))
    outcomes = []
    for survey in surveys or list(SURVEYS):
        logger.info("%s %s: ingesting from %s", survey, year, redacted(source))
        outcomes.append(ingest_survey_year(survey, year, source, settings, catalogue))
    summary = RunSummary(warehouse=masked_warehouse(settings.warehouse), outcomes=outcomes)
    if any(o.load_id is not None and o.error is None for o in outcomes):
        report = write_report_task(
            create_warehouse_engine(settings.warehouse),
            year,
            settings.reports_dir() / f"brukarundersokning-{year}-riket.html",
        )
        create_link_artifact(
            report.resolve().as_uri(), link_text=f"Rapport {year} (riket)", key=f"report-{year}"
        )
    return finish_run(summary)


def not_started(reason: str) -> State[Any]:
    """A run that could not start: one line in the log and the state, never a traceback."""
    get_run_logger().error(reason)
    return Failed(message=reason)


def finish_run(summary: RunSummary) -> State[Any]:
    """Log every problem; Completed when every file loaded, else Failed carrying the summary."""
    logger = get_run_logger()
    for line in summary.problems:
        logger.error(line)
    publish_run_artifacts(summary)
    if summary.ok:
        return Completed(message="every file loaded", data=summary)
    return Failed(message=f"{len(summary.problems)} problem(s)", data=summary)
