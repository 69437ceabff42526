"""Units (FH ``enhet``): a unit with fewer than five answers never shows, not even by subtraction.

A kommun's figure counts every answer of its units (and of respondents the export names no unit
for), so "kommun minus the other published units" would reveal a lone suppressed unit. The
cases below are small enough to work out by hand; the property checks every family of a kommun
and its units on random populations.
"""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.catalogue import Catalogue
from tasks.aggregate import Aggregates, aggregate
from tests.tasks.conftest import Person, survey_frames, true_response_counts, true_results

YEAR = 2024
KALMAR, NYBRO = "0880", "0881"
QUESTION = "FH_TRYGG"  # 1 positive, 2 middle, 3 negative, 9 excluded ("vet ej")
FAMILY = ["kommun_kod", "verksamhet", "gender", "question_id"]


def people(enhet: str, answers: list[int], kommun: str = KALMAR, kon: str = "X") -> list[Person]:
    """One LSS_GRUPP respondent per answer code, all of one unit (kon X: only gender T exists)."""
    return [Person(kommun, "LSS_GRUPP", kon, {QUESTION: code}, enhet=enhet) for code in answers]


def figures(population: list[Person], catalogue: Catalogue) -> Aggregates:
    respondents, answers = survey_frames(population, catalogue)
    return aggregate(respondents, answers, None, survey="fh", year=YEAR, catalogue=catalogue)


def shown(frame: pd.DataFrame, level: str, column: str = "n_valid") -> dict[str, object]:
    """area_code → the published figure (None where suppressed) of LSS_GRUPP, everyone."""
    rows = frame[
        (frame["level"] == level) & (frame["verksamhet"] == "LSS_GRUPP") & (frame["gender"] == "T")
    ]
    return {
        area: (None if hidden else int(value))
        for area, value, hidden in zip(
            rows["area_code"], rows[column], rows["suppressed"], strict=True
        )
    }


def test_a_small_unit_and_its_smallest_sibling_are_hidden(catalogue: Catalogue) -> None:
    # units A: 10 answers, B: 3, C: 8; Kalmar = 21, all in units.
    # B (3 < 5) is hidden; Kalmar − A = 11 would reveal it, so C (8, smallest visible) goes too.
    population = people("A", [1] * 7 + [3] * 3) + people("B", [1, 2, 3]) + people("C", [1] * 8)
    results = figures(population, catalogue).results
    assert shown(results, "enhet") == {"0880-A": 10, "0880-B": None, "0880-C": None}
    assert shown(results, "kommun") == {KALMAR: 21}
    assert shown(results, "enhet", "n_positive") == {"0880-A": 7, "0880-B": None, "0880-C": None}
    # what a reader can subtract: 21 − 10 = 11 = B + C, not B's 3
    hidden = results[(results["level"] == "enhet") & results["suppressed"]]
    assert hidden["pct_positive"].isna().all()
    assert hidden["ci_low"].isna().all()


def test_a_unit_with_enough_respondents_but_few_valid_answers_is_hidden(
    catalogue: Catalogue,
) -> None:
    # A: 10 answers; B: 6 respondents, but 2 said "vet ej" (9): n_valid = 4 < 5.
    # Kalmar's n_valid 14 − A's 10 = 4 = B: so A, the only other unit, is hidden as well.
    population = people("A", [1] * 10) + people("B", [1, 1, 2, 3, 9, 9])
    aggregates = figures(population, catalogue)
    assert shown(aggregates.results, "enhet") == {"0880-A": None, "0880-B": None}
    assert shown(aggregates.results, "kommun") == {KALMAR: 14}
    # B's 6 respondents are enough to show how many answered; A's 10 too
    assert shown(aggregates.response_counts, "enhet", "n_respondents") == {
        "0880-A": 10,
        "0880-B": 6,
    }


@pytest.mark.parametrize(("without_unit", "a_shown"), [(6, True), (1, False)])
def test_respondents_without_a_unit_are_a_part_of_their_kommun(
    catalogue: Catalogue, without_unit: int, a_shown: bool
) -> None:
    # A: 10, B: 3 (hidden), and respondents with no unit. Kalmar − A = B + those without a unit:
    # with 6 of them 3 + 6 = 9, a group of at least 5, so A stays shown; with 1 of them
    # 3 + 1 = 4 would be read off, so A is hidden too.
    population = people("A", [1] * 10) + people("B", [1, 1, 3]) + people("", [2] * without_unit)
    results = figures(population, catalogue).results
    assert shown(results, "enhet") == {"0880-A": 10 if a_shown else None, "0880-B": None}
    assert shown(results, "kommun") == {KALMAR: 13 + without_unit}


def test_units_of_another_kommun_are_not_siblings(catalogue: Catalogue) -> None:
    # Kalmar: A 10, B 12 (nothing small); Nybro: C 3, D 9, E 20. Only Nybro's family acts:
    # C hidden, then D (9, its smallest visible sibling). Kalmar's units stay.
    population = (
        people("A", [1] * 10)
        + people("B", [1] * 12)
        + people("C", [1] * 3, NYBRO)
        + people("D", [1] * 9, NYBRO)
        + people("E", [1] * 20, NYBRO)
    )
    results = figures(population, catalogue).results
    assert shown(results, "enhet") == {
        "0880-A": 10,
        "0880-B": 12,
        "0881-C": None,
        "0881-D": None,
        "0881-E": 20,
    }
    assert shown(results, "kommun") == {KALMAR: 22, NYBRO: 32}


def lone_hidden_units(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Published kommun cells with exactly one suppressed unit: what subtraction would reveal."""
    units = frame[frame["level"] == "enhet"]
    kommuner = frame[(frame["level"] == "kommun") & ~frame["suppressed"]]
    hidden = units.groupby(keys)["suppressed"].sum().rename("hidden_units").reset_index()
    merged = kommuner.merge(hidden, on=keys)
    return merged[merged["hidden_units"] == 1]


unit_people = st.lists(
    st.tuples(
        st.sampled_from([KALMAR, NYBRO]),
        st.sampled_from(["LSS_GRUPP", "LSS_DV"]),
        st.sampled_from(["", "A", "B", "C", "D"]),
        st.sampled_from(["K", "M", "X"]),
        st.sampled_from([1, 2, 3, 9, 0]),  # 0: the question left blank
    ),
    min_size=1,
    max_size=80,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(population=unit_people)
def test_no_suppressed_unit_can_be_recovered_from_its_kommun(
    catalogue: Catalogue, population: list[tuple[str, str, str, str, int]]
) -> None:
    persons = [
        Person(kommun, verksamhet, kon, {QUESTION: code} if code else {}, enhet=enhet)
        for kommun, verksamhet, enhet, kon, code in population
    ]
    respondents, answers = survey_frames(persons, catalogue)
    aggregates = aggregate(respondents, answers, None, survey="fh", year=YEAR, catalogue=catalogue)
    results, counts = aggregates.results, aggregates.response_counts

    # below five valid answers (counted here, independently) a unit never shows
    truth = true_results(respondents, answers, survey="fh", year=YEAR, catalogue=catalogue)
    small = truth[(truth["level"] == "enhet") & (truth["n_valid"] < 5)]
    shown_small = results.merge(
        small[["area_code", "verksamhet", "gender", "question_id"]],
        on=["area_code", "verksamhet", "gender", "question_id"],
    )
    assert shown_small["suppressed"].all()
    assert shown_small["n_valid"].isna().all()
    assert shown_small["pct_positive"].isna().all()
    respondents_truth = true_response_counts(
        respondents, survey="fh", year=YEAR, catalogue=catalogue
    )
    few = respondents_truth[
        (respondents_truth["level"] == "enhet") & (respondents_truth["n_respondents"] < 5)
    ]
    shown_few = counts.merge(few[["area_code", "verksamhet", "gender"]])
    assert shown_few["suppressed"].all()
    assert shown_few["n_respondents"].isna().all()

    # a published kommun never has exactly one suppressed unit beside published ones
    assert lone_hidden_units(results, FAMILY).empty
    assert lone_hidden_units(counts, FAMILY[:-1]).empty
