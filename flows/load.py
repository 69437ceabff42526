"""One survey-year's load, step by step: fetch → read → aggregate → stage → audit → publish.

The annual run reads every file; a re-run reads the changed files and the warehouse's rows of
the rest (``read_changed``). Both hand the same ``LoadInput`` to the same four steps, which
differ only in the data: which rows are written and which kommuner they replace. The whole
load holds the (survey, year)'s load lock, so two loads never overlap. Bad input never raises
here: refused files and an unreadable source end in the outcome, so the other survey still
runs and the user sees one line per problem.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from prefect import unmapped
from prefect.futures import as_completed
from prefect.runtime import flow_run
from sqlalchemy import Engine, make_url
from sqlalchemy.exc import DBAPIError

from flows.progress import FileRead, Step, say
from flows.runners import parallelism
from flows.settings import MB, Settings
from schemas.catalogue import Catalogue
from tasks.aggregate import Aggregates, aggregate_task
from tasks.audit import AUDITED_STAGING, AuditOutcome, audit_task
from tasks.fetch import SourceError, SurveyYearFiles, fetch_task
from tasks.load import (
    TRANSIENT_DB_ERRORS,
    begin_load_task,
    confirm_lock_task,
    fail_load_task,
    is_disk_full,
    last_published_files_task,
    publish_task,
    published_kommuner_task,
    published_raw_task,
    published_results_task,
    read_staged_task,
    record_audit_task,
    stage_task,
)
from tasks.parse import combine_parsed, parse_task, split_files
from tasks.redact import masked_warehouse, redacted
from tasks.replace import (
    LoadInput,
    changed_distributed,
    changed_files,
    close_over_files,
    everything,
    fetched_files,
    file_kommuner,
    kommuner_replaced,
    nothing,
    whole_report,
)
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
    changed_files: list[str] = field(default_factory=list)  # a re-run's changed files
    replaced_kommuner: list[str] = field(default_factory=list)  # a re-run's kommuner

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
            "hand-out counts": _distributed_rows(self._of_kind("distributed")),
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


def _distributed_rows(files: pd.DataFrame) -> str:
    """The rows of ``utdelade.csv`` read, "–" without one."""
    return str(int(files["rows_read"].sum())) if len(files) else "–"


@dataclass(frozen=True)
class RerunRequest:
    """What a re-run asks: only ``kommuner`` (None: any whose input changed); with ``force``,
    those kommuner (or every one) even when their files did not change."""

    kommuner: list[str] | None = None
    force: bool = False


class NotReplaceableError(RuntimeError):
    """The input cannot be published as asked (e.g. a re-run whose files were refused);
    ``files`` is the report of the files read, if any, recorded with the failed load."""

    def __init__(
        self, message: str, files: pd.DataFrame | None = None, changed: list[str] | None = None
    ) -> None:
        super().__init__(message)
        self.files, self.changed = files, changed or []


@dataclass
class LoadRecord:
    """The load's row in ``audit.loads``: begun when there is something to load, failed with
    the reason when it cannot be published."""

    engine: Engine
    survey: str
    year: int
    source: str
    settings: Settings
    load_id: int | None = None

    def begin(self) -> int:
        self.load_id = begin_load_task(
            self.engine,
            survey=self.survey,
            year=self.year,
            source=redacted(self.source),
            flow_run_id=flow_run.get_id(),
            settings=self.settings.statistical_settings(),
        )
        return self.load_id

    def fail(self, error: str, files: pd.DataFrame | None) -> SurveyYearOutcome:
        """Record the load failed (begun now if it was not) and say so in the outcome."""
        load_id = self.begin() if self.load_id is None else self.load_id
        fail_load_task(self.engine, load_id=load_id, error=error, files=files)
        found = pd.DataFrame() if files is None else files
        return SurveyYearOutcome(
            self.survey, self.year, load_id, found, refused_files(found), [], error
        )


def ingest_survey_year(
    survey: str,
    year: int,
    source: str,
    settings: Settings,
    catalogue: Catalogue,
    *,
    rerun: RerunRequest | None = None,
) -> SurveyYearOutcome:
    """Load one (survey, year): every file, or what ``rerun`` asks to replace."""
    record = LoadRecord(create_warehouse_engine(settings.warehouse), survey, year, source, settings)
    try:
        with load_lock(settings.warehouse, survey, year, settings.load_lock_timeout) as lock:
            return _load(record, lock, catalogue, rerun)
    except LoadLockTimeoutError as err:
        return SurveyYearOutcome(survey, year, None, pd.DataFrame(), [], [], error=str(err))
    except LOAD_FAULTS as err:
        return _failed_by_warehouse(record, err)
    except DBAPIError as err:  # a fatal database error: one line if its disk is full
        if not is_disk_full(err):
            raise
        return _failed_by_warehouse(record, err)


def _load(
    record: LoadRecord, lock: HeldLock, catalogue: Catalogue, rerun: RerunRequest | None
) -> SurveyYearOutcome:
    """The load's steps, under ``lock``."""
    survey, year, source, settings = record.survey, record.year, record.source, record.settings
    fetching = Step(survey, year, "fetch")
    try:
        fetched = fetch_task(
            source,
            survey,
            year,
            landing=settings.landing_root(),
            stream_above=settings.stream_above,
        )
    except Exception as err:
        error = str(err) if isinstance(err, SourceError) else unreachable("source", source, err)
        return record.fail(redacted(error), None)
    fetching.done(f"{len(fetched.every_file)} files fetched")
    try:
        if rerun is None:
            rows = everything(read_files(fetched, survey, year, catalogue, settings))
        else:
            rows = read_changed(record, fetched, rerun, catalogue)
    except NotReplaceableError as err:
        outcome = record.fail(str(err), err.files)
        outcome.changed_files = err.changed
        return outcome
    del fetched  # the files' bytes: not held through the later steps
    refused = refused_files(rows.files)
    if rows.unchanged:
        return SurveyYearOutcome(
            survey, year, None, rows.files, refused, [], changed_files=rows.changed_files
        )
    if rows.respondents.empty:
        error = "no valid rows: nothing published, the previous figures stay"
        return record.fail(error, rows.files)
    return publish_rows(record, lock, rows, catalogue)


def read_files(
    files: SurveyYearFiles, survey: str, year: int, catalogue: Catalogue, settings: Settings
) -> ValidatedSurveyYear:
    """Parse ``files`` (in batches, one per worker) and validate them together, saying how
    many files are read as each batch is done."""
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


def read_changed(
    record: LoadRecord, fetched: SurveyYearFiles, rerun: RerunRequest, catalogue: Catalogue
) -> LoadInput:
    """A re-run's rows: the changed files read, the published rows of the other kommuner.

    Only what a re-run replaces is parsed and validated: the changed files (and, when forced,
    the files of the kommuner asked for), to learn their kommuner, then, if those kommuner have
    rows in other files, all those files together (a svar_id is unique within a kommun across
    files). The other files are the published ones byte for byte: their rows are read back from
    the warehouse, their accounting from the published file report.
    """
    engine, survey, year, settings = record.engine, record.survey, record.year, record.settings
    published_files = _published_files(record, rerun)
    changed = changed_files(published_files, fetched_files(fetched))
    if not changed and not rerun.force:
        report = _accepted(whole_report(fetched, published_files), changed)
        return nothing(report, changed)
    stored = published_raw_task(engine, survey, year)
    stored_pairs = file_kommuner(stored["respondents"], stored["quarantine"])
    forced = set(rerun.kommuner or stored_pairs["kommun_kod"]) if rerun.force else set()
    first = set(changed) | set(
        stored_pairs.loc[stored_pairs["kommun_kod"].isin(forced), "source_file"]
    )
    validated = read_files(fetched.only(first), survey, year, catalogue, settings)
    report = _accepted(whole_report(fetched, published_files, validated), changed)
    pairs = pd.concat(
        [file_kommuner(validated.respondents, validated.quarantine), stored_pairs]
    ).drop_duplicates()
    seeds = set(pairs.loc[pairs["source_file"].isin(changed), "kommun_kod"])
    seeds |= changed_distributed(stored["distributed"], validated.distributed)
    if rerun.force:
        seeds = forced
    elif rerun.kommuner is not None:
        seeds &= set(rerun.kommuner)
    if not seeds:
        return nothing(report, changed)
    kommuner, files = close_over_files(seeds, pairs)
    if not files <= first:  # their kommuner have rows in files not read yet: read together
        validated = read_files(fetched.only(files), survey, year, catalogue, settings)
        report = whole_report(fetched, published_files, validated)
    return kommuner_replaced(
        validated,
        stored,
        report=report,
        kommuner=sorted(kommuner),
        files=sorted(files),
        changed=changed,
    )


def _published_files(record: LoadRecord, rerun: RerunRequest) -> pd.DataFrame:
    """The published load's file report, where a re-run has a published load and the kommuner
    it asks for to replace."""
    survey, year = record.survey, record.year
    published_files = last_published_files_task(record.engine, survey, year)
    if published_files.empty:
        raise NotReplaceableError(
            f"no published load of {survey} {year} to re-run: use brukardata run"
        )
    published = published_kommuner_task(record.engine, survey, year)
    absent = sorted(set(rerun.kommuner or ()) - published)
    if absent:
        raise NotReplaceableError(
            f"kommun {', '.join(absent)} has no rows in the published {survey} {year}: nothing "
            "of it to re-run (a re-run without --kommun loads a kommun new to the year)"
        )
    return published_files


def _accepted(report: pd.DataFrame, changed: list[str]) -> pd.DataFrame:
    """The file ``report``, unless a file in it is refused: then the re-run is refused."""
    refused = refused_files(report)
    if refused:
        raise NotReplaceableError("re-run refused: " + "; ".join(refused), report, changed)
    return report


def publish_rows(
    record: LoadRecord, lock: HeldLock, rows: LoadInput, catalogue: Catalogue
) -> SurveyYearOutcome:
    """aggregate → stage → audit → publish: the figures of the whole survey-year, and the
    written rows in place of the ones they replace, only if the audit passes."""
    load_id = record.begin()
    pause_point("after-begin")
    aggregates = aggregate_rows(rows, record.survey, record.year, catalogue, record.settings)
    stage_rows(record, rows, aggregates)
    pause_point("after-stage")
    audit = audit_staged(record, rows.written_files, sorted(set(rows.respondents["kommun_kod"])))
    if audit.status == "failed":
        outcome = record.fail("audit failed: " + "; ".join(audit.problems), rows.files)
        outcome.audit = audit
        return outcome
    pause_point("after-audit")
    confirm_lock_task(lock)
    publishing = Step(record.survey, record.year, "publish")
    changed = publish_task(
        record.engine,
        load_id=load_id,
        survey=record.survey,
        year=record.year,
        files=rows.files,
        kommuner=rows.kommuner,
        source_files=rows.source_files,
    )
    publishing.done(f"audit {audit.status}, load {load_id} published")
    return SurveyYearOutcome(
        record.survey,
        record.year,
        load_id,
        rows.files,
        refused_files(rows.files),
        headline_figures(aggregates.results, record.survey, catalogue),
        audit=audit,
        fact_rows_changed=changed,
        quarantine_reasons={
            str(rule): int(n) for rule, n in rows.problems["rule"].value_counts().items()
        },
        suppressed_cells=int(aggregates.results["suppressed"].sum()),
        changed_files=rows.changed_files,
        replaced_kommuner=rows.kommuner or [],
    )


def stage_rows(record: LoadRecord, rows: LoadInput, aggregates: Aggregates) -> None:
    """Write the load's raw rows and figures to ``staging``, tagged with its load id."""
    assert record.load_id is not None, "a load is staged once it is begun"
    staging = Step(record.survey, record.year, "stage")
    stage_task(
        record.engine,
        load_id=record.load_id,
        survey=record.survey,
        year=record.year,
        files=rows.written_files,
        respondents=rows.written_respondents,
        answers=rows.written_answers,
        quarantine=rows.written_quarantine,
        distributed=rows.written_distributed,
        results=aggregates.results,
        distribution=aggregates.distribution,
        response_counts=aggregates.response_counts,
    )
    staging.done(f"load {record.load_id} staged", plain=False)


def aggregate_rows(
    rows: LoadInput, survey: str, year: int, catalogue: Catalogue, settings: Settings
) -> Aggregates:
    """The figures of the whole survey-year, with disclosure control."""
    aggregating = Step(survey, year, "aggregate")
    aggregates = aggregate_task(
        rows.respondents,
        rows.answers,
        rows.distributed,
        survey=survey,
        year=year,
        catalogue=catalogue,
        threshold=settings.suppression_threshold,
        confidence=settings.confidence_level,
    )
    aggregating.done(f"{len(aggregates.results):,} figures computed")
    return aggregates


def audit_staged(
    record: LoadRecord, files: pd.DataFrame, input_kommuner: list[str]
) -> AuditOutcome:
    """Run the audit suite on a load's staged rows (of ``files``, from ``input_kommuner``) and
    record its verdict with the load."""
    engine, load_id, settings = record.engine, record.load_id, record.settings
    assert load_id is not None, "a load is audited once it is begun"
    survey, year = record.survey, record.year
    auditing = Step(survey, year, "audit")
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
    auditing.done(f"audit {audit.status}", plain=False)
    return audit


def _failed_by_warehouse(record: LoadRecord, err: BaseException) -> SurveyYearOutcome:
    """A warehouse fault that outlived its retries: the load, if begun, is marked failed where
    the warehouse answers again (else the next load of the survey-year marks it), and the run
    goes on with the next survey."""
    warehouse = record.settings.warehouse
    error = str(err) if isinstance(err, LoadLockLostError) else warehouse_fault(warehouse, err)
    if record.load_id is not None:  # ValueError: another load found it running and failed it
        with contextlib.suppress(DBAPIError, ValueError):
            engine = create_warehouse_engine(warehouse)
            fail_load_task(engine, load_id=record.load_id, error=error, files=None)
    return SurveyYearOutcome(
        record.survey, record.year, record.load_id, pd.DataFrame(), [], [], error=error
    )


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
