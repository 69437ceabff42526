"""Exact re-runs: reload only the kommuner whose input changed since the last published load.

A re-run takes the annual run's steps (``flows.load``: fetch, read, aggregate, stage, audit,
publish); only what it reads differs (``read_changed``, ``tasks.replace``). A file's sha256 is
compared with the newest published load's file report; the kommuner found in changed, added or
removed files (and those whose hand-out counts changed) are replaced, together with every kommun
sharing a file with them (a file is the unit of the row accounting and of its audit check);
only their files are parsed and validated, so a re-run's reading costs what changed. The
figures are recomputed from the whole (survey, year), because complementary suppression crosses
kommuner within a län: the kept kommuner's respondents are read back from the warehouse, the
new ones numbered above them. Publishing then replaces those kommuner's raw rows and only the
fact rows that differ, so the län and riket figures they feed change and nothing else.
Unchanged input records the request and loads nothing, so every reporting view stays exactly
as it was.
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import Any

from prefect import flow
from prefect.client.schemas.objects import State

from flows.annual import (
    NoSourceError,
    RunSummary,
    finish_run,
    not_started,
    open_warehouse,
    run_settings,
)
from flows.load import RerunRequest, SurveyYearOutcome, ingest_survey_year
from flows.notify import notify_failure
from flows.runners import runner_from_settings
from schemas.catalogue import FIRST_YEAR, LAST_YEAR, SURVEYS, Catalogue
from tasks.redact import masked_warehouse
from warehouse.db import create_warehouse_engine
from warehouse.load import record_rerun_request


def _joined(values: list[str] | None) -> str | None:
    return None if values is None else ";".join(values)


def _request_record(outcome: SurveyYearOutcome, asked: RerunRequest, **who: Any) -> dict[str, Any]:
    """The ``audit.rerun_requests`` row of a finished re-run."""
    result = "failed" if not outcome.ok else "unchanged" if outcome.load_id is None else "replaced"
    return {
        **who,
        "kommuner": _joined(asked.kommuner),
        "force": asked.force,
        "outcome": result,
        "load_id": outcome.load_id,
        "changed_files": _joined(outcome.changed_files),
        "replaced_kommuner": _joined(outcome.replaced_kommuner) if result == "replaced" else None,
        "rows_replaced": outcome.fact_rows_changed,
    }


def what_it_did(outcome: SurveyYearOutcome) -> str:
    """What a re-run that went through did, in one line."""
    if outcome.load_id is None:
        return "input unchanged, nothing replaced"
    return f"load {outcome.load_id} published, {outcome.fact_rows_changed} fact rows changed"


def request_problem(
    survey: str, year: int, kommuner: list[str] | None, catalogue: Catalogue
) -> tuple[str, str] | None:
    """The first argument of a re-run request that names no survey, year or kommun, as
    (option, why); None when all do. Checked before anything is fetched or written, so a
    mistyped or hostile argument never becomes a load, a request record or a replacement."""
    if survey not in SURVEYS:
        return "--survey", f"{survey!r} is not one of {', '.join(SURVEYS)}"
    if not FIRST_YEAR <= year <= LAST_YEAR:
        return "--year", f"{year} is not between {FIRST_YEAR} and {LAST_YEAR}"
    unknown = [kommun for kommun in kommuner or [] if kommun not in catalogue.kommun_codes]
    if unknown:
        return "--kommun", f"{unknown[0]!r} is not a kommun code of the catalogue (e.g. 0880)"
    return None


@flow(
    name="rerun",
    log_prints=True,
    on_failure=[notify_failure],
    task_runner=runner_from_settings(),
)
def rerun(
    survey: str,
    year: int,
    *,
    kommuner: list[str] | None = None,
    force: bool = False,
    reason: str = "",
    requested_by: str | None = None,
    source: str | None = None,
    warehouse: str | None = None,
) -> State[Any]:
    """Re-fetch one (survey, year) and replace only what changed since the last published load.

    Ends Completed when every file loaded and the audit passed (or nothing changed), Failed with
    the summary otherwise. Every request is recorded with who asked and why.
    """
    if not reason.strip():
        return not_started("a re-run needs a reason: pass the reason parameter")
    settings = run_settings(warehouse)
    problem = request_problem(survey, year, kommuner, settings.catalogue())
    if problem is not None:
        return not_started(f"{problem[0].removeprefix('--')} {problem[1]}")
    requested_at = datetime.now(UTC)
    try:
        source, catalogue = open_warehouse(settings, source)
    except NoSourceError as err:
        return not_started(str(err))
    asked = RerunRequest(kommuner=kommuner, force=force)
    outcome = ingest_survey_year(survey, year, source, settings, catalogue, rerun=asked)
    record_rerun_request(
        create_warehouse_engine(settings.warehouse),
        _request_record(
            outcome,
            asked,
            survey=survey,
            year=year,
            requested_by=requested_by or getpass.getuser(),
            reason=reason,
            requested_at=requested_at,
        ),
    )
    if outcome.ok and outcome.replaced_kommuner:
        print(f"{survey} {year}: replaced kommuner {', '.join(outcome.replaced_kommuner)}")
    return finish_run(
        RunSummary(warehouse=masked_warehouse(settings.warehouse), outcomes=[outcome])
    )
