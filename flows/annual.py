"""The annual run: every survey of one year, from the source folder to published reporting views."""

from __future__ import annotations

import contextlib
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, unmapped
from prefect.artifacts import create_link_artifact
from prefect.client.schemas.objects import State
from prefect.futures import as_completed
from prefect.runtime import flow_run
from prefect.states import Completed, Failed
from sqlalchemy import Engine, make_url
from sqlalchemy.exc import DBAPIError

from flows.artifacts import publish_run_artifacts
from flows.notify import notify_failure
from flows.progress import FileRead, Step, say
from flows.runners import parallelism, task_runner
from flows.settings import MB, Settings
from schemas.catalogue import SURVEYS, Catalogue, default_catalogue
from tasks.aggregate import aggregate_task
from tasks.audit import AUDITED_STAGING, AuditOutcome, audit_task
from tasks.fetch import SourceError, SurveyYearFiles, fetch_task
from tasks.load import (
    TRANSIENT_DB_ERRORS,
    begin_load_task,
    confirm_lock_task,
    fail_load_task,
    is_disk_full,
    prepare_warehouse_task,
    publish_task,
    published_results_task,
    read_staged_task,
    record_audit_task,
    stage_task,
)
from tasks.parse import combine_parsed, parse_task, split_files
from tasks.redact import masked_warehouse, redacted
from tasks.report import write_report_task
from tasks.summary import headline_figures
from tasks.validate import ValidatedSurveyYear, refused_files, validate_task
from warehouse.db import create_warehouse_engine
from warehouse.load import pause_point
from warehouse.locks import HeldLock, LoadLockLostError, LoadLockTimeoutError, load_lock

# Faults that end one survey-year's load in one line, after their retries; the run goes on.
LOAD_FAULTS: tuple[type[Exception], ...] = (*TRANSIENT_DB_ERRORS, LoadLockLostError)
# DuckDB's refusal to open a file another process holds, and that process's id in it
_DUCKDB_HELD = "Could not set lock on file"
_HOLDER_PID = re.compile(r"\(PID (\d+)\)")


@dataclass
class SurveyYearOutcome:
    """What one (survey, year) of a run did: the files, the row accounting and the headline."""

    survey: str
    year: int
    load_id: int | None  # None: nothing to load (a re-run of unchanged input, a held lock)
    files: pd.DataFrame = field(repr=False)  # schemas.frames.FileReport
    refused: list[str]
    headline: list[str]
    error: str | None = None
    audit: AuditOutcome | None = None
    fact_rows_changed: int | None = None  # fact rows a publish deleted plus inserted
    quarantine_reasons: dict[str, int] = field(default_factory=dict)  # rule → rows broken
    suppressed_cells: int = 0  # question cells hidden by disclosure control

    @property
    def ok(self) -> bool:
        return self.error is None and not self.refused

    def _of_kind(self, kind: str) -> pd.DataFrame:
        return self.files[self.files["kind"] == kind] if len(self.files) else self.files

    def total(self, column: str) -> int:
        """``column`` summed over the answers files: questionnaires, never hand-out counts."""
        return int(self._of_kind("answers")[column].sum()) if len(self.files) else 0

    def summary_row(self) -> dict[str, str]:
        """The outcome in one line of the run's summary (the CLI's table, the UI's artifact)."""
        return {
            "survey": self.survey,
            "year": str(self.year),
            "load": "–" if self.load_id is None else str(self.load_id),
            "files": str(len(self._of_kind("answers"))),
            "refused": str(len(self.refused)),
            "rows read": str(self.total("rows_read")),
            "loaded": str(self.total("rows_loaded")),
            "quarantined": str(self.total("rows_quarantined")),
            "hand-out counts": _hand_out_counts(self._of_kind("distributed")),
            "suppressed cells": str(self.suppressed_cells),
            "status": self.status,
        }

    @property
    def status(self) -> str:
        """ok; published with some files refused (their rows are not in it); or failed."""
        if self.ok:
            return "ok"
        if self.error is None and self.load_id is not None:
            files = "file" if len(self.refused) == 1 else "files"
            return f"published, {len(self.refused)} {files} refused"
        return "failed"


def _hand_out_counts(files: pd.DataFrame) -> str:
    """The rows of ``utdelade.csv`` read, "–" without one."""
    return str(int(files["rows_read"].sum())) if len(files) else "–"


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


@dataclass
class Replacement:
    """What a load replaces and the rows it computes from.

    ``respondents``, ``answers`` and ``distributed`` are the whole (survey, year), the input of
    the aggregation (complementary suppression crosses kommuner, so figures are always computed
    from everything). The ``staged_*`` raw rows and the report of the ``files`` they come from
    are what the load writes: every row for an annual load (``kommuner`` None), the rows of
    ``kommuner`` and the quarantined rows of ``source_files`` for a re-run.
    """

    respondents: pd.DataFrame  # schemas.frames.Respondents
    answers: pd.DataFrame  # schemas.frames.Answers
    distributed: pd.DataFrame | None  # schemas.frames.Distributed
    staged_respondents: pd.DataFrame
    staged_answers: pd.DataFrame
    staged_quarantine: pd.DataFrame
    staged_distributed: pd.DataFrame | None
    files: pd.DataFrame  # schemas.frames.FileReport of the files whose rows are staged
    kommuner: list[str] | None = None
    source_files: list[str] | None = None


class NotReplaceableError(RuntimeError):
    """The input cannot be published as asked (e.g. a re-run whose files were refused);
    ``files`` is the report of the files read, if any, recorded with the failed load."""

    def __init__(self, message: str, files: pd.DataFrame | None = None) -> None:
        super().__init__(message)
        self.files = files


@dataclass
class Plan:
    """What a load read and what it replaces."""

    files: pd.DataFrame  # schemas.frames.FileReport of every file of the (survey, year)
    problems: pd.DataFrame  # broken rules of the quarantined rows read (ValidatedSurveyYear)
    replacement: Replacement | None  # None: nothing changed, and no load is recorded


Reader = Callable[[SurveyYearFiles], ValidatedSurveyYear]  # parse and validate these files
Planner = Callable[[Engine, SurveyYearFiles, Reader], Plan]


def replace_everything(_engine: Engine, fetched: SurveyYearFiles, read: Reader) -> Plan:
    """The annual load's plan: every file is read and replaces every row of the (survey, year)."""
    validated = read(fetched)
    replacement = Replacement(
        respondents=validated.respondents,
        answers=validated.answers,
        distributed=validated.distributed,
        staged_respondents=validated.respondents,
        staged_answers=validated.answers,
        staged_quarantine=validated.quarantine,
        staged_distributed=validated.distributed,
        files=validated.files,
    )
    return Plan(files=validated.files, problems=validated.problems, replacement=replacement)


def ingest_survey_year(
    survey: str,
    year: int,
    source: str,
    settings: Settings,
    catalogue: Catalogue,
    *,
    plan: Planner = replace_everything,
) -> SurveyYearOutcome:
    """Fetch, parse, validate, aggregate, stage, audit and publish one (survey, year).

    The whole load holds the (survey, year)'s load lock, so two loads never overlap. ``plan``
    decides what the load replaces (everything, or a re-run's kommuner; None: nothing changed,
    and no load is recorded). Bad input never raises here: refused files and an unreadable
    source end in the outcome, so the other survey still runs and the user sees one line per
    problem.
    """
    begun: list[int] = []  # the load's id, once it is begun
    try:
        with load_lock(settings.warehouse, survey, year, settings.load_lock_timeout) as lock:
            return _ingest_locked(
                survey, year, source, settings, catalogue, plan=plan, begun=begun, lock=lock
            )
    except LoadLockTimeoutError as err:
        return SurveyYearOutcome(survey, year, None, pd.DataFrame(), [], [], error=str(err))
    except LOAD_FAULTS as err:
        return _failed_by_warehouse(survey, year, settings, begun, err)
    except DBAPIError as err:  # a fatal database error: one line if its disk is full
        if not is_disk_full(err):
            raise
        return _failed_by_warehouse(survey, year, settings, begun, err)


def _failed_by_warehouse(
    survey: str, year: int, settings: Settings, begun: list[int], err: BaseException
) -> SurveyYearOutcome:
    """A warehouse fault that outlived its retries: the load, if begun, is marked failed where
    the warehouse answers again (else the next load of the survey-year marks it), and the run
    goes on with the next survey."""
    error = (
        str(err) if isinstance(err, LoadLockLostError) else warehouse_fault(settings.warehouse, err)
    )
    load_id = begun[0] if begun else None
    if load_id is not None:  # ValueError: another load found it running and marked it failed
        with contextlib.suppress(DBAPIError, ValueError):
            engine = create_warehouse_engine(settings.warehouse)
            fail_load_task(engine, load_id=load_id, error=error, files=None)
    return SurveyYearOutcome(survey, year, load_id, pd.DataFrame(), [], [], error=error)


def _ingest_locked(
    survey: str,
    year: int,
    source: str,
    settings: Settings,
    catalogue: Catalogue,
    *,
    plan: Planner,
    begun: list[int],
    lock: HeldLock,
) -> SurveyYearOutcome:
    """The load itself, under ``lock``; the id of the load it begins is added to ``begun``."""
    engine = create_warehouse_engine(settings.warehouse)

    def begin() -> int:
        load_id: int = begin_load_task(
            engine,
            survey=survey,
            year=year,
            source=redacted(source),
            flow_run_id=flow_run.get_id(),
            settings=settings.statistical_settings(),
        )
        begun.append(load_id)
        return load_id

    def failed(error: str, files: pd.DataFrame | None, load_id: int | None = None) -> int:
        load_id = begin() if load_id is None else load_id
        fail_load_task(engine, load_id=load_id, error=error, files=files)
        return load_id

    fetching = Step(survey, year, "fetch")
    try:
        fetched = fetch_task(
            source, survey, year, landing=settings.landing_root(), hold_up_to=settings.hold_up_to
        )
    except Exception as err:
        error = redacted(
            str(err) if isinstance(err, SourceError) else unreachable("source", source, err)
        )
        load_id = failed(error, None)
        return SurveyYearOutcome(survey, year, load_id, pd.DataFrame(), [], [], error=error)
    fetching.done(f"{len(fetched.every_file)} files fetched")

    def read(files: SurveyYearFiles) -> ValidatedSurveyYear:
        return read_survey_year(files, survey, year, catalogue, settings)

    try:
        planned = plan(engine, fetched, read)
    except NotReplaceableError as err:
        found = pd.DataFrame() if err.files is None else err.files
        return SurveyYearOutcome(
            survey, year, failed(str(err), err.files), found, refused_files(found), [], str(err)
        )
    del fetched  # the files' bytes: not held through the later steps
    files, refused, replacement = planned.files, refused_files(planned.files), planned.replacement
    if replacement is None:
        return SurveyYearOutcome(survey, year, None, files, refused, [])
    if replacement.respondents.empty:
        error = "no valid rows: nothing published, the previous figures stay"
        return SurveyYearOutcome(survey, year, failed(error, files), files, refused, [], error)
    load_id = begin()
    pause_point("after-begin")
    aggregating = Step(survey, year, "aggregate")
    aggregates = aggregate_task(
        replacement.respondents,
        replacement.answers,
        replacement.distributed,
        survey=survey,
        year=year,
        catalogue=catalogue,
        threshold=settings.suppression_threshold,
        confidence=settings.confidence_level,
    )
    aggregating.done(f"{len(aggregates.results):,} figures computed")
    staging = Step(survey, year, "stage")
    stage_task(
        engine,
        load_id=load_id,
        survey=survey,
        year=year,
        files=replacement.files,
        respondents=replacement.staged_respondents,
        answers=replacement.staged_answers,
        quarantine=replacement.staged_quarantine,
        distributed=replacement.staged_distributed,
        results=aggregates.results,
        distribution=aggregates.distribution,
        response_counts=aggregates.response_counts,
    )
    staging.done(f"load {load_id} staged", plain=False)
    pause_point("after-stage")
    auditing = Step(survey, year, "audit")
    audit = audit_staged(
        engine,
        load_id=load_id,
        survey=survey,
        year=year,
        files=replacement.files,
        input_kommuner=sorted(set(replacement.respondents["kommun_kod"])),
        settings=settings,
    )
    auditing.done(f"audit {audit.status}", plain=False)
    if audit.status == "failed":
        error = "audit failed: " + "; ".join(audit.problems)
        failed(error, files, load_id)
        return SurveyYearOutcome(survey, year, load_id, files, refused, [], error, audit)
    pause_point("after-audit")
    confirm_lock_task(lock)
    publishing = Step(survey, year, "publish")
    changed = publish_task(
        engine,
        load_id=load_id,
        survey=survey,
        year=year,
        files=files,
        kommuner=replacement.kommuner,
        source_files=replacement.source_files,
    )
    publishing.done(f"audit {audit.status}, load {load_id} published")
    headline = headline_figures(aggregates.results, survey, catalogue)
    return SurveyYearOutcome(
        survey,
        year,
        load_id,
        files,
        refused,
        headline,
        audit=audit,
        fact_rows_changed=changed,
        quarantine_reasons={
            str(rule): int(n) for rule, n in planned.problems["rule"].value_counts().items()
        },
        suppressed_cells=int(aggregates.results["suppressed"].sum()),
    )


def read_survey_year(
    files: SurveyYearFiles, survey: str, year: int, catalogue: Catalogue, settings: Settings
) -> ValidatedSurveyYear:
    """Parse (in batches, one per worker) and validate ``files`` together, saying how many
    files are read as each batch is done."""
    reading = Step(survey, year, "read", total=len(files.every_file))
    batches = split_files(files, parallelism(settings))
    futures = parse_task.map(
        batches,
        unmapped(survey),
        unmapped(year),
        unmapped(catalogue),
        unmapped(FileRead(survey, year)),
    )
    sizes = {
        future.task_run_id: len(batch.every_file)
        for future, batch in zip(futures, batches, strict=True)
    }
    read_so_far = 0
    for finished in as_completed(list(futures)):
        read_so_far += sizes[finished.task_run_id]
        reading.reached(read_so_far)
    parsed = combine_parsed(futures.result())
    reading.done(f"{read_so_far} files read", plain=False)
    validating = Step(survey, year, "validate")
    validated = validate_task(parsed, survey, year, catalogue)
    report = validated.files
    checked = (
        f"{int(report['rows_read'].sum()):,} rows checked",
        f"{int(report['rows_quarantined'].sum()):,} quarantined",
        f"{len(refused_files(report))} files refused",
    )
    validating.done(*checked, plain=False)
    # the plain line of both steps, as it always read
    seconds = time.perf_counter() - reading.started
    say(survey, year, (f"{len(report)} files read", *checked), seconds=seconds)
    return validated


def audit_staged(
    engine: Engine,
    *,
    load_id: int,
    survey: str,
    year: int,
    files: pd.DataFrame,
    input_kommuner: list[str],
    settings: Settings,
) -> AuditOutcome:
    """Run the audit suite on a load's staged rows and record its verdict with the load."""
    answer_files = files[files["kind"] == "answers"]
    audit = audit_task(
        read_staged_task(engine, load_id, AUDITED_STAGING),
        load_id=load_id,
        rows_loaded=int(answer_files["rows_loaded"].sum()),
        input_kommuner=input_kommuner,
        threshold=settings.suppression_threshold,
        previous_results=published_results_task(engine, survey, year - 1),
        max_change_points=settings.max_change_points,
        data_docs_dir=settings.data_docs_dir(),
    )
    record_audit_task(
        engine,
        load_id=load_id,
        status=audit.status,
        expectations=audit.expectations,
        data_docs_path=audit.data_docs_path,
    )
    return audit


def warehouse_fault(warehouse: str, err: BaseException) -> str:
    """One line for a warehouse fault that outlived its retries; for a DuckDB file another
    process holds, who holds it and what to do about it."""
    reason = str(getattr(err, "orig", None) or err)
    if is_disk_full(err):
        return f"warehouse {masked_warehouse(warehouse)}: {_disk_full(warehouse)}"
    if _DUCKDB_HELD not in reason:
        return unreachable("warehouse", masked_warehouse(warehouse), err)
    pid = _HOLDER_PID.search(reason)
    holder = f" (PID {pid[1]})" if pid else ""
    return (
        f"warehouse {masked_warehouse(warehouse)} is held by another process{holder} after "
        "retries: DuckDB lets one process at a time open its file; for BI tools that query "
        "while loads run, use PostgreSQL"
    )


def _disk_full(warehouse: str) -> str:
    """What a full disk needs: for a DuckDB file, its size and the space left beside it."""
    url = make_url(warehouse)
    if url.get_backend_name() != "duckdb" or url.database in (None, "", ":memory:"):
        return "no space left on the database server's disk; nothing was published"
    database = Path(url.database).expanduser()
    size = database.stat().st_size if database.exists() else 0
    free = shutil.disk_usage(database.parent).free
    return (
        f"no space left on device, its disk has {free / MB:.0f} MB free; nothing was published. "
        f"Free at least the file's size ({size / MB:.0f} MB) for a load and run again"
    )


def unreachable(what: str, where: str, err: BaseException) -> str:
    """One line for a fault that outlived its retries: what, where, and the first line of why."""
    reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
    return f"{what} {where} unreachable after retries: {type(err).__name__}: {reason}"


def last_completed_survey_year(today: date) -> int:
    """The newest survey year whose autumn fieldwork is over: last calendar year."""
    return today.year - 1


class NoSourceError(ValueError):
    """A run was started without a source: a deployment's worker was given none."""


NO_SOURCE = (
    "no source: pass the source parameter, or start the worker with "
    "`brukardata server --source FOLDER_OR_URL` (it sets BRUKARDATA_SOURCE)"
)


def open_warehouse(warehouse: str | None, source: str | None) -> tuple[Settings, str, Catalogue]:
    """The run's settings, its source (the argument, else the setting) and the catalogue, with
    the warehouse migrated and its dimensions in step with the catalogue."""
    settings = Settings() if warehouse is None else Settings(warehouse=warehouse)
    source = source or settings.source
    if source is None:
        raise NoSourceError(NO_SOURCE)
    catalogue = default_catalogue()
    prepare_warehouse_task(settings.warehouse, catalogue, settings.load_lock_timeout)
    return settings, source, catalogue


@flow(
    name="annual-run",
    log_prints=True,
    on_failure=[notify_failure],
    task_runner=task_runner(Settings()),
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
    try:
        settings, source, catalogue = open_warehouse(warehouse, source)
    except NoSourceError as err:
        return not_started(str(err))
    except TRANSIENT_DB_ERRORS as err:
        target = masked_warehouse(warehouse or Settings().warehouse)
        return not_started(unreachable("warehouse", target, err))
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
