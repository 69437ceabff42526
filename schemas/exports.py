"""pandera schemas of raw exports, built from the reference catalogue.

Two layers, so every rule is stated once and reported against the column it concerns:
``respondent_schema`` holds what every questionnaire of a survey-year must satisfy, and
``questionnaire_schema`` what the answers of one enkät (questionnaire version) in one year
must satisfy. Cells arrive normalised to text codes (see tasks.validate); anything that could
not be normalised keeps its original text and fails here with that text as the example.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
import pandas as pd
import pandera.pandas as pa

from schemas.catalogue import Catalogue

UNKNOWN_KOMMUN = "unknown kommun_kod"
UNKNOWN_VERKSAMHET = "unknown verksamhet"
MISSING_SVAR_ID = "svar_id missing"
UNKNOWN_GENDER = "unknown kon"
DUPLICATE_SVAR_ID = "duplicate svar_id within kommun"
NO_ANSWER = "no answer at all"
OUTSIDE_SCALE = "answer outside the question's scale"
NOT_ASKED = "answer to a question the enkät does not ask"

# Frame-wide rules and the column a reason names for them.
FRAME_RULE_COLUMN: dict[str, str] = {DUPLICATE_SVAR_ID: "svar_id", NO_ANSWER: "answers"}


# The two hash keys (16 bytes each, as pandas requires) that read each svar key as two
# independent 64-bit hashes.
_HASH_KEYS = ("brukardata:svar1", "brukardata:svar2")


def _svar_hash(frame: pd.DataFrame, which: int) -> npt.NDArray[np.uint64]:
    text = frame["kommun_kod"] + "\x1f" + frame["svar_id"]
    hashed = pd.util.hash_pandas_object(text, index=False, hash_key=_HASH_KEYS[which])
    return hashed.to_numpy().astype(np.uint64, copy=False)


def svar_keys(frame: pd.DataFrame) -> npt.NDArray[np.uint64]:
    """Each row's (kommun_kod, svar_id), the key a svar_id is unique under, as two independent
    64-bit hashes (one row of two columns per row): 16 bytes a row whatever the text, so the
    keys of a year of any size fit in memory. Two different keys read alike only if both
    hashes collide (odds of about 1e-25 among 10 million rows)."""
    return np.column_stack([_svar_hash(frame, 0), _svar_hash(frame, 1)])


def among_svar_keys(frame: pd.DataFrame, keys: pd.MultiIndex) -> npt.NDArray[np.bool_]:
    """Whether each row's ``svar_keys`` is one of ``keys``: the second hash is only computed
    for rows whose first hash is among them, and neither when ``keys`` is empty (the usual case)."""
    found = np.zeros(len(frame), dtype=bool)
    if keys.empty:
        return found
    first = _svar_hash(frame, 0)
    candidates = np.flatnonzero(np.isin(first, keys.get_level_values(0)))
    if len(candidates):
        second = _svar_hash(frame.iloc[candidates], 1)
        found[candidates] = pd.MultiIndex.from_arrays([first[candidates], second]).isin(keys)
    return found


def given_svar_keys(frame: pd.DataFrame) -> npt.NDArray[np.uint64]:
    """The ``svar_keys`` of the rows that have a svar_id (a missing one is its own problem)."""
    return svar_keys(frame[frame["svar_id"] != ""])


def shared_svar_keys(keys: Iterable[npt.NDArray[np.uint64]]) -> pd.MultiIndex:
    """The keys that more than one row carries, of all ``given_svar_keys`` of a survey-year.

    Sorted, equal keys are neighbours: no hash table over every row is built.
    """
    every_key = np.concatenate([np.empty((0, 2), dtype=np.uint64), *keys])
    order = np.lexsort((every_key[:, 1], every_key[:, 0]))
    first, second = every_key[order, 0], every_key[order, 1]
    del every_key, order
    repeated = np.flatnonzero((first[1:] == first[:-1]) & (second[1:] == second[:-1])) + 1
    return pd.MultiIndex.from_arrays([first[repeated], second[repeated]]).unique()


def respondent_schema(
    survey: str,
    year: int,
    catalogue: Catalogue,
    question_columns: list[str],
    shared_keys: pd.MultiIndex | None = None,
) -> pa.DataFrameSchema:
    """Rules for every row of a survey-year, whatever enkät it answers.

    ``shared_keys`` are the ``shared_svar_keys`` of the whole survey-year, so that a part of it
    (one file, one chunk) is judged as the whole would be; None: the rows validated are the
    whole survey-year.
    """

    def has_an_answer(frame: pd.DataFrame) -> pd.Series:
        return ~frame[question_columns].isin([""]).all(axis=1)

    def not_duplicated(frame: pd.DataFrame) -> pd.Series:
        """Every row sharing a svar_id within a kommun fails: nobody can tell which is right."""
        shared = shared_svar_keys([given_svar_keys(frame)]) if shared_keys is None else shared_keys
        repeated = among_svar_keys(frame, shared)
        return pd.Series(~repeated, index=frame.index) | frame["svar_id"].eq("")

    return pa.DataFrameSchema(
        {
            "kommun_kod": pa.Column(
                str, pa.Check.isin(sorted(catalogue.kommun_codes), error=UNKNOWN_KOMMUN)
            ),
            "verksamhet": pa.Column(
                str, pa.Check.isin(catalogue.enkater(survey, year), error=UNKNOWN_VERKSAMHET)
            ),
            "svar_id": pa.Column(str, pa.Check.str_length(min_value=1, error=MISSING_SVAR_ID)),
            "kon": pa.Column(str, pa.Check.isin(["K", "M", "X"], error=UNKNOWN_GENDER)),
        },
        checks=[
            pa.Check(not_duplicated, error=DUPLICATE_SVAR_ID),
            pa.Check(has_an_answer, error=NO_ANSWER),
        ],
        name=f"{survey} {year} respondents",
    )


def questionnaire_schema(
    survey: str, verksamhet: str, year: int, catalogue: Catalogue, question_columns: list[str]
) -> pa.DataFrameSchema:
    """Answers to one enkät in one year: asked questions on their scale, all others empty.

    No dtype is checked: validation writes every answer cell itself, as text, so a dtype check
    finds nothing and costs pandera a pass over each column for each enkät.
    """
    asked = set(catalogue.questions_asked(survey, verksamhet, year))
    # every scale's codes in one pass, not a search of the scales per question
    codes_of = {
        scale_id: [str(c) for c in codes]
        for scale_id, codes in catalogue.answer_scales.groupby("scale_id", sort=False)["code"]
    }
    columns: dict[str, pa.Column] = {}
    for question in question_columns:
        if question in asked:
            codes = codes_of.get(catalogue.scale_of[question], [])
            check = pa.Check.isin(["", *codes], error=OUTSIDE_SCALE)
        else:
            check = pa.Check.isin([""], error=NOT_ASKED)
        columns[question] = pa.Column(None, check)
    return pa.DataFrameSchema(columns, name=f"{survey} {verksamhet} {year}")
