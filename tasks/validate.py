"""Validate: normalise one survey-year's parsed exports, check them, and account for every row.

Each row read ends in exactly one place: ``respondents``/``answers`` (valid) or ``quarantine``
(with every reason, its row number and column, and its original cells). Each file ends
``loaded`` or ``refused``; ``files`` proves ``rows_read = rows_loaded + rows_quarantined``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd
import pandera.pandas as pa
from prefect import task
from prefect.cache_policies import NO_CACHE

from schemas.catalogue import Catalogue
from schemas.codebook import Codebook
from schemas.exports import FRAME_RULE_COLUMN, questionnaire_schema, respondent_schema
from schemas.frames import Answers, FileReport, Quarantine, Respondents
from tasks.fetch import DISTRIBUTED_FILE, RawFile
from tasks.parse import ExportError, ParsedExport, ParsedSurveyYear

_WHOLE_NUMBER = r"^(\d+)\.0+$"  # how spreadsheets write integers they stored as numbers
# The columns every parsed export has, so that a year with no readable file flows through unchanged.
_EMPTY_EXPORT = pd.DataFrame(
    {
        c: pd.Series(dtype=int if c == "row_number" else str)
        for c in [
            "source_file",
            "row_number",
            "kommun_kod",
            "verksamhet",
            "enhet_id",
            "svar_id",
            "kon",
        ]
    }
)


@dataclass(frozen=True)
class ValidatedSurveyYear:
    """The outcome of validating one survey-year: valid rows, quarantine and per-file accounting."""

    respondents: pd.DataFrame  # schemas.frames.Respondents
    answers: pd.DataFrame  # schemas.frames.Answers
    quarantine: pd.DataFrame  # schemas.frames.Quarantine
    files: pd.DataFrame  # schemas.frames.FileReport
    distributed: pd.DataFrame | None  # schemas.frames.Distributed
    # one row per broken rule of a quarantined row: source_file, row_number, column, rule, value
    problems: pd.DataFrame

    @property
    def refused(self) -> list[str]:
        """One line per refused file, as shown to the user."""
        refused = self.files[self.files["status"] == "refused"]
        return [
            f"{name}: {error}"
            for name, error in zip(refused["source_file"], refused["error"], strict=True)
        ]


def _translate(
    cells: pd.Series, lookup: dict[str, str], *, whole_numbers: bool = False
) -> pd.Series:
    """The code each cell spells in ``lookup`` (compared as codebook spellings are), else NaN.

    Each distinct spelling is looked up once: a column of a million answers holds a handful.
    ``whole_numbers`` reads "2.0", as spreadsheets store integers, as "2".
    """
    positions, distinct = pd.factorize(cells)
    keys = pd.Series(distinct, dtype=str).str.split().str.join(" ").str.casefold()
    if whole_numbers:
        keys = keys.str.replace(_WHOLE_NUMBER, r"\1", regex=True)
    codes = keys.map(lookup).to_numpy(dtype=object)
    return pd.Series(codes[positions], index=cells.index, dtype=str)


def normalise(parsed: ParsedExport, survey: str, catalogue: Catalogue) -> tuple[pd.DataFrame, int]:
    """Cells as canonical text codes, and how many kommun codes had their leading zero restored."""
    return normalise_frame(parsed.frame, parsed.codebook, survey, catalogue)


def normalise_frame(
    parsed_frame: pd.DataFrame, book: Codebook, survey: str, catalogue: Catalogue
) -> tuple[pd.DataFrame, int]:
    """``normalise`` for a frame read by ``book``, e.g. one chunk of a large file.

    The codebook that read the file says which names and labels stand for which code. Anything
    that cannot be interpreted keeps its original text, so validation reports it.
    """
    frame = parsed_frame.copy()
    text_columns = [c for c in frame.columns if c != "row_number"]
    frame[text_columns] = frame[text_columns].apply(lambda column: column.str.strip())
    kommun = frame["kommun_kod"].str.replace(_WHOLE_NUMBER, r"\1", regex=True)
    lost_zero = kommun.str.fullmatch(r"\d{3}")
    kommun = kommun.where(~lost_zero, "0" + kommun)
    named = _translate(kommun, book.value_lookup("kommun_kod", survey, catalogue))
    frame["kommun_kod"] = named.fillna(kommun)
    verksamhet = _translate(frame["verksamhet"], book.value_lookup("verksamhet", survey, catalogue))
    frame["verksamhet"] = verksamhet.fillna(frame["verksamhet"].str.upper())
    frame["kon"] = _translate(frame["kon"], book.gender_lookup).fillna(frame["kon"])
    if "enhet_id" not in frame.columns:
        frame["enhet_id"] = ""
    for question in [c for c in frame.columns if c in catalogue.scale_of]:
        lookup = book.answer_lookup(question, catalogue)
        frame[question] = _translate(frame[question], lookup, whole_numbers=True).fillna(
            frame[question]
        )
    return frame, int(lost_zero.sum())


def _require_asked_columns(
    frame: pd.DataFrame, source_file: str, survey: str, year: int, catalogue: Catalogue
) -> None:
    """Every question a file's enkäter ask needs its column: a missing one is not 'unanswered'."""
    for verksamhet in sorted(set(frame["verksamhet"]) & set(catalogue.enkater(survey, year))):
        missing = [
            q for q in catalogue.questions_asked(survey, verksamhet, year) if q not in frame.columns
        ]
        if missing:
            raise ExportError(
                source_file,
                f"missing question column(s) {', '.join(missing)} asked by verksamhet {verksamhet}",
                rows_read=len(frame),
            )


def _failures(
    frame: pd.DataFrame, survey: str, year: int, catalogue: Catalogue, question_columns: list[str]
) -> pd.DataFrame:
    """Every broken rule as (index, column, rule, value); empty when every row is valid."""
    cases: list[pd.DataFrame] = []

    def collect(schema: pa.DataFrameSchema, data: pd.DataFrame) -> None:
        try:
            schema.validate(data, lazy=True)
        except pa.errors.SchemaErrors as err:
            cases.append(err.failure_cases)

    collect(respondent_schema(survey, year, catalogue, question_columns), frame)
    for verksamhet in catalogue.enkater(survey, year):
        rows = frame[frame["verksamhet"] == verksamhet]
        if len(rows):
            collect(
                questionnaire_schema(survey, verksamhet, year, catalogue, question_columns),
                rows[question_columns],
            )
    if not cases:
        return pd.DataFrame(columns=["index", "column", "rule", "value"])
    failures = pd.concat(cases, ignore_index=True)
    if failures["index"].isna().any():
        broken = failures[failures["index"].isna()].iloc[0]
        raise RuntimeError(
            f"schema defect, not a data problem: {broken['column']}: {broken['check']}"
        )
    failures = failures.rename(columns={"check": "rule", "failure_case": "value"})
    frame_wide = failures["rule"].isin(list(FRAME_RULE_COLUMN))
    failures.loc[frame_wide, "column"] = failures.loc[frame_wide, "rule"].map(FRAME_RULE_COLUMN)
    failures.loc[frame_wide, "value"] = ""
    failures["index"] = failures["index"].astype(int)
    return failures[["index", "column", "rule", "value"]].drop_duplicates(
        ["index", "column", "rule"]
    )


def _reason_text(failures: pd.DataFrame) -> pd.Series:
    """index → "column: rule ('value'); …", in a stable order."""
    value = failures["value"].astype(str)
    shown = (
        failures["column"] + ": " + failures["rule"] + value.map(lambda v: f" ({v!r})" if v else "")
    )
    return shown.groupby(failures["index"]).agg(lambda reasons: "; ".join(sorted(reasons)))


_QUARANTINE_DTYPES = {c: int if c == "row_number" else str for c in Quarantine.to_schema().columns}


def _quarantine(originals: pd.DataFrame, failures: pd.DataFrame) -> pd.DataFrame:
    reasons = _reason_text(failures)
    rows = originals.loc[reasons.index]
    cells = rows.drop(columns=["source_file", "row_number"])
    quarantine = pd.DataFrame(
        {
            "source_file": rows["source_file"],
            "row_number": rows["row_number"].astype(int),
            "kommun_kod": rows["kommun_kod"],
            "svar_id": rows["svar_id"],
            "reasons": reasons,
            "original": [
                json.dumps(cell, ensure_ascii=False) for cell in cells.to_dict(orient="records")
            ],
        }
    ).reset_index(drop=True)
    return Quarantine.validate(quarantine.astype(_QUARANTINE_DTYPES))


def _respondents_and_answers(
    valid: pd.DataFrame, survey: str, question_columns: list[str], catalogue: Catalogue
) -> tuple[pd.DataFrame, pd.DataFrame]:
    valid = valid.reset_index(drop=True)
    respondents = pd.DataFrame(
        {
            "respondent_id": range(len(valid)),
            "source_file": valid["source_file"],
            "row_number": valid["row_number"].astype(int),
            "kommun_kod": valid["kommun_kod"],
            "lan_kod": valid["kommun_kod"].map(catalogue.lan_of),
            "verksamhet": valid["verksamhet"],
            "enhet_id": valid["enhet_id"] if survey == "fh" else "",
            "svar_id": valid["svar_id"],
            "kon": valid["kon"],
        }
    )
    long = valid[question_columns].rename_axis("respondent_id").reset_index()
    long = long.melt(id_vars="respondent_id", var_name="question_id", value_name="answer_code")
    long = long[long["answer_code"] != ""]
    answers = long.astype({"answer_code": int}).sort_values(
        ["respondent_id", "question_id"], ignore_index=True
    )
    return Respondents.validate(respondents), Answers.validate(answers)


def _file_report(
    raw: RawFile, rows_read: int, rows_quarantined: int, padded: int, error: str | None
) -> dict[str, object]:
    return {
        "source_file": raw.source_file,
        "kind": "distributed" if raw.source_file.lower() == DISTRIBUTED_FILE else "answers",
        "source_url": raw.source_url,
        "fetched_at": pd.Timestamp(raw.fetched_at).as_unit("us"),
        "landing_url": raw.landing_url,
        "sha256": raw.sha256,
        "size_bytes": len(raw.content),
        "rows_read": rows_read,
        "rows_loaded": 0 if error else rows_read - rows_quarantined,
        "rows_quarantined": rows_quarantined,
        "kommun_kod_padded": padded,
        "status": "refused" if error else "loaded",
        "error": error,
    }


def validate_survey_year(
    parsed: ParsedSurveyYear, survey: str, year: int, catalogue: Catalogue
) -> ValidatedSurveyYear:
    """Normalise and validate every parsed export of one (survey, year) together.

    Together, because a svar_id must be unique within a kommun across all files of the year.
    """
    reports = [_file_report(raw, err.rows_read, 0, 0, err.problem) for raw, err in parsed.refused]
    accepted: list[tuple[ParsedExport, pd.DataFrame, int]] = []
    for export in parsed.exports:
        frame, padded = normalise(export, survey, catalogue)
        try:
            _require_asked_columns(frame, export.raw.source_file, survey, year, catalogue)
        except ExportError as err:
            reports.append(_file_report(export.raw, err.rows_read, 0, padded, err.problem))
            continue
        accepted.append((export, frame, padded))

    question_columns = [
        q
        for q in catalogue.survey_questions(survey)
        if any(q in frame.columns for _, frame, _ in accepted)
    ]
    combined = pd.concat([_EMPTY_EXPORT, *(frame for _, frame, _ in accepted)], ignore_index=True)
    combined[question_columns] = combined[question_columns].fillna("")
    originals = pd.concat(
        [_EMPTY_EXPORT, *(export.frame for export, _, _ in accepted)], ignore_index=True
    )
    failures = _failures(combined, survey, year, catalogue, question_columns)
    quarantine = _quarantine(originals.fillna(""), failures)
    problems = combined.loc[failures["index"], ["source_file", "row_number"]].reset_index(drop=True)
    problems = pd.concat(
        [problems, failures[["column", "rule", "value"]].reset_index(drop=True)], axis=1
    ).astype({"row_number": int, "column": str, "rule": str, "value": str})
    valid = combined.drop(index=pd.Index(failures["index"].unique()))
    respondents, answers = _respondents_and_answers(valid, survey, question_columns, catalogue)

    quarantined_per_file = quarantine["source_file"].value_counts()
    for export, frame, padded in accepted:
        quarantined = int(quarantined_per_file.get(export.raw.source_file, 0))
        reports.append(_file_report(export.raw, len(frame), quarantined, padded, None))
    if parsed.distributed is not None:
        raw, counts = parsed.distributed
        reports.append(_file_report(raw, len(counts), 0, 0, None))
    files = pd.DataFrame(reports, columns=list(FileReport.to_schema().columns))
    return ValidatedSurveyYear(
        respondents=respondents,
        answers=answers,
        quarantine=quarantine,
        files=FileReport.validate(files.astype({"error": "str", "landing_url": "str"})),
        distributed=parsed.distributed[1] if parsed.distributed is not None else None,
        problems=problems.sort_values(["source_file", "row_number", "column"], ignore_index=True),
    )


validate_task = task(name="validate", cache_policy=NO_CACHE)(validate_survey_year)
