"""The statistics step on populations whose figures are known by hand or counted independently."""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prefect import State, flow
from prefect.client.orchestration import get_client

from schemas.catalogue import Catalogue
from schemas.frames import (
    GENDERS,
    LEVELS,
    AnswerDistribution,
    Respondents,
    ResponseCounts,
    Results,
)
from tasks.aggregate import Aggregates, aggregate, aggregate_task
from tests.tasks.conftest import (
    CELL_KEY,
    QUESTION_KEY,
    Person,
    survey_frames,
    true_response_counts,
    true_results,
)

YEAR = 2024


def wilson(successes: int, n: int, confidence: float) -> tuple[float, float]:
    """Textbook Wilson score interval, in percent."""
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return 100 * max(centre - half, 0.0), 100 * min(centre + half, 1.0)


def cell(frame: pd.DataFrame, **keys: object) -> pd.DataFrame:
    """The rows of ``frame`` matching every given key."""
    mask = np.ones(len(frame), dtype=bool)
    for column, value in keys.items():
        mask &= (frame[column] == value).to_numpy()
    return frame[mask]


def one(frame: pd.DataFrame, **keys: object) -> pd.Series:
    rows = cell(frame, **keys)
    assert len(rows) == 1, f"{keys}: {len(rows)} rows"
    return rows.iloc[0]


# Seven EKB respondents in Upplands Väsby (0114, län 01). IFO_KONTAKT's scale: 1-2 positive,
# 3-4 negative, 9 "vet ej" (excluded). The seventh left IFO_KONTAKT blank.
SEVEN = [
    Person("0114", "EKB", "K", {"IFO_KONTAKT": 1}),
    Person("0114", "EKB", "K", {"IFO_KONTAKT": 1}),
    Person("0114", "EKB", "M", {"IFO_KONTAKT": 2}),
    Person("0114", "EKB", "M", {"IFO_KONTAKT": 3}),
    Person("0114", "EKB", "X", {"IFO_KONTAKT": 4}),
    Person("0114", "EKB", "X", {"IFO_KONTAKT": 9}),
    Person("0114", "EKB", "K", {"IFO_INFO": 1}),
]


@pytest.fixture(scope="module")
def seven(catalogue: Catalogue) -> Aggregates:
    respondents, answers = survey_frames(SEVEN, catalogue)
    return aggregate(respondents, answers, None, survey="ifo", year=YEAR, catalogue=catalogue)


@pytest.mark.parametrize("confidence", [0.95, 0.90])
def test_hand_computed_cell(catalogue: Catalogue, confidence: float) -> None:
    respondents, answers = survey_frames(SEVEN, catalogue)
    results = aggregate(
        respondents,
        answers,
        None,
        survey="ifo",
        year=YEAR,
        catalogue=catalogue,
        confidence=confidence,
    ).results
    row = one(
        results,
        level="kommun",
        area_code="0114",
        verksamhet="EKB",
        gender="T",
        question_id="IFO_KONTAKT",
    )
    # Valid: 1, 1, 2, 3, 4 (the 9 is excluded, the blank is no answer; X counts in T) = 5;
    # positive: 1, 1, 2 = 3; 3 / 5 = 60 %.
    assert (row["n_valid"], row["n_positive"]) == (5, 3)
    assert row["pct_positive"] == pytest.approx(60.0)
    low, high = wilson(3, 5, confidence)
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    assert not row["suppressed"]


def test_every_level_of_a_single_kommun_shows_the_same_cell(seven: Aggregates) -> None:
    results = seven.results
    for level, area, kommun, lan in [
        ("kommun", "0114", "0114", "01"),
        ("lan", "01", None, "01"),
        ("riket", "0000", None, None),
    ]:
        for verksamhet in ("EKB", "ALL"):
            row = one(
                results,
                level=level,
                area_code=area,
                verksamhet=verksamhet,
                gender="T",
                question_id="IFO_KONTAKT",
            )
            assert (row["n_valid"], row["n_positive"]) == (5, 3)
            codes = row[["kommun_kod", "lan_kod"]].tolist()
            assert [None if pd.isna(code) else code for code in codes] == [kommun, lan]
    assert cell(results, verksamhet="BOU").empty  # nobody answered a BOU enkät
    assert set(results["level"]) == {"kommun", "lan", "riket"}  # ifo has no enhet level


def test_small_cells_and_their_gender_pair_are_suppressed(seven: Aggregates) -> None:
    kontakt = cell(seven.results, level="kommun", verksamhet="EKB", question_id="IFO_KONTAKT")
    by_gender = kontakt.set_index("gender")
    # K answered 2 valid, M 2 valid: both below 5, figures blank.
    assert by_gender.loc[["K", "M"], "suppressed"].all()
    assert by_gender.loc[["K", "M"], ["n_valid", "n_positive", "pct_positive"]].isna().all().all()
    # IFO_INFO: one K answer and no M cell at all (no man answered it).
    info = cell(seven.results, level="kommun", verksamhet="EKB", question_id="IFO_INFO")
    assert sorted(info["gender"]) == ["K", "T"]
    assert info["suppressed"].all()


def test_distribution_lists_every_option_with_shares_of_valid_answers(seven: Aggregates) -> None:
    rows = cell(
        seven.distribution, level="kommun", verksamhet="EKB", gender="T", question_id="IFO_KONTAKT"
    ).set_index("answer_code")
    # Of the 5 valid answers: code 1 twice (40 %), 2, 3, 4 once each (20 %); "vet ej" once,
    # listed with its count but no share.
    assert rows["n"].to_dict() == {1: 2, 2: 1, 3: 1, 4: 1, 9: 1}
    assert rows.loc[[1, 2, 3, 4], "pct"].tolist() == pytest.approx([40.0, 20.0, 20.0, 20.0])
    assert rows["pct"].isna().tolist() == [False, False, False, False, True]
    assert not rows["suppressed"].any()
    info = cell(
        seven.distribution, level="kommun", verksamhet="EKB", gender="T", question_id="IFO_INFO"
    )
    # Only code 1 was given, yet all five options are listed; the cell is suppressed (n = 1).
    assert sorted(info["answer_code"]) == [1, 2, 3, 4, 9]
    assert info["suppressed"].all()
    assert info["n"].isna().all()
    assert info["pct"].isna().all()


def test_response_counts_of_the_seven(seven: Aggregates) -> None:
    counts = cell(seven.response_counts, level="kommun", verksamhet="EKB").set_index("gender")
    assert counts.loc["T", "n_respondents"] == 7  # two of unknown gender included
    assert counts.loc[["K", "M"], "suppressed"].all()  # 3 and 2 respondents
    assert counts["n_distributed"].isna().all()
    assert counts["response_rate"].isna().all()


def random_people(
    catalogue: Catalogue, survey: str, kommuner: list[str], size: int, seed: int
) -> list[Person]:
    """A seeded population: random enkät, gender and unit; each asked question answered with
    a random option of its scale or left blank."""
    rng = np.random.default_rng(seed)
    enkater = catalogue.enkater(survey, YEAR)
    options = catalogue.roles.groupby("question_id")["answer_code"].apply(list).to_dict()
    people = []
    for _ in range(size):
        verksamhet = str(rng.choice(enkater))
        asked = catalogue.questions_asked(survey, verksamhet, YEAR)
        answers = {q: int(rng.choice(options[q])) for q in asked if rng.random() < 0.8}
        answers = answers or {asked[0]: int(rng.choice(options[asked[0]]))}
        people.append(
            Person(
                kommun=str(rng.choice(kommuner)),
                verksamhet=verksamhet,
                gender=str(rng.choice(["K", "M", "X"])),
                answers=answers,
                enhet=str(rng.choice(["", "A", "B"])),
            )
        )
    return people


@pytest.mark.parametrize("survey", ["ifo", "fh"])
def test_every_cell_matches_an_independent_count(catalogue: Catalogue, survey: str) -> None:
    # Three kommuner in Stockholms län and two in Uppsala län; threshold 0 so every figure shows.
    kommuner = ["0114", "0115", "0117", "0305", "0380"]
    respondents, answers = survey_frames(
        random_people(catalogue, survey, kommuner, size=400, seed=7), catalogue
    )
    got = aggregate(
        respondents, answers, None, survey=survey, year=YEAR, catalogue=catalogue, threshold=0
    )
    expected = true_results(respondents, answers, survey=survey, year=YEAR, catalogue=catalogue)
    compared = got.results.merge(
        expected, on=QUESTION_KEY, how="outer", indicator=True, suffixes=("", "_true")
    )
    assert (compared["_merge"] == "both").all(), "the same cells exist"
    assert (compared["n_valid"] == compared["n_valid_true"]).all()
    assert (compared["n_positive"] == compared["n_positive_true"]).all()
    assert not got.results["suppressed"].any()
    assert (survey == "fh") == ("enhet" in set(got.results["level"]))
    enhet = cell(got.results, level="enhet")
    assert (enhet["area_code"].str[:4] == enhet["kommun_kod"]).all()
    assert (enhet["kommun_kod"].map(catalogue.lan_of) == enhet["lan_kod"]).all()

    counts = true_response_counts(respondents, survey=survey, year=YEAR, catalogue=catalogue)
    compared = got.response_counts.merge(
        counts, on=CELL_KEY, how="outer", indicator=True, suffixes=("", "_true")
    )
    assert (compared["_merge"] == "both").all()
    assert (compared["n_respondents"] == compared["n_respondents_true"]).all()
    riket = one(got.response_counts, level="riket", area_code="0000", verksamhet="ALL", gender="T")
    assert riket["n_respondents"] == len(respondents)  # every respondent once in ALL


@pytest.mark.parametrize("survey", ["ifo", "fh"])
def test_cells_come_in_order_of_rank_then_text(catalogue: Catalogue, survey: str) -> None:
    """Suppression breaks ties by row order, so the order of the cells is part of the figures:
    levels and genders by rank, every other key as text."""
    people = random_people(catalogue, survey, ["0305", "0114", "0380", "0115"], size=300, seed=3)
    respondents, answers = survey_frames(people, catalogue)
    got = aggregate(
        respondents, answers, None, survey=survey, year=YEAR, catalogue=catalogue, threshold=0
    )
    rank = {"level": LEVELS, "gender": GENDERS}
    for frame, key in [
        (got.results, QUESTION_KEY),
        (got.distribution, [*QUESTION_KEY, "answer_code"]),
        (got.response_counts, CELL_KEY),
    ]:
        rows = [
            tuple(rank[column].index(value) if column in rank else value for column, value in row)
            for row in (zip(key, values, strict=True) for values in frame[key].to_numpy())
        ]
        assert rows == sorted(rows)
        assert len(set(rows)) == len(rows)


def test_response_rate_uses_only_parts_with_a_count(catalogue: Catalogue) -> None:
    people = (
        [Person("0114", "EKB", "K", {"IFO_KONTAKT": 1})] * 6
        + [Person("0114", "EKB", "M", {"IFO_KONTAKT": 2})] * 6
        + [Person("0115", "EKB", "X", {"IFO_KONTAKT": 1})] * 8
    )
    respondents, answers = survey_frames(people, catalogue)
    distributed = pd.DataFrame(
        {
            "kommun_kod": ["0114", "0114"],
            "verksamhet": [
                "EKB",
                "MOB",
            ],  # MOB handed out in 0114, none returned; no count for 0115
            "antal_utdelade": [24, 6],
        }
    )
    counts = aggregate(
        respondents, answers, distributed, survey="ifo", year=YEAR, catalogue=catalogue
    ).response_counts

    def figures(**keys: object) -> list[Any]:
        return one(counts, **keys)[["n_respondents", "n_distributed", "response_rate"]].tolist()

    # 0114 EKB: 12 of 24 = 50 %.
    assert figures(level="kommun", area_code="0114", verksamhet="EKB", gender="T") == [
        12,
        24,
        pytest.approx(50.0),
    ]
    # 0114 ALL: EKB 12 + MOB 0 returned of 24 + 6 handed out = 40 %.
    assert figures(level="kommun", area_code="0114", verksamhet="ALL", gender="T") == [
        12,
        30,
        pytest.approx(40.0),
    ]
    # 0115 has no count: no rate.
    n, handed_out, rate = figures(level="kommun", area_code="0115", verksamhet="EKB", gender="T")
    assert n == 8
    assert handed_out is pd.NA
    assert math.isnan(rate)
    # Län 01 EKB: 20 respondents, but the rate is 0114's alone: 12 of 24.
    assert figures(level="lan", area_code="01", verksamhet="EKB", gender="T") == [
        20,
        24,
        pytest.approx(50.0),
    ]
    # Riket ALL: 12 of 30.
    assert figures(level="riket", area_code="0000", verksamhet="ALL", gender="T") == [
        20,
        30,
        pytest.approx(40.0),
    ]
    # Genders carry respondents only.
    n, handed_out, rate = figures(level="kommun", area_code="0114", verksamhet="EKB", gender="K")
    assert n == 6
    assert handed_out is pd.NA
    assert math.isnan(rate)
    # The respondents the rate is computed on: rate = 100 · n_covered / n_distributed on every
    # row. Län 01 EKB: 12 (0114's; 0115's 8 have no count), 100 · 12 / 24 = 50 %.
    covered = {
        (level, area, gender): one(
            counts, level=level, area_code=area, verksamhet="EKB", gender=gender
        )["n_covered"]
        for level, area, gender in (
            ("lan", "01", "T"),
            ("kommun", "0114", "T"),
            ("kommun", "0115", "T"),
            ("kommun", "0114", "K"),
        )
    }
    assert covered[("lan", "01", "T")] == 12
    assert covered[("kommun", "0114", "T")] == 12
    assert covered[("kommun", "0115", "T")] is pd.NA  # no count, no rate
    assert covered[("kommun", "0114", "K")] is pd.NA


@pytest.mark.parametrize(
    ("person", "message"),
    [
        (Person("0114", "EKB", "K", {"IFO_KONTAKT": 7}), "outside their scale"),
        (Person("0114", "BOU_ENS", "K", {"IFO_KONTAKT": 1}), "not an enkät"),  # ended 2020
    ],
)
def test_inconsistent_input_is_refused(catalogue: Catalogue, person: Person, message: str) -> None:
    respondents, answers = survey_frames([person], catalogue)
    with pytest.raises(ValueError, match=message):
        aggregate(respondents, answers, None, survey="ifo", year=YEAR, catalogue=catalogue)


def test_outputs_keep_the_contract_order_of_columns(seven: Aggregates) -> None:
    for frame, model in [
        (seven.results, Results),
        (seven.distribution, AnswerDistribution),
        (seven.response_counts, ResponseCounts),
    ]:
        assert list(frame.columns) == list(model.to_schema().columns)


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_server")
def test_task_fails_bad_data_on_its_first_attempt(catalogue: Catalogue) -> None:
    """Inconsistent input is never retried: the task run ends failed after one attempt."""
    respondents, answers = survey_frames(
        [Person("0114", "EKB", "K", {"IFO_KONTAKT": 7})], catalogue
    )
    states: list[State[Any]] = []

    @flow
    def aggregate_bad_data() -> None:
        state = aggregate_task(
            respondents, answers, None, survey="ifo", year=YEAR, catalogue=catalogue,
            return_state=True,
        )  # fmt: skip
        states.append(state)

    aggregate_bad_data()
    [refused] = states
    assert refused.is_failed()
    assert "outside their scale" in str(refused.message)
    with get_client(sync_client=True) as client:
        assert client.read_task_run(refused.state_details.task_run_id).run_count == 1


def test_two_hundred_thousand_respondents(catalogue: Catalogue) -> None:
    """A national-scale fh year: vectorised generation, every figure adds up."""
    rng = np.random.default_rng(11)
    size = 200_000
    kommuner = catalogue.kommuner["kommun_kod"].to_numpy()
    enkater = np.array(catalogue.enkater("fh", YEAR))
    kommun = rng.choice(kommuner, size)
    respondents = Respondents.validate(
        pd.DataFrame(
            {
                "respondent_id": np.arange(size, dtype="int64"),
                "source_file": "export.csv",
                "row_number": np.arange(1, size + 1, dtype="int64"),
                "kommun_kod": kommun,
                "lan_kod": pd.Series(kommun).map(catalogue.lan_of).to_numpy(),
                "verksamhet": rng.choice(enkater, size),
                "enhet_id": rng.choice(["", "E1", "E2", "E3"], size),
                "svar_id": np.arange(size).astype(str),
                "gender": rng.choice(["K", "M", "X"], size),
            }
        ).astype(
            dict.fromkeys(
                (
                    "kommun_kod",
                    "lan_kod",
                    "verksamhet",
                    "enhet_id",
                    "svar_id",
                    "gender",
                    "source_file",
                ),
                "str",
            )
        )
    )
    options = catalogue.roles.groupby("question_id")["answer_code"].apply(np.array).to_dict()
    parts = []
    for verksamhet in enkater:
        who = respondents.loc[respondents["verksamhet"] == verksamhet, "respondent_id"]
        for question in catalogue.questions_asked("fh", str(verksamhet), YEAR):
            answering = who[rng.random(len(who)) < 0.9].to_numpy()
            parts.append(
                pd.DataFrame(
                    {
                        "respondent_id": answering,
                        "question_id": question,
                        "answer_code": rng.choice(options[question], len(answering)),
                    }
                )
            )
    answers = pd.concat(parts, ignore_index=True).astype({"question_id": "str"})

    got = aggregate(respondents, answers, None, survey="fh", year=YEAR, catalogue=catalogue)

    riket = cell(got.results, level="riket", verksamhet="ALL", gender="T").set_index("question_id")
    roles = answers.merge(catalogue.roles, on=["question_id", "answer_code"])
    valid = roles[roles["role"] != "excluded"].groupby("question_id").size()
    assert riket["n_valid"].sort_index().to_dict() == valid.sort_index().to_dict()
    lan = cell(got.response_counts, level="lan", verksamhet="ALL", gender="T")
    per_lan = respondents.groupby("lan_kod").size()
    assert lan.set_index("area_code")["n_respondents"].to_dict() == per_lan.to_dict()
    per_enkat = cell(got.response_counts, level="riket", gender="T").set_index("verksamhet")
    expected = respondents["verksamhet"].value_counts()
    assert per_enkat.loc[expected.index, "n_respondents"].to_dict() == expected.to_dict()
    assert per_enkat.loc["ALL", "n_respondents"] == size


def test_no_respondents_give_empty_frames_of_the_contract(catalogue: Catalogue) -> None:
    respondents, answers = survey_frames([], catalogue)
    distributed = pd.DataFrame(
        {"kommun_kod": ["0114"], "verksamhet": ["LSS_DV"], "antal_utdelade": [3]}
    )
    got = aggregate(respondents, answers, distributed, survey="fh", year=YEAR, catalogue=catalogue)
    assert (len(got.results), len(got.distribution), len(got.response_counts)) == (0, 0, 0)
