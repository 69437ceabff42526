"""The figures of a press release and comparable trends, on hand-built cells, on both backends.

As in ``test_statistics_views``, published figures are written straight into the core tables
and every expected value is computed by hand in the comments.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine

from tests.warehouse.test_statistics_views import (
    cell,
    flag,
    publish_load,
    publish_results,
    read,
    result,
    write_facts,
)
from warehouse import tables


def at(row: dict[str, Any], kommun: str | None = None, lan: str | None = None) -> dict[str, Any]:
    """``row`` moved to another kommun (its län given) or, at level lan, to another län."""
    if kommun is not None:
        return row | {"area_code": kommun, "kommun_kod": kommun, "lan_kod": lan}
    return row | {"area_code": lan, "lan_kod": lan}


def respondents(kommun: str, lan: str, n: int | None, verksamhet: str = "ALL") -> dict[str, Any]:
    """A kommun's response-count row (gender T); n None: suppressed."""
    return at(cell("kommun", verksamhet, "T"), kommun, lan) | {
        "n_respondents": n,
        "n_distributed": None,
        "n_covered": None,
        "response_rate": None,
        "suppressed": n is None,
    }


def test_a_change_is_tested_only_between_the_same_populations(
    statistics_engine: Engine,
) -> None:
    engine = statistics_engine
    # Län 08: Kalmar and Hultsfred in 2023, Kalmar and Mönsterås in 2024: another population.
    # Län 01: Upplands Väsby both years. Riket = both län: its kommuner changed too.
    kommuner = {2023: [("0880", "08"), ("0860", "08"), ("0114", "01")]}
    kommuner[2024] = [("0880", "08"), ("0861", "08"), ("0114", "01")]
    # 60/100 then 90/100: pooled p = 150/200 = 0.75, se = sqrt(0.75 · 0.25 · 0.02) = 0.0612372,
    # z = 0.30 / 0.0612372 = 4.89898: significant wherever the cells are comparable
    counts = {2023: (60, 100), 2024: (90, 100)}
    for year in (2023, 2024):
        load_id = publish_load(engine, "ifo", year, 0.05)
        rows = [
            at(result("lan", "ALL", "T", "IFO_KONTAKT", *counts[year]), lan="08"),
            at(result("lan", "ALL", "T", "IFO_KONTAKT", *counts[year]), lan="01"),
            result("riket", "ALL", "T", "IFO_KONTAKT", *counts[year]),
            result("kommun", "ALL", "T", "IFO_KONTAKT", *counts[year]),
        ]
        write_facts(engine, tables.fct_results, "ifo", year, load_id=load_id, rows=rows)
        write_facts(
            engine,
            tables.fct_response_counts,
            "ifo",
            year,
            load_id=load_id,
            rows=[respondents(kommun, lan, 20) for kommun, lan in kommuner[year]],
        )
    trends = read(engine, "SELECT * FROM reporting.trends WHERE year = 2024").set_index(
        ["level", "area_code"]
    )
    assert trends.loc[("kommun", "0880"), "z_score"] == pytest.approx(4.89898, abs=1e-5)
    expected = {
        ("lan", "08"): False,  # Hultsfred out, Mönsterås in
        ("lan", "01"): True,
        ("riket", "0000"): False,
        ("kommun", "0880"): True,
    }
    for area, comparable in expected.items():
        row = trends.loc[area]
        assert flag(row["comparable"]) is comparable, area
        assert row["change_pp"] == pytest.approx(30.0), area  # the arithmetic stays
        # a change between different populations is never tested, let alone significant
        assert flag(row["significant"]) is (True if comparable else None), area


def test_a_group_whose_enkater_changed_is_not_comparable(statistics_engine: Engine) -> None:
    engine = statistics_engine
    # BOU_ENS is last asked in 2020: BOU (BOU_UNG + BOU_VH + BOU_ENS) of 2021 is another group;
    # BOU_VH on its own is the same enkät both years.
    counts = {2020: (60, 100), 2021: (90, 100)}
    for year in (2020, 2021):
        load_id = publish_load(engine, "ifo", year, 0.05)
        rows = [
            result("kommun", verksamhet, "T", "IFO_KONTAKT", *counts[year])
            for verksamhet in ("BOU", "BOU_VH")
        ]
        write_facts(engine, tables.fct_results, "ifo", year, load_id=load_id, rows=rows)
    trends = read(engine, "SELECT * FROM reporting.trends WHERE year = 2021").set_index(
        "verksamhet"
    )
    assert flag(trends.loc["BOU", "comparable"]) is False
    assert flag(trends.loc["BOU", "significant"]) is None
    assert flag(trends.loc["BOU_VH", "comparable"]) is True
    assert flag(trends.loc["BOU_VH", "significant"]) is True  # z = 4.89898 as above


def test_ranks_share_ties_count_only_published_kommuner_and_band_by_quarter(
    statistics_engine: Engine,
) -> None:
    engine = statistics_engine
    load_id = publish_load(engine, "ifo", 2024, 0.05)
    # helhetssyn: 0114 90 %, 0115 80 %, 0117 80 %, 0120 70 %, 0123 60 %, 0125 hidden
    shares: dict[str, tuple[int | None, int]] = {
        "0114": (90, 100),
        "0115": (40, 50),
        "0117": (8, 10),
        "0120": (70, 100),
    }
    shares |= {"0123": (60, 100), "0125": (None, 3)}
    write_facts(
        engine,
        tables.fct_results,
        "ifo",
        2024,
        load_id=load_id,
        rows=[
            at(result("kommun", "ALL", "T", "IFO_NOJD", *counts), kommun, "01")
            for kommun, counts in shares.items()
        ],
    )
    # respondents: 0114 331, 0115 120, 0117 120, 0120 40, 0123 hidden
    sizes = {"0114": 331, "0115": 120, "0117": 120, "0120": 40, "0123": None}
    write_facts(
        engine,
        tables.fct_response_counts,
        "ifo",
        2024,
        load_id=load_id,
        rows=[respondents(kommun, "01", n) for kommun, n in sizes.items()],
    )
    ranks = read(engine, "SELECT * FROM reporting.rankings").set_index(["measure", "kommun_kod"])
    shares_ranked = ranks.loc["pct_positive"]
    # five published shares; the hidden one is neither ranked nor counted
    assert "0125" not in shares_ranked.index
    assert set(shares_ranked["n_ranked"]) == {5}
    # ties share a rank (80 % twice: both 2nd, the next is 4th); best quarter: 4 · rank ≤ 5,
    # i.e. rank 1; lowest quarter: 4 · (rank counted from the lowest) ≤ 5, i.e. 0123 alone
    expected = {
        "0114": (1, "best_quartile"),
        "0115": (2, "middle_half"),
        "0117": (2, "middle_half"),
        "0120": (4, "middle_half"),
        "0123": (5, "lowest_quartile"),
    }
    for kommun, (rank, band) in expected.items():
        assert (shares_ranked.loc[kommun, "rank"], shares_ranked.loc[kommun, "band"]) == (
            rank,
            band,
        ), kommun
    # respondents: 331 1st, 120 and 120 2nd, 40 4th, of the 4 published
    sizes_ranked = ranks.loc["n_respondents"]
    assert sizes_ranked["rank"].to_dict() == {"0114": 1, "0115": 2, "0117": 2, "0120": 4}
    assert set(sizes_ranked["n_ranked"]) == {4}
    # four ranked: rank 1 is the best quarter (4 · 1 ≤ 4), 0120 the lowest (4 · 1 ≤ 4)
    assert sizes_ranked["band"].to_dict() == {
        "0114": "best_quartile",
        "0115": "middle_half",
        "0117": "middle_half",
        "0120": "lowest_quartile",
    }


def test_the_mean_over_verksamheter_is_a_mean_of_published_shares(
    statistics_engine: Engine,
) -> None:
    engine = statistics_engine
    load_id = publish_load(engine, "ifo", 2024, 0.05)
    # förbättrad situation, everyone: EKB 60 %, MOB 87 %, BOU 66 %; BOU_VH (within BOU) and
    # ALL are not parts of their own. Women: MOB hidden.
    rows = [
        result("kommun", "EKB", "T", "IFO_FORANDRING", 60, 100),
        result("kommun", "MOB", "T", "IFO_FORANDRING", 87, 100),
        result("kommun", "BOU", "T", "IFO_FORANDRING", 33, 50),
        result("kommun", "BOU_VH", "T", "IFO_FORANDRING", 10, 20),
        result("kommun", "ALL", "T", "IFO_FORANDRING", 180, 250),
        result("kommun", "EKB", "K", "IFO_FORANDRING", 30, 50),
        result("kommun", "MOB", "K", "IFO_FORANDRING", None, 4),
        result("kommun", "BOU", "K", "IFO_FORANDRING", 20, 30),
    ]
    write_facts(engine, tables.fct_results, "ifo", 2024, load_id=load_id, rows=rows)
    means = read(engine, "SELECT * FROM reporting.verksamhet_means").set_index("gender")
    everyone = means.loc["T"]
    assert everyone["mean_of_pct_positive"] == pytest.approx(71.0)  # (60 + 87 + 66) / 3
    assert (everyone["n_verksamheter"], everyone["n_published"]) == (3, 3)
    assert not everyone["suppressed"]
    # a hidden part: no mean (the mean of the other two is not the mean of the verksamheter)
    women = means.loc["K"]
    assert pd.isna(women["mean_of_pct_positive"])
    assert (women["n_verksamheter"], women["n_published"]) == (3, 2)
    assert women["suppressed"]


def test_positive_among_all_answers_to_all_questions(statistics_engine: Engine) -> None:
    engine = statistics_engine
    rows = [
        result("kommun", "ALL", "T", "FH_BESTAMMA", 30, 40),
        result("kommun", "ALL", "T", "FH_TRYGG", 45, 50),
        result("kommun", "ALL", "T", "FH_TRIVS", 77, 110),
        result("kommun", "ALL", "M", "FH_BESTAMMA", 10, 12),
        result("kommun", "ALL", "M", "FH_TRYGG", None, 4),
    ]
    publish_results(engine, "fh", 2024, rows)
    answers = read(engine, "SELECT * FROM reporting.all_answers").set_index("gender")
    everyone = answers.loc["T"]
    # (30 + 45 + 77) / (40 + 50 + 110) = 152 / 200 = 76 %
    assert (everyone["n_questions"], everyone["n_valid"], everyone["n_positive"]) == (3, 200, 152)
    assert everyone["pct_positive"] == pytest.approx(76.0)
    assert not everyone["suppressed"]
    # a hidden question would be recovered from a total: no total
    men = answers.loc["M"]
    assert pd.isna(men["n_valid"])
    assert pd.isna(men["pct_positive"])
    assert men["suppressed"]


def test_women_minus_men_is_tested_as_trends_are(statistics_engine: Engine) -> None:
    engine = statistics_engine
    rows = [
        result("kommun", "ALL", "K", "IFO_NOJD", 90, 100),
        result("kommun", "ALL", "M", "IFO_NOJD", 80, 100),
        result("kommun", "ALL", "K", "IFO_INFO", 45, 50),
        result("kommun", "ALL", "M", "IFO_INFO", 43, 50),
        result("kommun", "ALL", "K", "IFO_KONTAKT", 30, 40),
        result("kommun", "ALL", "M", "IFO_KONTAKT", None, 3),
    ]
    publish_results(engine, "ifo", 2024, rows)
    differences = read(engine, "SELECT * FROM reporting.gender_differences").set_index(
        "question_id"
    )
    nojd = differences.loc["IFO_NOJD"]
    # 90 % − 80 % = +10 pp; pooled p = 170/200 = 0.85, se = sqrt(0.85 · 0.15 · 0.02)
    # = 0.0504975, z = 0.10 / 0.0504975 = 1.98030 > 1.95996
    assert nojd["difference_pp"] == pytest.approx(10.0)
    assert nojd["z_score"] == pytest.approx(1.98030, abs=1e-5)
    assert flag(nojd["significant"]) is True
    # 90 % − 86 % = +4 pp; pooled 88/100, se = sqrt(0.88 · 0.12 · 0.04) = 0.0649923, z = 0.61546
    info = differences.loc["IFO_INFO"]
    assert info["z_score"] == pytest.approx(0.61546, abs=1e-5)
    assert flag(info["significant"]) is False
    # men hidden: no difference, nothing tested
    kontakt = differences.loc["IFO_KONTAKT"]
    assert pd.isna(kontakt["difference_pp"])
    assert flag(kontakt["significant"]) is None


def test_lan_and_riket_pool_and_give_the_mean_of_published_kommuner(
    statistics_engine: Engine,
) -> None:
    engine = statistics_engine
    load_id = publish_load(engine, "ifo", 2024, 0.05)
    # kommuner of län 08: 0880 45/50 = 90 %, 0860 6/10 = 60 %, 0861 hidden (3 answers);
    # of län 01: 0114 70/100 = 70 %. Pooled, län 08 is 53/63 and riket 123/163.
    rows = [
        result("kommun", "ALL", "T", "IFO_NOJD", 45, 50),
        at(result("kommun", "ALL", "T", "IFO_NOJD", 6, 10), "0860", "08"),
        at(result("kommun", "ALL", "T", "IFO_NOJD", None, 3), "0861", "08"),
        at(result("kommun", "ALL", "T", "IFO_NOJD", 70, 100), "0114", "01"),
        result("lan", "ALL", "T", "IFO_NOJD", 53, 63),
        result("riket", "ALL", "T", "IFO_NOJD", 123, 163),
    ]
    write_facts(engine, tables.fct_results, "ifo", 2024, load_id=load_id, rows=rows)
    results = read(engine, "SELECT * FROM reporting.results").set_index(["level", "area_code"])
    assert set(results["aggregation"]) == {"pooled"}
    lan, riket = results.loc[("lan", "08")], results.loc[("riket", "0000")]
    assert lan["pct_positive"] == pytest.approx(100 * 53 / 63)  # 84.13 % pooled
    # the hidden kommun is in neither mean, so its share cannot be recovered from them
    assert lan["kommun_mean_pct"] == pytest.approx(75.0)  # (90 + 60) / 2
    assert lan["n_kommuner_in_mean"] == 2
    assert riket["kommun_mean_pct"] == pytest.approx(220 / 3)  # (90 + 60 + 70) / 3 = 73.33
    assert riket["n_kommuner_in_mean"] == 3
    assert pd.isna(results.loc[("kommun", "0880"), "kommun_mean_pct"])


def test_the_rate_is_the_rows_own_respondents_over_handed_out(statistics_engine: Engine) -> None:
    engine = statistics_engine
    load_id = publish_load(engine, "ifo", 2024, 0.05)
    # län 08: 0880 sent utdelade.csv (60 of 100 handed out answered), 0860 did not (40 answered)
    # the län's rate is 0880's: 60 / 100 = 60 %, not (60 + 40) / 100
    row = at(cell("lan", "ALL", "T"), lan="08") | {
        "n_respondents": 100,
        "n_distributed": 100,
        "n_covered": 60,
        "response_rate": 60.0,
        "suppressed": False,
    }
    write_facts(engine, tables.fct_response_counts, "ifo", 2024, load_id=load_id, rows=[row])
    counts = read(engine, "SELECT * FROM reporting.response_counts").iloc[0]
    assert counts["n_respondents"] == 100
    assert counts["n_respondents_with_distributed"] == 60
    assert counts["response_rate"] == pytest.approx(
        100 * counts["n_respondents_with_distributed"] / counts["n_distributed"]
    )


def test_an_area_the_enkat_asks_only_in_part_is_not_applicable(
    statistics_engine: Engine,
) -> None:
    engine = statistics_engine
    # FH självbestämmande 2024: FH_BESTAMMA, FH_HJALP, FH_PA_BESTAMT, FH_PA_GORA. LSS_DV asks the
    # first two only: no mean of the area, however published (not hidden: not applicable).
    # trivsel (FH_TRIVS, FH_VIKTIG): LSS_DV asks both, 80 % and 60 % → (80 + 60) / 2 = 70 %.
    rows = [
        result("kommun", "LSS_DV", "T", "FH_BESTAMMA", 40, 50),
        result("kommun", "LSS_DV", "T", "FH_HJALP", 45, 50),
        result("kommun", "LSS_DV", "T", "FH_TRIVS", 40, 50),
        result("kommun", "LSS_DV", "T", "FH_VIKTIG", 30, 50),
    ]
    publish_results(engine, "fh", 2024, rows)
    areas = read(engine, "SELECT * FROM reporting.quality_areas").set_index("quality_area")
    own = areas.loc["självbestämmande"]
    assert (own["n_area_questions"], own["n_questions"], own["n_published"]) == (4, 2, 2)
    assert own["not_applicable"]
    assert not own["suppressed"]
    assert pd.isna(own["unweighted_mean_pct"])
    trivsel = areas.loc["trivsel"]
    assert not trivsel["not_applicable"]
    assert trivsel["unweighted_mean_pct"] == pytest.approx(70.0)
