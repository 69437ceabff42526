"""Exact re-runs: reload only the kommuner whose input changed since the last published load.

A re-run goes through the annual run's steps (fetch, validate, aggregate, stage, audit, publish)
with a different plan of what to replace. A file's sha256 is compared with the newest published
load's file report; the kommuner found in changed, added or removed files (and those whose
hand-out counts changed) are replaced, together with every kommun sharing a file with them (a
file is the unit the row accounting and its audit check); only their files are parsed and
validated, so a re-run's reading costs what changed. The figures are recomputed from the
whole (survey, year), because complementary suppression crosses kommuner within a län: the
kept kommuner's respondents are read back from the warehouse, the new ones numbered above them.
Publishing then replaces those kommuner's raw rows and only the fact rows that differ, so the
län and riket figures they feed change and nothing else. Unchanged input records the request
and loads nothing, so every reporting view stays exactly as it was.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from prefect import flow
from prefect.client.schemas.objects import State
from sqlalchemy import Engine, select

from flows.annual import (
    NoSourceError,
    NotReplaceableError,
    Plan,
    Reader,
    Replacement,
    RunSummary,
    SurveyYearOutcome,
    finish_run,
    ingest_survey_year,
    not_started,
    open_warehouse,
)
from flows.notify import notify_failure
from flows.runners import task_runner
from flows.settings import Settings
from schemas.catalogue import FIRST_YEAR, LAST_YEAR, SURVEYS, Catalogue, default_catalogue
from tasks.fetch import SurveyYearFiles
from tasks.load import last_published_files_task, published_raw_task
from tasks.redact import masked_warehouse
from tasks.validate import ValidatedSurveyYear, file_report, refused_files, report_frame
from warehouse import tables
from warehouse.db import create_warehouse_engine
from warehouse.load import record_rerun_request

KOMMUN_CODE = r"\d{4}"
# A plan that replaces nothing has no broken rules to report.
_NO_PROBLEMS = pd.DataFrame(columns=["source_file", "row_number", "column", "rule", "value"])


def changed_files(published: pd.DataFrame, fetched: pd.DataFrame) -> list[str]:
    """Files whose sha256 differs from the published load's, or that were added or removed."""
    both = published[["source_file", "sha256"]].merge(
        fetched[["source_file", "sha256"]], on="source_file", how="outer", suffixes=("_old", "")
    )
    differs = both["sha256_old"].ne(both["sha256"]) | both["sha256_old"].isna()
    return sorted(both.loc[differs | both["sha256"].isna(), "source_file"])


def changed_hand_outs(published: pd.DataFrame, fetched: pd.DataFrame | None) -> set[str]:
    """Kommuner whose questionnaires-handed-out counts differ from the published ones."""
    keys = ["kommun_kod", "verksamhet", "antal_utdelade"]
    new = pd.DataFrame(columns=keys) if fetched is None else fetched[keys]
    both = (
        published[keys]
        .astype({"antal_utdelade": "int64"})
        .merge(new.astype({"antal_utdelade": "int64"}), how="outer", indicator=True)
    )
    return set(both.loc[both["_merge"] != "both", "kommun_kod"])


def file_kommuner(respondents: pd.DataFrame, quarantine: pd.DataFrame) -> pd.DataFrame:
    """(source_file, kommun_kod) pairs: which kommuner each file holds rows of."""
    refused = quarantine.assign(kommun_kod=quarantine["kommun_kod"].str.zfill(4))
    pairs = pd.concat(
        [respondents[["source_file", "kommun_kod"]], refused[["source_file", "kommun_kod"]]]
    )
    return pairs[pairs["kommun_kod"].str.fullmatch(KOMMUN_CODE)].drop_duplicates()


def close_over_files(kommuner: set[str], pairs: pd.DataFrame) -> tuple[set[str], set[str]]:
    """Grow ``kommuner`` until no file holds rows of both a replaced and a kept kommun; returns
    the kommuner and the files they are read from."""
    while True:
        files = set(pairs.loc[pairs["kommun_kod"].isin(kommuner), "source_file"])
        grown = kommuner | set(pairs.loc[pairs["source_file"].isin(files), "kommun_kod"])
        if grown == kommuner:
            return kommuner, files
        kommuner = grown


def fetched_files(fetched: SurveyYearFiles) -> pd.DataFrame:
    """(source_file, sha256) of every file fetched, to compare with a published file report."""
    return pd.DataFrame(
        [(raw.source_file, raw.sha256) for raw in fetched.every_file],
        columns=["source_file", "sha256"],
    )


def whole_report(
    fetched: SurveyYearFiles,
    published: pd.DataFrame,
    validated: ValidatedSurveyYear | None = None,
) -> pd.DataFrame:
    """The load's report of every fetched file, in the folder's order: the files ``validated``
    now as they were read, the others carried over. A file not read again is the published file
    byte for byte, so its row accounting is the published one; where and when it was fetched is
    new."""
    read = [] if validated is None else [validated.files]
    again = set() if validated is None else set(validated.files["source_file"])
    before = {row["source_file"]: row for row in published.to_dict("records")}
    carried = []
    for raw in fetched.every_file:
        if raw.source_file not in again:
            row = before[raw.source_file]
            error = None if pd.isna(row["error"]) else str(row["error"])
            carried.append(
                file_report(
                    raw,
                    int(row["rows_read"]),
                    int(row["rows_quarantined"]),
                    int(row["kommun_kod_padded"]),
                    error,
                )
            )
    report = pd.concat([*([report_frame(carried)] if carried else []), *read], ignore_index=True)
    order = {raw.source_file: n for n, raw in enumerate(fetched.every_file)}
    return report.sort_values("source_file", key=lambda name: name.map(order), ignore_index=True)


@dataclass
class RerunPlanner:
    """The re-run's plan for ``ingest_survey_year``; keeps what it found for the request record.

    Only what a re-run replaces is parsed and validated: the changed files, to learn their
    kommuner, then, if those kommuner have rows in other files, all those files together (a
    svar_id is unique within a kommun across files).
    The other files are the published ones byte for byte: their rows are read back from the
    warehouse, their accounting from the published file report. ``kommuner`` restricts the
    re-run to those kommuner; with ``force`` they (or, without a list, every kommun) are
    reloaded even when their files did not change.
    """

    survey: str
    year: int
    kommuner: list[str] | None
    force: bool
    changed: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)

    def __call__(self, engine: Engine, fetched: SurveyYearFiles, read: Reader) -> Plan:
        published_files = last_published_files_task(engine, self.survey, self.year)
        if published_files.empty:
            raise NotReplaceableError(
                f"no published load of {self.survey} {self.year} to re-run: use brukardata run"
            )
        published = published_kommuner(engine, self.survey, self.year)
        absent = sorted(set(self.kommuner or ()) - published)
        if absent:
            raise NotReplaceableError(
                f"kommun {', '.join(absent)} has no rows in the published {self.survey} "
                f"{self.year}: nothing of it to re-run (a re-run without --kommun loads a kommun "
                "new to the year)"
            )
        self.changed = changed_files(published_files, fetched_files(fetched))
        if not self.changed and not self.force:
            report = self._checked(whole_report(fetched, published_files))
            return Plan(report, _NO_PROBLEMS, None)
        stored = published_raw_task(engine, self.survey, self.year)
        stored_pairs = file_kommuner(stored["respondents"], stored["quarantine"])
        forced = set(self.kommuner or stored_pairs["kommun_kod"]) if self.force else set()
        first = set(self.changed) | set(
            stored_pairs.loc[stored_pairs["kommun_kod"].isin(forced), "source_file"]
        )
        validated = read(fetched.only(first))
        report = self._checked(whole_report(fetched, published_files, validated))
        pairs = pd.concat(
            [file_kommuner(validated.respondents, validated.quarantine), stored_pairs]
        ).drop_duplicates()
        seeds = set(pairs.loc[pairs["source_file"].isin(self.changed), "kommun_kod"])
        seeds |= changed_hand_outs(stored["distributed"], validated.distributed)
        if self.force:
            seeds = forced
        elif self.kommuner is not None:
            seeds &= set(self.kommuner)
        if not seeds:
            return Plan(report, _NO_PROBLEMS, None)
        kommuner, files = close_over_files(seeds, pairs)
        if not files <= first:  # their kommuner have rows in files not read yet: read together
            validated = read(fetched.only(files))
            report = whole_report(fetched, published_files, validated)
        self.replaced = sorted(kommuner)
        return Plan(
            files=report,
            problems=validated.problems,
            replacement=self._replacement(validated, stored, self.replaced, sorted(files)),
        )

    @staticmethod
    def _checked(report: pd.DataFrame) -> pd.DataFrame:
        """The file ``report``, unless a file in it is refused: then the re-run is refused."""
        refused = refused_files(report)
        if refused:
            raise NotReplaceableError("re-run refused: " + "; ".join(refused), report)
        return report

    @staticmethod
    def _replacement(
        validated: ValidatedSurveyYear,
        stored: dict[str, pd.DataFrame],
        kommuner: list[str],
        files: list[str],
    ) -> Replacement:
        """New rows of ``kommuner`` (renumbered above the stored ones) plus the stored rest."""
        offset = int(stored["respondents"]["respondent_id"].max()) + 1
        new = validated.respondents[validated.respondents["kommun_kod"].isin(kommuner)]
        new_answers = validated.answers[
            validated.answers["respondent_id"].isin(new["respondent_id"])
        ]
        new = new.assign(respondent_id=new["respondent_id"] + offset)
        new_answers = new_answers.assign(respondent_id=new_answers["respondent_id"] + offset)
        kept = stored["respondents"][~stored["respondents"]["kommun_kod"].isin(kommuner)]
        kept_answers = stored["answers"][
            stored["answers"]["respondent_id"].isin(kept["respondent_id"])
        ]
        kept_distributed = stored["distributed"][
            ~stored["distributed"]["kommun_kod"].isin(kommuner)
        ]
        new_distributed = (
            None
            if validated.distributed is None
            else validated.distributed[validated.distributed["kommun_kod"].isin(kommuner)]
        )
        distributed = pd.concat([kept_distributed, new_distributed], ignore_index=True)
        return Replacement(
            respondents=pd.concat([kept, new[kept.columns]], ignore_index=True),
            answers=pd.concat([kept_answers, new_answers[kept_answers.columns]], ignore_index=True),
            distributed=None if distributed.empty else distributed,
            staged_respondents=new,
            staged_answers=new_answers,
            staged_quarantine=validated.quarantine[validated.quarantine["source_file"].isin(files)],
            staged_distributed=new_distributed,
            files=validated.files[validated.files["source_file"].isin(files)],
            kommuner=kommuner,
            source_files=files,
        )


def _joined(values: list[str] | None) -> str | None:
    return None if values is None else ";".join(values)


def _request_record(
    outcome: SurveyYearOutcome, planner: RerunPlanner, **asked: Any
) -> dict[str, Any]:
    """The ``audit.rerun_requests`` row of a finished re-run."""
    result = "failed" if not outcome.ok else "unchanged" if outcome.load_id is None else "replaced"
    return {
        **asked,
        "kommuner": _joined(planner.kommuner),
        "outcome": result,
        "load_id": outcome.load_id,
        "changed_files": _joined(planner.changed),
        "replaced_kommuner": _joined(planner.replaced) if result == "replaced" else None,
        "rows_replaced": outcome.fact_rows_changed,
    }


def published_kommuner(engine: Engine, survey: str, year: int) -> set[str]:
    """The kommuner with accepted questionnaires in the published (survey, year)."""
    query = (
        select(tables.respondents.c.kommun_kod)
        .where(tables.respondents.c.survey == survey, tables.respondents.c.year == year)
        .distinct()
    )
    with engine.connect() as connection:
        return set(connection.scalars(query))


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
    task_runner=task_runner(Settings()),
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
    problem = request_problem(survey, year, kommuner, default_catalogue())
    if problem is not None:
        return not_started(f"{problem[0].removeprefix('--')} {problem[1]}")
    requested_at = datetime.now(UTC)
    try:
        settings, source, catalogue = open_warehouse(warehouse, source)
    except NoSourceError as err:
        return not_started(str(err))
    planner = RerunPlanner(survey=survey, year=year, kommuner=kommuner, force=force)
    outcome = ingest_survey_year(survey, year, source, settings, catalogue, plan=planner)
    record_rerun_request(
        create_warehouse_engine(settings.warehouse),
        _request_record(
            outcome,
            planner,
            survey=survey,
            year=year,
            force=force,
            requested_by=requested_by or getpass.getuser(),
            reason=reason,
            requested_at=requested_at,
        ),
    )
    if outcome.ok and planner.replaced:
        print(f"{survey} {year}: replaced kommuner {', '.join(planner.replaced)}")
    return finish_run(
        RunSummary(warehouse=masked_warehouse(settings.warehouse), outcomes=[outcome])
    )
