"""Small survey populations for the statistics tests, and an independent count of every cell.

The expected counts are computed by listing, for each respondent, every cell they belong to
(their areas × their enkät and its groups × T and their own gender) and counting answers per
cell: a direct reading of the method, sharing no code with the roll-ups under test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from schemas.catalogue import RIKET_CODE, Catalogue
from schemas.frames import Answers, Respondents

CELL_KEY = ["level", "area_code", "verksamhet", "gender"]
QUESTION_KEY = [*CELL_KEY, "question_id"]


@dataclass(frozen=True)
class Person:
    """One returned questionnaire: where it came from, who answered and what (blank = absent)."""

    kommun: str
    verksamhet: str
    gender: str
    answers: Mapping[str, int] = field(default_factory=dict)
    enhet: str = ""


def survey_frames(
    people: Sequence[Person], catalogue: Catalogue
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Respondents and Answers frames, as the validation step hands them on."""
    respondents = pd.DataFrame(
        {
            "respondent_id": range(len(people)),
            "source_file": "export.csv",
            "row_number": range(1, len(people) + 1),
            "kommun_kod": [p.kommun for p in people],
            "lan_kod": [catalogue.lan_of[p.kommun] for p in people],
            "verksamhet": [p.verksamhet for p in people],
            "enhet_id": [p.enhet for p in people],
            "svar_id": [f"s{i}" for i in range(len(people))],
            "gender": [p.gender for p in people],
        }
    ).astype(
        {"respondent_id": "int64", "row_number": "int64"}
        | dict.fromkeys(["source_file", "kommun_kod", "lan_kod", "verksamhet"], "str")
        | dict.fromkeys(["enhet_id", "svar_id", "gender"], "str")
    )
    answers = pd.DataFrame(
        [(i, q, code) for i, p in enumerate(people) for q, code in p.answers.items()],
        columns=["respondent_id", "question_id", "answer_code"],
    ).astype({"respondent_id": "int64", "question_id": "category", "answer_code": "int64"})
    return Respondents.validate(respondents), Answers.validate(answers)


def memberships(
    respondents: pd.DataFrame, *, survey: str, year: int, catalogue: Catalogue
) -> pd.DataFrame:
    """respondent_id with every cell (level, area, verksamhet, gender) the respondent is in."""
    groups_of: dict[str, list[str]] = {}
    for group, members in catalogue.composites(survey, year).items():
        for member in members:
            groups_of.setdefault(member, []).append(group)
    rows = []
    columns = ["respondent_id", "kommun_kod", "lan_kod", "verksamhet", "enhet_id", "gender"]
    for respondent, kommun_kod, lan_kod, enkat, enhet, own_gender in zip(
        *(respondents[column].tolist() for column in columns), strict=True
    ):
        areas = [
            ("kommun", kommun_kod, kommun_kod, lan_kod),
            ("lan", lan_kod, None, lan_kod),
            ("riket", RIKET_CODE, None, None),
        ]
        if survey == "fh" and enhet:
            areas.append(("enhet", f"{kommun_kod}-{enhet}", kommun_kod, lan_kod))
        genders = ["T", own_gender] if own_gender in ("K", "M") else ["T"]
        for level, area, kommun, lan in areas:
            for verksamhet in [enkat, *groups_of.get(enkat, [])]:
                for gender in genders:
                    rows.append((respondent, level, area, kommun, lan, verksamhet, gender))
    return pd.DataFrame(
        rows,
        columns=["respondent_id", *CELL_KEY[:2], "kommun_kod", "lan_kod", *CELL_KEY[2:]],
    )


def true_results(
    respondents: pd.DataFrame,
    answers: pd.DataFrame,
    *,
    survey: str,
    year: int,
    catalogue: Catalogue,
) -> pd.DataFrame:
    """Every question cell someone answered, with its true n_valid and n_positive."""
    cells = memberships(respondents, survey=survey, year=year, catalogue=catalogue)
    answered = answers.merge(catalogue.roles, on=["question_id", "answer_code"]).merge(
        cells, on="respondent_id"
    )
    answered["valid"] = answered["role"] != "excluded"
    answered["positive"] = answered["role"] == "positive"
    counted = answered.groupby(QUESTION_KEY)[["valid", "positive"]].sum()
    return counted.rename(columns={"valid": "n_valid", "positive": "n_positive"}).reset_index()


def true_response_counts(
    respondents: pd.DataFrame, *, survey: str, year: int, catalogue: Catalogue
) -> pd.DataFrame:
    """Every cell with at least one respondent, with its true n_respondents."""
    cells = memberships(respondents, survey=survey, year=year, catalogue=catalogue)
    return cells.groupby(CELL_KEY).size().rename("n_respondents").reset_index()
