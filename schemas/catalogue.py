"""The reference catalogue: municipalities, enkäter, questions and answer scales as data.

Every year-dependent business rule (which enkäter exist, which questions an enkät asks, which
answers count as positive) is read from the CSV files in ``schemas/reference/``; a user corrects
a rule by editing those files (or pointing the ``reference_dir`` setting at a corrected copy),
never by changing code.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from schemas.defaults import DEFAULT_CODEBOOK_DIR, DEFAULT_REFERENCE_DIR

SURVEYS: tuple[str, ...] = ("ifo", "fh")  # the order a run takes them in
FIRST_YEAR, LAST_YEAR = 2016, 2100  # the survey years a run or a re-run accepts
RIKET_CODE = "0000"
ROLES: tuple[str, ...] = ("positive", "middle", "negative", "excluded")
T = TypeVar("T")


def remembered(memo: dict[Hashable, Any], key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()`` once per ``key``: a run asks the same look-ups of every one of its files
    (hundreds a year), and the reference tables behind them never change once loaded."""
    if key not in memo:
        memo[key] = compute()
    value: T = memo[key]
    return value


def _read(directory: Path, name: str) -> pd.DataFrame:
    """Read one reference CSV with every column as text; empty cells stay empty strings."""
    return pd.read_csv(directory / name, dtype=str, keep_default_na=False, encoding="utf-8")


def _in_year(frame: pd.DataFrame, year: int) -> pd.Series:
    """Rows whose ``first_year``/``last_year`` span (empty = open) contains ``year``."""
    first = pd.to_numeric(frame["first_year"].replace("", None)).fillna(0)
    last = pd.to_numeric(frame["last_year"].replace("", None)).fillna(9999)
    return (first <= year) & (year <= last)


@dataclass(frozen=True, eq=False)
class Catalogue:
    """The reference tables, loaded once, with the look-ups the pipeline needs (each computed
    once per instance; an instance is compared and hashed by identity)."""

    surveys: pd.DataFrame
    kommuner: pd.DataFrame
    verksamheter: pd.DataFrame
    questions: pd.DataFrame
    questionnaires: pd.DataFrame
    answer_scales: pd.DataFrame
    kolada_kpis: pd.DataFrame
    genders: pd.DataFrame
    # The codebooks that explain the exports' headers (schemas/codebook.py) are read from here.
    codebook_dir: Path = DEFAULT_CODEBOOK_DIR
    _memo: dict[Hashable, Any] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def load(
        cls, directory: Path = DEFAULT_REFERENCE_DIR, codebook_dir: Path = DEFAULT_CODEBOOK_DIR
    ) -> Catalogue:
        scales = _read(directory, "answer_scales.csv")
        scales["code"] = scales["code"].astype(int)
        unknown_roles = set(scales["role"]) - set(ROLES)
        if unknown_roles:
            raise ValueError(f"answer_scales.csv: unknown role(s) {sorted(unknown_roles)}")
        surveys = _read(directory, "surveys.csv")
        unknown_flags = set(surveys["has_units"]) - {"true", "false"}
        if unknown_flags:
            raise ValueError(f"surveys.csv: has_units must be true or false, not {unknown_flags}")
        return cls(
            surveys=surveys,
            kommuner=_read(directory, "kommuner.csv"),
            verksamheter=_read(directory, "verksamheter.csv"),
            questions=_read(directory, "questions.csv"),
            questionnaires=_read(directory, "questionnaires.csv"),
            answer_scales=scales,
            kolada_kpis=_read(directory, "kolada_kpis.csv"),
            genders=_read(directory, "genders.csv"),
            codebook_dir=codebook_dir,
        )

    # --- surveys ------------------------------------------------------------------------------
    @cached_property
    def surveys_with_units(self) -> frozenset[str]:
        """Surveys whose exports name units (boende, daglig verksamhet) with figures of their
        own: their rows keep ``enhet_id`` and their figures add an ``enhet`` level."""
        s = self.surveys
        return frozenset(s.loc[s["has_units"] == "true", "survey"])

    # --- municipalities -------------------------------------------------------------------
    @cached_property
    def kommun_codes(self) -> frozenset[str]:
        return frozenset(self.kommuner["kommun_kod"])

    @cached_property
    def lan_of(self) -> dict[str, str]:
        """kommun_kod → lan_kod."""
        return dict(zip(self.kommuner["kommun_kod"], self.kommuner["lan_kod"], strict=True))

    # --- enkäter and composite groups ---------------------------------------------------------
    def enkater(self, survey: str, year: int) -> list[str]:
        """The questionnaires (enkäter) of a survey that exist in ``year``."""

        def compute() -> tuple[str, ...]:
            v = self.verksamheter
            rows = v[(v["survey"] == survey) & (v["kind"] == "enkat") & _in_year(v, year)]
            return tuple(rows["verksamhet"])

        return list(remembered(self._memo, ("enkater", survey, year), compute))

    def composites(self, survey: str, year: int) -> dict[str, list[str]]:
        """Composite group → its member enkäter in ``year`` (``*`` means every enkät)."""
        v = self.verksamheter
        rows = v[(v["survey"] == survey) & (v["kind"] == "composite") & _in_year(v, year)]
        enkater = self.enkater(survey, year)
        groups: dict[str, list[str]] = {}
        for group, members in zip(rows["verksamhet"], rows["members"], strict=True):
            wanted = enkater if members.strip() == "*" else members.split(";")
            groups[group] = [m for m in wanted if m in enkater]
        return groups

    # --- questions ----------------------------------------------------------------------------
    def survey_questions(self, survey: str) -> list[str]:
        """Every question id the survey has ever asked (the possible answer columns)."""
        return list(self.questions.loc[self.questions["survey"] == survey, "question_id"])

    def questions_asked(self, survey: str, verksamhet: str, year: int) -> list[str]:
        """The questions an enkät asks in ``year``, in catalogue order."""

        def compute() -> tuple[str, ...]:
            q, qn = self.questions, self.questionnaires
            in_year = set(q.loc[(q["survey"] == survey) & _in_year(q, year), "question_id"])
            listed = qn.loc[
                (qn["survey"] == survey) & (qn["verksamhet"] == verksamhet), "question_id"
            ]
            return tuple(question for question in listed if question in in_year)

        key = ("questions_asked", survey, verksamhet, year)
        return list(remembered(self._memo, key, compute))

    @cached_property
    def scale_of(self) -> dict[str, str]:
        """question_id → scale_id."""
        return dict(zip(self.questions["question_id"], self.questions["scale_id"], strict=True))

    def scale(self, scale_id: str) -> pd.DataFrame:
        """code, label_sv and role of every answer option of one scale."""
        return self.answer_scales[self.answer_scales["scale_id"] == scale_id]

    def answer_lookup(self, question_id: str) -> Mapping[str, int]:
        """Every accepted spelling of an answer to ``question_id`` (code or label, lower case)."""
        return self._answer_lookups.get(self.scale_of[question_id], {})

    @cached_property
    def _answer_lookups(self) -> dict[str, dict[str, int]]:
        """scale_id → the spellings of its answers (codes, then labels) → code."""
        lookups: dict[str, dict[str, int]] = {}
        for scale_id, options in self.answer_scales.groupby("scale_id", sort=False):
            codes = [int(code) for code in options["code"]]
            lookup = {str(code): code for code in codes}
            labels = [label.strip().lower() for label in options["label_sv"]]
            lookup.update(zip(labels, codes, strict=True))
            lookups[str(scale_id)] = lookup
        return lookups

    @cached_property
    def roles(self) -> pd.DataFrame:
        """question_id, answer_code, role: the role of every possible answer of every question."""
        merged = self.questions[["question_id", "scale_id"]].merge(
            self.answer_scales, on="scale_id"
        )
        return merged.rename(columns={"code": "answer_code"})[
            ["question_id", "answer_code", "role"]
        ]


@lru_cache(maxsize=4)
def load_catalogue(
    directory: Path = DEFAULT_REFERENCE_DIR, codebook_dir: Path = DEFAULT_CODEBOOK_DIR
) -> Catalogue:
    """The catalogue of these folders, read once per process."""
    return Catalogue.load(directory, codebook_dir)


def default_catalogue() -> Catalogue:
    """The catalogue shipped in ``schemas/``, as a run reads it when no setting says otherwise."""
    return load_catalogue()
