"""Contracts of the DataFrames that pass between the pipeline's steps.

Each model states its grain (what one row is). Steps validate what they hand on, so a change
in one step that breaks the next fails loudly at the boundary, not as a wrong figure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing.pandas import Series

LEVELS = ("enhet", "kommun", "lan", "riket")
GENDERS = ("T", "K", "M")
# Why a cell is hidden: too few answers of its own, or it protects another hidden cell.
FEW_ANSWERS, PROTECTS_OTHER = "few_answers", "protects_other"
FILE_KINDS = ("answers", "distributed")  # questionnaires, or utdelade.csv's hand-out counts
ANSWER_CHECK_BLOCK = 4_000_000  # answers checked for order at a time


class Respondents(pa.DataFrameModel):
    """One row per accepted questionnaire of one (survey, year)."""

    respondent_id: Series[int] = pa.Field(unique=True, ge=0)
    source_file: Series[str]
    row_number: Series[int] = pa.Field(ge=1)
    kommun_kod: Series[str] = pa.Field(str_matches=r"^\d{4}$")
    lan_kod: Series[str] = pa.Field(str_matches=r"^\d{2}$")
    verksamhet: Series[str]
    enhet_id: Series[str]  # "" when the export names no unit
    svar_id: Series[str] = pa.Field(str_length={"min_value": 1})
    gender: Series[str] = pa.Field(isin=["K", "M", "X"])  # the export's kon; X unknown

    class Config:
        strict = True


class Answers(pa.DataFrameModel):
    """One row per answered question of an accepted questionnaire (blank cells have no row)."""

    respondent_id: Series[int] = pa.Field(ge=0)
    question_id: Series[pd.CategoricalDtype]  # a handful of questions over millions of rows
    answer_code: Series[int]

    class Config:
        strict = True

    @pa.dataframe_check(error="more than one answer to a question from one respondent")
    @classmethod
    def one_answer_per_question(cls, frame: pd.DataFrame) -> bool:
        """(respondent_id, question_id) is unique, read as one integer per row: answers in
        (respondent, question) order, as validation builds them, need one pass and no hash
        table over tens of millions of rows."""
        codes = frame["question_id"].cat.codes.to_numpy()
        respondents = frame["respondent_id"].to_numpy()
        width = int(codes.max(initial=0)) + 2
        in_order = True
        # in blocks (overlapping by one row), so the integer keys never span the whole frame
        for start in range(0, len(frame), ANSWER_CHECK_BLOCK):
            block = slice(start, start + ANSWER_CHECK_BLOCK + 1)
            keys = respondents[block].astype("int64") * width + codes[block]
            if not (np.diff(keys) > 0).all():
                in_order = False
                break
        if in_order:
            return True
        keys = respondents.astype("int64") * width + codes
        return not bool(pd.Series(keys).duplicated().any())


class Distributed(pa.DataFrameModel):
    """One row per (kommun, enkät): questionnaires handed out (``utdelade.csv``)."""

    kommun_kod: Series[str] = pa.Field(str_matches=r"^\d{4}$")
    verksamhet: Series[str]
    antal_utdelade: Series[int] = pa.Field(ge=0)

    class Config:
        strict = True
        unique = ["kommun_kod", "verksamhet"]


class _CellKeys(pa.DataFrameModel):
    """The keys every published cell has; area columns describe where the cell lies."""

    level: Series[str] = pa.Field(isin=list(LEVELS))
    area_code: Series[str]  # kommun_kod, lan_kod, "0000" (riket) or "{kommun_kod}-{enhet_id}"
    kommun_kod: Series[str] = pa.Field(nullable=True)  # kommun of an enhet/kommun cell
    lan_kod: Series[str] = pa.Field(nullable=True)  # län of an enhet/kommun/län cell
    verksamhet: Series[str]
    gender: Series[str] = pa.Field(isin=list(GENDERS))


class Results(_CellKeys):
    """One row per cell × question: the share of positive answers; NULL figures where suppressed."""

    question_id: Series[str]
    n_valid: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True)
    n_positive: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True)
    pct_positive: Series[float] = pa.Field(ge=0, le=100, nullable=True)
    ci_low: Series[float] = pa.Field(ge=0, le=100, nullable=True)
    ci_high: Series[float] = pa.Field(ge=0, le=100, nullable=True)
    suppressed: Series[bool]
    suppression_reason: Series[str] = pa.Field(nullable=True, isin=[FEW_ANSWERS, PROTECTS_OTHER])

    class Config:
        strict = True
        unique = ["level", "area_code", "verksamhet", "gender", "question_id"]

    @pa.dataframe_check
    def suppressed_cells_show_nothing(cls, df: pd.DataFrame) -> pd.Series:  # type: ignore[misc]
        return df["suppressed"] == df["n_valid"].isna()

    @pa.dataframe_check
    def suppressed_cells_say_why(cls, df: pd.DataFrame) -> pd.Series:  # type: ignore[misc]
        return df["suppressed"] == df["suppression_reason"].notna()


class AnswerDistribution(_CellKeys):
    """One row per cell × question × answer option, with its share among valid answers."""

    question_id: Series[str]
    answer_code: Series[int]
    n: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True)
    pct: Series[float] = pa.Field(ge=0, le=100, nullable=True)
    suppressed: Series[bool]
    suppression_reason: Series[str] = pa.Field(nullable=True, isin=[FEW_ANSWERS, PROTECTS_OTHER])

    class Config:
        strict = True
        unique = ["level", "area_code", "verksamhet", "gender", "question_id", "answer_code"]


class ResponseCounts(_CellKeys):
    """One row per cell: respondents, questionnaires handed out and the response rate.

    ``n_covered`` counts the respondents of the (kommun, enkät) parts that have a count of
    questionnaires handed out: the rate is ``100 · n_covered / n_distributed`` (a percentage).
    """

    n_respondents: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True)
    n_distributed: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=0)
    n_covered: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=0)
    response_rate: Series[float] = pa.Field(nullable=True, ge=0)
    suppressed: Series[bool]
    suppression_reason: Series[str] = pa.Field(nullable=True, isin=[FEW_ANSWERS, PROTECTS_OTHER])

    class Config:
        strict = True
        unique = ["level", "area_code", "verksamhet", "gender"]


class Quarantine(pa.DataFrameModel):
    """One row per refused row of an accepted file: where it was, why, and what it said."""

    source_file: Series[str]
    row_number: Series[int] = pa.Field(ge=1)
    kommun_kod: Series[str]  # as written in the file
    svar_id: Series[str]  # as written in the file
    reasons: Series[str] = pa.Field(str_length={"min_value": 1})  # "column: rule (value); …"
    original: Series[str]  # the row's original cells as a JSON object

    class Config:
        strict = True
        unique = ["source_file", "row_number"]


class FileReport(pa.DataFrameModel):
    """One row per input file of a load: its identity, its row accounting and its fate.

    Rows of ``answers`` files are questionnaires; rows of the ``distributed`` file are
    hand-out counts and never count as respondents.
    """

    source_file: Series[str]  # path relative to the survey-year folder
    kind: Series[str] = pa.Field(isin=list(FILE_KINDS))
    source_url: Series[str]
    fetched_at: Series[pd.DatetimeTZDtype] = pa.Field(dtype_kwargs={"unit": "us", "tz": "UTC"})
    landing_url: Series[str] = pa.Field(nullable=True)  # the immutable archived copy, if kept
    sha256: Series[str] = pa.Field(str_matches=r"^[0-9a-f]{64}$")
    size_bytes: Series[int] = pa.Field(ge=0)
    rows_read: Series[int] = pa.Field(ge=0)
    rows_loaded: Series[int] = pa.Field(ge=0)
    rows_quarantined: Series[int] = pa.Field(ge=0)
    kommun_kod_padded: Series[int] = pa.Field(ge=0)  # codes whose lost leading zero was restored
    status: Series[str] = pa.Field(isin=["loaded", "refused"])
    error: Series[str] = pa.Field(nullable=True)

    class Config:
        strict = True
        unique = ["source_file"]

    @pa.dataframe_check
    def every_row_accounted_for(cls, df: pd.DataFrame) -> pd.Series:  # type: ignore[misc]
        """A loaded file's rows are loaded or quarantined; a refused file's rows are neither."""
        accounted = df["rows_read"] == df["rows_loaded"] + df["rows_quarantined"]
        refused_whole = (df["rows_loaded"] == 0) & (df["rows_quarantined"] == 0)
        return accounted.where(df["status"] == "loaded", refused_whole)
