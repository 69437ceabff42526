"""What a load replaces, as data: every row of a survey-year, or the rows of a re-run's kommuner.

A load's figures are always computed from the whole (survey, year), because complementary
suppression crosses kommuner; what it writes of the raw rows is another matter. An annual load
writes everything it read. A re-run compares each file's sha256 with the newest published load's
file report: the kommuner found in changed, added or removed files (and those whose hand-out
counts changed) are replaced, together with every kommun sharing a file with them (a file is the
unit of the row accounting and of its audit check). Their new rows join the published rows of
the other kommuner, read back from the warehouse, to make the whole survey-year again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from tasks.fetch import SurveyYearFiles
from tasks.validate import ValidatedSurveyYear, file_report, report_frame

KOMMUN_CODE = r"\d{4}"
# A load that replaces nothing has no broken rules to report.
NO_PROBLEMS = pd.DataFrame(columns=["source_file", "row_number", "column", "rule", "value"])


@dataclass(frozen=True)
class LoadInput:
    """The rows one load computes from and the part of them it writes.

    ``respondents``, ``answers`` and ``distributed`` are the whole (survey, year): the input of
    the aggregation. The ``written_*`` raw rows, from the files ``written_files`` reports, are
    what the load replaces: every row when ``kommuner`` is None, the rows of ``kommuner`` from
    ``source_files`` for a re-run, nothing when ``kommuner`` is empty (the input is unchanged).
    ``files`` reports every file of the survey-year, as the user sees it.
    """

    files: pd.DataFrame  # schemas.frames.FileReport
    problems: pd.DataFrame  # the broken rules of the quarantined rows read
    respondents: pd.DataFrame  # schemas.frames.Respondents
    answers: pd.DataFrame  # schemas.frames.Answers
    distributed: pd.DataFrame | None  # schemas.frames.Distributed
    written_respondents: pd.DataFrame
    written_answers: pd.DataFrame
    written_quarantine: pd.DataFrame
    written_distributed: pd.DataFrame | None
    written_files: pd.DataFrame
    kommuner: list[str] | None = None
    source_files: list[str] | None = None
    changed_files: list[str] = field(default_factory=list)  # a re-run's: the files that differ

    @property
    def unchanged(self) -> bool:
        return self.kommuner == []


def everything(validated: ValidatedSurveyYear) -> LoadInput:
    """An annual load: every file read replaces every row of the (survey, year)."""
    return LoadInput(
        files=validated.files,
        problems=validated.problems,
        respondents=validated.respondents,
        answers=validated.answers,
        distributed=validated.distributed,
        written_respondents=validated.respondents,
        written_answers=validated.answers,
        written_quarantine=validated.quarantine,
        written_distributed=validated.distributed,
        written_files=validated.files,
    )


def nothing(files: pd.DataFrame, changed: list[str]) -> LoadInput:
    """A re-run that replaces no kommun (its input, or that of the kommuner it asks for, is
    unchanged): the report of its files, and no rows."""
    empty = pd.DataFrame()
    return LoadInput(
        files, NO_PROBLEMS, empty, empty, None, empty, empty, empty, None, empty, [], [], changed
    )


def kommuner_replaced(
    validated: ValidatedSurveyYear,
    stored: dict[str, pd.DataFrame],
    *,
    report: pd.DataFrame,
    kommuner: list[str],
    files: list[str],
    changed: list[str],
) -> LoadInput:
    """New rows of ``kommuner`` (renumbered above the stored ones) plus the stored rest."""
    offset = int(stored["respondents"]["respondent_id"].max()) + 1
    new = validated.respondents[validated.respondents["kommun_kod"].isin(kommuner)]
    new_answers = validated.answers[validated.answers["respondent_id"].isin(new["respondent_id"])]
    new = new.assign(respondent_id=new["respondent_id"] + offset)
    new_answers = new_answers.assign(respondent_id=new_answers["respondent_id"] + offset)
    kept = stored["respondents"][~stored["respondents"]["kommun_kod"].isin(kommuner)]
    kept_answers = stored["answers"][stored["answers"]["respondent_id"].isin(kept["respondent_id"])]
    kept_distributed = stored["distributed"][~stored["distributed"]["kommun_kod"].isin(kommuner)]
    new_distributed = (
        None
        if validated.distributed is None
        else validated.distributed[validated.distributed["kommun_kod"].isin(kommuner)]
    )
    distributed = pd.concat([kept_distributed, new_distributed], ignore_index=True)
    return LoadInput(
        files=report,
        problems=validated.problems,
        respondents=pd.concat([kept, new[kept.columns]], ignore_index=True),
        answers=pd.concat([kept_answers, new_answers[kept_answers.columns]], ignore_index=True),
        distributed=None if distributed.empty else distributed,
        written_respondents=new,
        written_answers=new_answers,
        written_quarantine=validated.quarantine[validated.quarantine["source_file"].isin(files)],
        written_distributed=new_distributed,
        written_files=validated.files[validated.files["source_file"].isin(files)],
        kommuner=kommuner,
        source_files=files,
        changed_files=changed,
    )


def changed_files(published: pd.DataFrame, fetched: pd.DataFrame) -> list[str]:
    """Files whose sha256 differs from the published load's, or that were added or removed."""
    both = published[["source_file", "sha256"]].merge(
        fetched[["source_file", "sha256"]], on="source_file", how="outer", suffixes=("_old", "")
    )
    differs = both["sha256_old"].ne(both["sha256"]) | both["sha256_old"].isna()
    return sorted(both.loc[differs | both["sha256"].isna(), "source_file"])


def changed_distributed(published: pd.DataFrame, fetched: pd.DataFrame | None) -> set[str]:
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
