"""Validate: normalise one survey-year's parsed exports, check them, and account for every row.

Each row read ends in exactly one place: ``respondents``/``answers`` (valid) or ``quarantine``
(with every reason, its row number and column, and its original cells). Each file ends
``loaded`` or ``refused``; ``files`` proves ``rows_read = rows_loaded + rows_quarantined``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import pandas as pd
import pandera.pandas as pa
from prefect import task
from prefect.cache_policies import NO_CACHE

from schemas.catalogue import Catalogue
from schemas.codebook import Codebook, header_key
from schemas.exports import (
    FRAME_RULE_COLUMN,
    given_svar_keys,
    questionnaire_schema,
    respondent_schema,
    shared_svar_keys,
)
from schemas.frames import Answers, FileReport, Quarantine, Respondents
from tasks.fetch import RawFile, is_distributed
from tasks.parse import ExportError, ParsedExport, ParsedSurveyYear
from tasks.redact import redacted

# how spreadsheets write integers they stored as numbers
_WHOLE_NUMBER = re.compile(r"^(\d+)\.0+$")
_THREE_DIGITS = re.compile(r"\d{3}")
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
        return refused_files(self.files)


def refused_files(files: pd.DataFrame) -> list[str]:
    """One line per refused file of a file report (``FileReport``), as shown to the user."""
    if files.empty:
        return []
    refused = files[files["status"] == "refused"]
    pairs = zip(refused["source_file"], refused["error"], strict=True)
    return [f"{name}: {error}" for name, error in pairs]


@dataclass(frozen=True)
class _Origins:
    """Where the rows of a frame joining one or more files come from: the codebook that read
    each file, each row's file, and the files that have an ``enhet_id`` column."""

    books: list[Codebook]  # by file
    file_of_row: npt.NDArray[np.intp]
    with_units: npt.NDArray[np.bool_]  # by file

    @classmethod
    def of(cls, frames: list[pd.DataFrame], books: list[Codebook]) -> _Origins:
        return cls(
            books=books,
            file_of_row=np.repeat(np.arange(len(frames)), [len(f) for f in frames]),
            with_units=np.array(["enhet_id" in f.columns for f in frames], dtype=bool),
        )

    def distinct(
        self, cells: pd.Series
    ) -> tuple[npt.NDArray[np.intp], list[tuple[Codebook, str] | None]]:
        """Each row's position among the distinct (codebook, cell) pairs of ``cells``, and
        those pairs (None: a missing cell): a column of a batch of files holds a handful of
        spellings per codebook, so each is interpreted once."""
        positions, distinct = pd.factorize(cells)
        first_file: dict[int, int] = {}  # a codebook → the first file it read
        book = np.array([first_file.setdefault(id(b), n) for n, b in enumerate(self.books)])
        width = len(distinct)
        rows, pairs = pd.factorize(
            np.where(positions < 0, -1, book[self.file_of_row] * width + positions)
        )
        return rows, [
            None if p < 0 else (self.books[p // width], str(distinct[p % width])) for p in pairs
        ]


def _by_distinct(
    cells: pd.Series, origins: _Origins, interpret: Callable[[Codebook, str], str]
) -> pd.Series:
    """``interpret`` applied once to each distinct (codebook, cell), spread back over the rows:
    a column of a million answers holds a handful of spellings, and a batch of files is read
    without a pandas string operation per column and file."""
    rows, pairs = origins.distinct(cells)
    return _spread([None if p is None else interpret(*p) for p in pairs], rows, cells.index)


def _spread(
    values: list[str | None], positions: npt.NDArray[np.intp], index: pd.Index
) -> pd.Series:
    """Text ``values`` (None: missing) taken at ``positions``, as a column with ``index``."""
    taken = pd.array(values, dtype="str").take(positions)
    return pd.Series(taken, index=index)


def _coded(text: str, lookup: Mapping[str, str], *, whole_numbers: bool = False) -> str:
    """The code ``text`` spells in ``lookup`` (compared as codebook spellings are), else the
    text itself, stripped, for validation to report. ``whole_numbers`` reads "2.0", as
    spreadsheets store integers, as "2"."""
    key = header_key(text)
    if whole_numbers:
        key = _WHOLE_NUMBER.sub(r"\1", key)
    return lookup.get(key, text.strip())


def _as_number(text: str) -> str:
    return _WHOLE_NUMBER.sub(r"\1", text.strip())


def _unpadded(text: str) -> bool:
    """A kommun code written as a number, which lost its leading zero (114 for 0114)."""
    return _THREE_DIGITS.fullmatch(_as_number(text)) is not None


def normalise_frame(
    parsed_frame: pd.DataFrame, book: Codebook, survey: str, catalogue: Catalogue
) -> tuple[pd.DataFrame, int]:
    """Cells of a frame read by ``book`` (a file, or one chunk of a large file) as canonical
    text codes, and how many kommun codes had their leading zero restored."""
    frame, padded = _normalised(
        parsed_frame, _Origins.of([parsed_frame], [book]), survey, catalogue
    )
    return frame, int(padded.sum())


def _normalised(
    parsed_frame: pd.DataFrame, origins: _Origins, survey: str, catalogue: Catalogue
) -> tuple[pd.DataFrame, npt.NDArray[np.bool_]]:
    """Cells of a frame joining files as canonical text codes, and which rows had their
    kommun code's leading zero restored.

    The codebook that read a file says which names and labels stand for which code. Anything
    that cannot be interpreted keeps its original text (stripped), so validation reports it.
    """

    def kommun(book: Codebook, text: str) -> str:
        number = _as_number(text)
        lookup = book.value_lookup("kommun_kod", survey, catalogue)
        return _coded("0" + number if _unpadded(text) else number, lookup)

    def verksamhet(book: Codebook, text: str) -> str:
        return _coded(text, book.value_lookup("verksamhet", survey, catalogue)).upper()

    def answer(question: str) -> Callable[[Codebook, str], str]:
        return lambda book, text: _coded(
            text, book.answer_lookup(question, catalogue), whole_numbers=True
        )

    frame = parsed_frame.copy(deep=False)
    coded = {"kommun_kod", "verksamhet", "kon", *catalogue.scale_of}
    for column in frame.columns.drop(["row_number", "source_file"]):
        if column not in coded:
            frame[column] = frame[column].str.strip()
    rows, pairs = origins.distinct(frame["kommun_kod"])
    frame["kommun_kod"] = _spread(
        [None if p is None else kommun(*p) for p in pairs], rows, frame.index
    )
    unpadded = np.array([p is not None and _unpadded(p[1]) for p in pairs], dtype=bool)
    frame["verksamhet"] = _by_distinct(frame["verksamhet"], origins, verksamhet)
    frame["kon"] = _by_distinct(
        frame["kon"], origins, lambda book, text: _coded(text, book.gender_lookup)
    )
    # a file without the column names no unit, also where a batch joins it with one that has it
    units = frame["enhet_id"] if "enhet_id" in frame.columns else ""
    frame["enhet_id"] = pd.Series(units, index=frame.index, dtype="str").where(
        origins.with_units[origins.file_of_row], ""
    )
    for question in [c for c in frame.columns if c in catalogue.scale_of]:
        frame[question] = _by_distinct(frame[question], origins, answer(question))
    return frame, unpadded[rows]


def _missing_questions(
    verksamheter: set[str], columns: pd.Index, survey: str, year: int, catalogue: Catalogue
) -> str | None:
    """Every question a file's enkäter ask needs its column: a missing one is not 'unanswered'."""
    for verksamhet in sorted(verksamheter & set(catalogue.enkater(survey, year))):
        missing = [
            q for q in catalogue.questions_asked(survey, verksamhet, year) if q not in columns
        ]
        if missing:
            return (
                f"missing question column(s) {', '.join(missing)} asked by verksamhet {verksamhet}"
            )
    return None


@dataclass
class _Accepted:
    """An export that passed the file-level checks: what its first reading found."""

    export: ParsedExport
    rows: int
    padded: int  # kommun codes whose leading zero was restored
    questions: frozenset[str]  # the question columns it has
    normalised: pd.DataFrame | None  # kept for a file held in memory; a large one is read again

    def parts(self, survey: str, catalogue: Catalogue) -> Iterator[tuple[pd.DataFrame, ...]]:
        """(original, normalised) frames of the file, one or chunk by chunk. A kept normalised
        frame is handed over, not kept: it is released once its batch is checked."""
        if self.export.frame is not None and self.normalised is not None:
            normalised, self.normalised = self.normalised, None
            yield self.export.frame, normalised
            return
        for chunk in self.export.chunks():
            yield chunk, normalise_frame(chunk, self.export.codebook, survey, catalogue)[0]


def _accept(
    export: ParsedExport, survey: str, year: int, catalogue: Catalogue
) -> tuple[_Accepted, list[npt.NDArray[np.uint64]]]:
    """First reading of a large export, chunk by chunk: normalised, the file-level rules
    checked, and the ``given_svar_keys`` of its rows returned beside it. Raises ExportError."""
    rows = padded = 0
    verksamheter: set[str] = set()
    keys: list[npt.NDArray[np.uint64]] = []
    frame = _EMPTY_EXPORT
    for chunk in export.chunks():
        frame, chunk_padded = normalise_frame(chunk, export.codebook, survey, catalogue)
        rows += len(frame)
        padded += chunk_padded
        verksamheter.update(frame["verksamhet"].unique())
        keys.append(given_svar_keys(frame))
    missing = _missing_questions(verksamheter, frame.columns, survey, year, catalogue)
    if missing:
        raise ExportError(export.raw.source_file, missing, rows_read=rows)
    questions = frozenset(c for c in frame.columns if c in catalogue.scale_of)
    return _Accepted(export, rows, padded, questions, normalised=None), keys


def _accept_together(
    exports: list[ParsedExport], survey: str, year: int, catalogue: Catalogue
) -> tuple[list[_Accepted | ExportError], list[npt.NDArray[np.uint64]]]:
    """First reading of exports held in memory, as one frame: pandas' fixed cost per
    operation is paid once, not once per file. Each export's outcome, in order (accepted with
    its normalised rows, or refused), and the ``given_svar_keys`` of the accepted rows."""
    frames = [export.frame for export in exports if export.frame is not None]
    origins = _Origins.of(frames, [export.codebook for export in exports])
    frame, unpadded = _normalised(pd.concat(frames, ignore_index=True), origins, survey, catalogue)
    padded = np.bincount(origins.file_of_row[unpadded], minlength=len(frames))
    seen = pd.DataFrame({"file": origins.file_of_row, "verksamhet": frame["verksamhet"]})
    verksamheter = seen.drop_duplicates().groupby("file")["verksamhet"].agg(set)
    ends = np.cumsum([len(f) for f in frames])
    outcomes: list[_Accepted | ExportError] = []
    for number, (export, original) in enumerate(zip(exports, frames, strict=True)):
        rows = slice(int(ends[number]) - len(original), int(ends[number]))
        missing = _missing_questions(
            verksamheter.get(number, set()), original.columns, survey, year, catalogue
        )
        questions = frozenset(c for c in original.columns if c in catalogue.scale_of)
        outcomes.append(
            ExportError(export.raw.source_file, missing, rows_read=len(original))
            if missing
            else _Accepted(export, len(original), int(padded[number]), questions, frame.iloc[rows])
        )
    accepted = np.array([isinstance(o, _Accepted) for o in outcomes], dtype=bool)
    if not accepted.all():
        frame = frame[accepted[origins.file_of_row]]
    return outcomes, [given_svar_keys(frame)]


def _first_reading(
    exports: list[ParsedExport], survey: str, year: int, catalogue: Catalogue
) -> tuple[list[_Accepted | ExportError], list[npt.NDArray[np.uint64]]]:
    """``_accept_together`` for exports held in memory; a large export (one alone) is read
    chunk by chunk."""
    if exports[0].frame is not None:
        return _accept_together(exports, survey, year, catalogue)
    try:
        accepted, keys = _accept(exports[0], survey, year, catalogue)
    except ExportError as err:
        return [err], []
    return [accepted], keys


def _groups(exports: list[ParsedExport]) -> Iterator[list[ParsedExport]]:
    """Consecutive exports held in memory, joined up to about ``BATCH_ROWS`` rows; a large
    export alone."""
    group: list[ParsedExport] = []
    rows = 0
    for export in exports:
        if export.frame is None:
            if group:
                yield group
            yield [export]
            group, rows = [], 0
            continue
        group.append(export)
        rows += len(export.frame)
        if rows >= BATCH_ROWS:
            yield group
            group, rows = [], 0
    if group:
        yield group


@dataclass(frozen=True)
class _Rules:
    """A survey-year's schemas, built once and applied to each of its files."""

    respondent: pa.DataFrameSchema
    questionnaires: dict[str, pa.DataFrameSchema]  # by verksamhet (enkät)
    question_columns: list[str]
    lan_of: pd.Series  # kommun_kod → lan_kod
    has_units: bool  # the survey's rows keep their enhet_id

    @classmethod
    def of(
        cls,
        survey: str,
        year: int,
        catalogue: Catalogue,
        question_columns: list[str],
        shared_keys: pd.MultiIndex,
    ) -> _Rules:
        return cls(
            respondent=respondent_schema(survey, year, catalogue, question_columns, shared_keys),
            questionnaires={
                verksamhet: questionnaire_schema(
                    survey, verksamhet, year, catalogue, question_columns
                )
                for verksamhet in catalogue.enkater(survey, year)
            },
            question_columns=question_columns,
            lan_of=pd.Series(catalogue.lan_of, dtype="str"),
            has_units=survey in catalogue.surveys_with_units,
        )


def _failures(frame: pd.DataFrame, rules: _Rules) -> pd.DataFrame:
    """Every broken rule as (index, column, rule, value); empty when every row is valid."""
    cases: list[pd.DataFrame] = []

    def collect(schema: pa.DataFrameSchema, data: pd.DataFrame) -> None:
        try:
            schema.validate(data, lazy=True, inplace=True)  # checks only: nothing to copy
        except pa.errors.SchemaErrors as err:
            cases.append(err.failure_cases)

    collect(rules.respondent, frame)
    for verksamhet, schema in rules.questionnaires.items():
        rows = frame[frame["verksamhet"] == verksamhet]
        if len(rows):
            collect(schema, rows[rules.question_columns])
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
    # a cell is missing only where a batch joins files with other columns: not the row's own
    cells = [
        {column: cell for column, cell in row.items() if isinstance(cell, str)}
        for row in rows.drop(columns=["source_file", "row_number"]).to_dict(orient="records")
    ]
    quarantine = pd.DataFrame(
        {
            "source_file": rows["source_file"],
            "row_number": rows["row_number"].astype(int),
            "kommun_kod": rows["kommun_kod"],
            "svar_id": rows["svar_id"],
            "reasons": reasons,
            "original": [json.dumps(cell, ensure_ascii=False) for cell in cells],
        }
    ).reset_index(drop=True)
    return Quarantine.validate(quarantine.astype(_QUARANTINE_DTYPES))


def _respondents_and_answers(
    valid: pd.DataFrame, rules: _Rules, first_id: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Valid rows as respondents (numbered from ``first_id``) and their non-blank answers.

    Each question column holds a handful of distinct codes, so each is factorized once and the
    long answers are assembled from integer arrays, ordered by respondent and question.
    """
    valid = valid.reset_index(drop=True)
    ids = np.arange(first_id, first_id + len(valid), dtype="int64")
    respondents = pd.DataFrame(
        {
            "respondent_id": ids,
            "source_file": valid["source_file"],
            "row_number": valid["row_number"].astype("int64"),
            "kommun_kod": valid["kommun_kod"],
            "lan_kod": valid["kommun_kod"].map(rules.lan_of),
            "verksamhet": valid["verksamhet"],
            "enhet_id": valid["enhet_id"] if rules.has_units else "",
            "svar_id": valid["svar_id"],
            "gender": valid["kon"],  # the export's kon, in this pipeline's words
        }
    )
    questions = sorted(rules.question_columns)
    respondent_parts: list[npt.NDArray[np.int64]] = []
    question_parts: list[npt.NDArray[np.int16]] = []
    answer_parts: list[npt.NDArray[np.int64]] = []
    for position, question in enumerate(questions):
        codes, distinct = pd.factorize(valid[question])
        answer_of_code = np.array([int(code) if code else -1 for code in distinct], dtype="int64")
        answer = answer_of_code[codes]
        given = answer >= 0
        respondent_parts.append(ids[given])
        question_parts.append(np.full(int(given.sum()), position, dtype="int16"))
        answer_parts.append(answer[given])
    respondent_id = np.concatenate([np.empty(0, "int64"), *respondent_parts])
    question_position = np.concatenate([np.empty(0, "int16"), *question_parts])
    order = np.lexsort((question_position, respondent_id))
    answers = pd.DataFrame(
        {
            "respondent_id": respondent_id[order],
            "question_id": pd.Categorical.from_codes(
                question_position[order], categories=pd.Index(questions, dtype="str")
            ),
            "answer_code": np.concatenate([np.empty(0, "int64"), *answer_parts])[order],
        }
    )
    return respondents, answers


def file_report(
    raw: RawFile, rows_read: int, rows_quarantined: int, padded: int, error: str | None
) -> dict[str, object]:
    """A file's row of the ``FileReport``: where it came from, what it held and its fate."""
    return {
        "source_file": raw.source_file,
        "kind": "distributed" if is_distributed(raw.source_file) else "answers",
        "source_url": redacted(raw.source_url),
        "fetched_at": pd.Timestamp(raw.fetched_at).as_unit("us"),
        "landing_url": None if raw.landing_url is None else redacted(raw.landing_url),
        "sha256": raw.sha256,
        "size_bytes": raw.size_bytes,
        "rows_read": rows_read,
        "rows_loaded": 0 if error else rows_read - rows_quarantined,
        "rows_quarantined": rows_quarantined,
        "kommun_kod_padded": padded,
        "status": "refused" if error else "loaded",
        "error": error,
    }


def report_frame(reports: list[dict[str, object]]) -> pd.DataFrame:
    """The ``FileReport`` of rows made by ``file_report``, checked."""
    files = pd.DataFrame(reports, columns=list(FileReport.to_schema().columns))
    return FileReport.validate(files.astype({"error": "str", "landing_url": "str"}))


@dataclass(frozen=True)
class _CheckedPart:
    """The outcome of checking one file (or chunk) of a survey-year."""

    respondents: pd.DataFrame
    answers: pd.DataFrame
    quarantine: pd.DataFrame
    problems: pd.DataFrame


def _check_part(
    original: pd.DataFrame, frame: pd.DataFrame, rules: _Rules, first_id: int
) -> _CheckedPart:
    """Check the normalised ``frame`` of one part read as ``original``; its valid rows become
    respondents numbered from ``first_id``, the others quarantine with their original cells."""
    # A question column a file lacks (its enkäter do not ask it) is blank for its rows, also
    # where a batch joins it with files that have the column.
    frame = frame.assign(
        **{q: frame[q].fillna("") if q in frame else "" for q in rules.question_columns}
    )
    failures = _failures(frame, rules)
    quarantine = _quarantine(original, failures)
    problems = frame.loc[failures["index"], ["source_file", "row_number"]].reset_index(drop=True)
    problems = pd.concat(
        [problems, failures[["column", "rule", "value"]].reset_index(drop=True)], axis=1
    ).astype({"row_number": int, "column": str, "rule": str, "value": str})
    valid = frame.drop(index=pd.Index(failures["index"].unique()))
    respondents, answers = _respondents_and_answers(valid, rules, first_id)
    return _CheckedPart(respondents, answers, quarantine, problems)


BATCH_ROWS = 200_000  # rows checked together: few schema passes, no copy of the whole year


def _batches(
    parts: Iterable[tuple[pd.DataFrame, ...]],
) -> Iterator[tuple[pd.DataFrame, ...]]:
    """(original, normalised) frames of consecutive files or chunks joined into batches of
    about ``BATCH_ROWS`` rows; a year without a readable file is one empty batch."""

    def joined(batch: list[tuple[pd.DataFrame, ...]]) -> tuple[pd.DataFrame, ...]:
        return tuple(pd.concat(frames, ignore_index=True) for frames in zip(*batch, strict=True))

    batch: list[tuple[pd.DataFrame, ...]] = []
    rows = 0
    yielded = False
    for part in parts:
        batch.append(part)
        rows += len(part[1])
        if rows >= BATCH_ROWS:
            yield joined(batch)
            batch, rows, yielded = [], 0, True
    if batch or not yielded:
        yield joined(batch or [(_EMPTY_EXPORT, _EMPTY_EXPORT)])


def _joined_answers(parts: list[_CheckedPart]) -> pd.DataFrame:
    """The answers of every part as one frame, each part's released as soon as it is copied,
    so that the year's answers (tens of millions of rows at scale) are held once, not twice.
    Every part's question ids have the same categories: the year's question columns."""
    total = sum(len(part.answers) for part in parts)
    respondent_id = np.empty(total, dtype="int64")
    question = np.empty(total, dtype="int16")
    answer_code = np.empty(total, dtype="int64")
    categories = parts[0].answers["question_id"].cat.categories
    at = 0
    for number, part in enumerate(parts):
        rows = slice(at, at + len(part.answers))
        respondent_id[rows] = part.answers["respondent_id"].to_numpy()
        question[rows] = part.answers["question_id"].cat.codes.to_numpy()
        answer_code[rows] = part.answers["answer_code"].to_numpy()
        at = rows.stop
        parts[number] = replace(part, answers=_no_rows(part.answers))
    return pd.DataFrame(
        {
            "respondent_id": respondent_id,
            "question_id": pd.Categorical.from_codes(question, categories=categories),
            "answer_code": answer_code,
        }
    )


def _no_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """An empty frame of ``frame``'s columns and types, sharing none of its memory (an empty
    slice of Arrow-backed text would keep every row of it alive)."""
    return pd.DataFrame(columns=frame.columns).astype(frame.dtypes.to_dict())


def validate_survey_year(
    parsed: ParsedSurveyYear,
    survey: str,
    year: int,
    catalogue: Catalogue,
    *,
    keep_rows: bool = True,
) -> ValidatedSurveyYear:
    """Normalise and validate every parsed export of one (survey, year) together.

    Together, because a svar_id must be unique within a kommun across all files of the year.
    Each file is read twice when it is not held in memory: first for the file-level rules and
    the svar_id keys, then in batches for the row rules, so memory holds a batch, not the file.
    ``keep_rows`` False (a dry run) keeps the accounting and the quarantine, not the valid rows.
    """
    reports = [file_report(raw, err.rows_read, 0, 0, err.problem) for raw, err in parsed.refused]
    accepted: list[_Accepted] = []
    keys: list[npt.NDArray[np.uint64]] = []
    for group in _groups(parsed.exports):
        outcomes, group_keys = _first_reading(group, survey, year, catalogue)
        keys.extend(group_keys)
        for export, outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, ExportError):
                reports.append(file_report(export.raw, outcome.rows_read, 0, 0, outcome.problem))
            else:
                accepted.append(outcome)

    question_columns = [
        q for q in catalogue.survey_questions(survey) if any(q in a.questions for a in accepted)
    ]
    rules = _Rules.of(survey, year, catalogue, question_columns, shared_svar_keys(keys))
    del keys
    parts: list[_CheckedPart] = []
    first_id = 0
    for original, frame in _batches(p for a in accepted for p in a.parts(survey, catalogue)):
        part = _check_part(original, frame, rules, first_id)
        first_id += len(part.respondents)
        if not keep_rows:
            part = replace(
                part, respondents=_no_rows(part.respondents), answers=_no_rows(part.answers)
            )
        parts.append(part)
    respondents = Respondents.validate(pd.concat([p.respondents for p in parts], ignore_index=True))
    answers = Answers.validate(_joined_answers(parts))
    quarantine = pd.concat([p.quarantine for p in parts], ignore_index=True)
    problems = pd.concat([p.problems for p in parts], ignore_index=True)

    quarantined_per_file = quarantine["source_file"].value_counts()
    for file in accepted:
        quarantined = int(quarantined_per_file.get(file.export.raw.source_file, 0))
        reports.append(file_report(file.export.raw, file.rows, quarantined, file.padded, None))
    if parsed.distributed is not None:
        raw, counts = parsed.distributed
        reports.append(file_report(raw, len(counts), 0, 0, None))
    return ValidatedSurveyYear(
        respondents=respondents,
        answers=answers,
        quarantine=quarantine,
        files=report_frame(reports),
        distributed=parsed.distributed[1] if parsed.distributed is not None else None,
        problems=problems.sort_values(["source_file", "row_number", "column"], ignore_index=True),
    )


validate_task = task(name="validate", cache_policy=NO_CACHE)(validate_survey_year)
