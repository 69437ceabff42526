"""Disclosure control: each rule on a population built to trigger it, then properties that must
hold for any population, checked against true counts with hierarchies rebuilt here."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.catalogue import Catalogue, default_catalogue
from tasks.aggregate import Aggregates, aggregate
from tests import disclosure
from tests.tasks.conftest import (
    CELL_KEY,
    QUESTION_KEY,
    Person,
    survey_frames,
    true_response_counts,
    true_results,
)

YEAR = 2024
Q = "IFO_KONTAKT"  # scale: 1-2 positive, 3-4 negative, 9 excluded


def people(kommun: str, verksamhet: str, count: int, kon: str = "X") -> list[Person]:
    """``count`` respondents who all answered Q positively (gender unknown unless given)."""
    return [Person(kommun, verksamhet, kon, {Q: 1})] * count


def run(catalogue: Catalogue, population: list[Person]) -> Aggregates:
    respondents, answers = survey_frames(population, catalogue)
    return aggregate(respondents, answers, None, survey="ifo", year=YEAR, catalogue=catalogue)


def hidden(
    results: pd.DataFrame, level: str, area: str, verksamhet: str, gender: str = "T"
) -> bool:
    row = results[
        (results["level"] == level)
        & (results["area_code"] == area)
        & (results["verksamhet"] == verksamhet)
        & (results["gender"] == gender)
        & (results["question_id"] == Q)
    ]
    assert len(row) == 1
    return bool(row["suppressed"].iloc[0])


def test_k_and_m_are_hidden_together(catalogue: Catalogue) -> None:
    # 3 women (below 5) and 10 men in one kommun: M is hidden with K; T = 13 stays.
    got = run(catalogue, people("0114", "EKB", 3, "K") + people("0114", "EKB", 10, "M"))
    for level, area in [("kommun", "0114"), ("lan", "01"), ("riket", "0000")]:
        assert hidden(got.results, level, area, "EKB", "K")
        assert hidden(got.results, level, area, "EKB", "M")
        assert not hidden(got.results, level, area, "EKB", "T")
    counts = got.response_counts
    m = counts[(counts["level"] == "kommun") & (counts["verksamhet"] == "EKB")]
    m = m[m["gender"] == "M"]
    assert m["suppressed"].tolist() == [True]
    assert m["n_respondents"].isna().all()


def test_one_hidden_kommun_hides_the_smallest_sibling(catalogue: Catalogue) -> None:
    # Län 01: 0114 has 3 (below 5), 0115 has 7, 0117 has 9, 0120 has 6; län total 25 is shown,
    # so 0114 alone could be recovered as 25 - 7 - 9 - 6: the smallest other, 0120, is hidden.
    got = run(
        catalogue,
        people("0114", "EKB", 3)
        + people("0115", "EKB", 7)
        + people("0117", "EKB", 9)
        + people("0120", "EKB", 6),
    )
    r = got.results
    assert not hidden(r, "lan", "01", "EKB")
    assert [hidden(r, "kommun", k, "EKB") for k in ("0114", "0115", "0117", "0120")] == [
        True,
        False,
        False,
        True,
    ]
    # 0120's group ALL equals its only enkät EKB, so it is hidden too, or it would show EKB.
    assert hidden(r, "kommun", "0120", "ALL")
    assert not hidden(r, "kommun", "0115", "ALL")


def test_a_hidden_parent_needs_no_complement(catalogue: Catalogue) -> None:
    # Riket = län 01 (0114: 2, 0115: 5) + län 03 (0380: 3). Län 03 is below 5, so its only
    # sibling län 01 (7) is hidden as well. Within län 01, 0114 is hidden (2) but the parent is
    # hidden too: two unknowns, so 0115 (5) stays published.
    got = run(
        catalogue, people("0114", "EKB", 2) + people("0115", "EKB", 5) + people("0380", "EKB", 3)
    )
    r = got.results
    assert not hidden(r, "riket", "0000", "EKB")
    assert hidden(r, "lan", "03", "EKB")
    assert hidden(r, "lan", "01", "EKB")
    assert hidden(r, "kommun", "0114", "EKB")
    assert not hidden(r, "kommun", "0115", "EKB")


def test_suppression_cascades_across_groups_and_lan(catalogue: Catalogue) -> None:
    # 0114: BOU_UNG 3 (below 5), BOU_VH 6  -> group BOU (9) shown, so VH is hidden there;
    # län 01 VH: 0114 hidden, 0115 (8) the smallest other   -> VH hidden in 0115;
    # 0115 BOU (15) shown with VH hidden alone              -> UNG (7) hidden in 0115;
    # län 01 UNG: 0114 and 0115 hidden, 0117 (10) shown     -> two unknowns, done.
    got = run(
        catalogue,
        people("0114", "BOU_UNG", 3)
        + people("0114", "BOU_VH", 6)
        + people("0115", "BOU_UNG", 7)
        + people("0115", "BOU_VH", 8)
        + people("0117", "BOU_UNG", 10)
        + people("0117", "BOU_VH", 12),
    )
    r = got.results
    expected = {
        ("0114", "BOU_UNG"): True,
        ("0114", "BOU_VH"): True,
        ("0115", "BOU_VH"): True,
        ("0115", "BOU_UNG"): True,
        ("0117", "BOU_UNG"): False,
        ("0117", "BOU_VH"): False,
        ("0114", "BOU"): False,
        ("0115", "BOU"): False,
    }
    assert {key: hidden(r, "kommun", *key) for key in expected} == expected


# --- properties over random populations -------------------------------------------------------

KOMMUNER = ["0114", "0115", "0117", "0305", "0380"]  # three in län 01, two in län 03


@st.composite
def populations(draw: st.DrawFn) -> tuple[str, list[Person]]:
    """Few respondents spread over kommuner, enkäter, genders and units: many small cells."""
    catalogue = default_catalogue()
    survey = draw(st.sampled_from(["ifo", "fh"]))
    options = catalogue.roles.groupby("question_id")["answer_code"].apply(list).to_dict()
    kommuner = draw(st.lists(st.sampled_from(KOMMUNER), min_size=2, max_size=5, unique=True))
    enkater = draw(
        st.lists(
            st.sampled_from(catalogue.enkater(survey, YEAR)), min_size=2, max_size=4, unique=True
        )
    )
    population = []
    for _ in range(draw(st.integers(min_value=5, max_value=70))):
        verksamhet = draw(st.sampled_from(enkater))
        asked = catalogue.questions_asked(survey, verksamhet, YEAR)[:3]
        answers = {q: draw(st.sampled_from(options[q])) for q in asked if draw(st.booleans())} or {
            asked[0]: draw(st.sampled_from(options[asked[0]]))
        }
        population.append(
            Person(
                kommun=draw(st.sampled_from(kommuner)),
                verksamhet=verksamhet,
                gender=draw(st.sampled_from(["K", "M", "X"])),
                answers=answers,
                enhet=draw(st.sampled_from(["", "A", "B"])) if survey == "fh" else "",
            )
        )
    return survey, population


def check_disclosure(
    published: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    keys: list[str],
    figure: str,
    threshold: int,
    composites: dict[str, list[str]],
) -> None:
    cells = published.merge(truth, on=keys, suffixes=("", "_true"), validate="one_to_one")
    assert len(cells) == len(published) == len(truth)
    shown = ~cells["suppressed"]
    # Every published figure is true and at least the threshold; hidden ones are blank.
    assert (cells.loc[shown, figure] == cells.loc[shown, f"{figure}_true"]).all()
    assert (cells.loc[shown, figure] >= threshold).all()
    assert cells.loc[~shown, figure].isna().all()
    # What an analyst reads off the published cells, family by family, leaves no group of
    # 1..threshold - 1: remainders (unknown gender, no unit), unions of hidden parts and hidden
    # parts narrowed by their own published parts included. (Solving all families at once as
    # equations can go further in tiny populations: see disclosure.solve.)
    extra = [key for key in keys if key not in disclosure.CELL]
    table = disclosure.Table(
        published.astype({figure: "float64"}), figure, composites=composites, extra_keys=extra
    )
    assert disclosure.attack(table, threshold) == []


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(populations(), st.sampled_from([3, 5]))
def test_nothing_can_be_recovered_by_subtraction(
    population: tuple[str, list[Person]], threshold: int
) -> None:
    catalogue = default_catalogue()
    survey, persons = population
    respondents, answers = survey_frames(persons, catalogue)
    got = aggregate(
        respondents,
        answers,
        None,
        survey=survey,
        year=YEAR,
        catalogue=catalogue,
        threshold=threshold,
    )
    composites = catalogue.composites(survey, YEAR)
    check_disclosure(
        got.results,
        true_results(respondents, answers, survey=survey, year=YEAR, catalogue=catalogue),
        keys=QUESTION_KEY,
        figure="n_valid",
        threshold=threshold,
        composites=composites,
    )
    check_disclosure(
        got.response_counts,
        true_response_counts(respondents, survey=survey, year=YEAR, catalogue=catalogue),
        keys=CELL_KEY,
        figure="n_respondents",
        threshold=threshold,
        composites=composites,
    )
    answered = got.distribution.groupby(QUESTION_KEY, as_index=False).agg(
        kommun_kod=("kommun_kod", "first"),
        lan_kod=("lan_kod", "first"),
        n_answered=("n", lambda n: n.sum(min_count=1)),
    )
    table = disclosure.Table(
        answered.astype({"n_answered": "float64"}),
        "n_answered",
        composites=composites,
        extra_keys=["question_id"],
    )
    assert disclosure.attack(table, threshold) == []
    # Distribution rows are hidden exactly where their cell is.
    flags = got.distribution.groupby(QUESTION_KEY)["suppressed"].agg(["min", "max"])
    assert (flags["min"] == flags["max"]).all()
    shown = got.distribution[~got.distribution["suppressed"]]
    assert shown["n"].notna().all()
    assert got.distribution.loc[got.distribution["suppressed"], "n"].isna().all()


@pytest.mark.parametrize("threshold", [0, 1])
def test_threshold_is_configurable(catalogue: Catalogue, threshold: int) -> None:
    # Threshold 0 hides nothing. Threshold 1 hides only 0115, whose one answer is "vet ej"
    # (0 valid), and then 0114 (2) as the smallest other kommun of the published län (5).
    population = (
        people("0114", "EKB", 2) + people("0117", "EKB", 3) + [Person("0115", "EKB", "X", {Q: 9})]
    )
    respondents, answers = survey_frames(population, catalogue)
    got = aggregate(
        respondents,
        answers,
        None,
        survey="ifo",
        year=YEAR,
        catalogue=catalogue,
        threshold=threshold,
    )
    kommuner = [hidden(got.results, "kommun", k, "EKB") for k in ("0114", "0115", "0117")]
    assert kommuner == ([True, True, False] if threshold == 1 else [False, False, False])
    assert not hidden(got.results, "lan", "01", "EKB")
