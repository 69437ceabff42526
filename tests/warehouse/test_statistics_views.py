"""reporting.trends, reporting.quality_areas and reporting.kolada_comparison on hand-built cells.

Published figures are written straight into the core tables (with the load that published
them), so each view is checked against figures computed by hand in the comments.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, insert, text

from flows.settings import Settings
from schemas.catalogue import Catalogue
from schemas.frames import FEW_ANSWERS
from tasks.statistics import wilson_interval
from warehouse import tables
from warehouse.kolada import store_kolada_values
from warehouse.load import bulk_insert

KOMMUN, LAN = "0880", "08"
COUNTS = ("n_valid", "n_positive", "n", "n_respondents", "n_distributed", "n_covered")
AREA = {"kommun": (KOMMUN, KOMMUN, LAN), "lan": (LAN, None, LAN), "riket": ("0000", None, None)}


def publish_load(
    engine: Engine, survey: str, year: int, significance_level: float, threshold: int = 5
) -> int:
    """A published load of (survey, year) whose settings record ``significance_level`` and the
    suppression ``threshold``."""
    settings = Settings(
        significance_level=significance_level, suppression_threshold=threshold
    ).statistical_settings()
    with engine.begin() as conn:
        load_id: int = conn.execute(
            insert(tables.loads)
            .values(
                survey=survey,
                year=year,
                source="file:///exports",
                status="published",
                started_at=pd.Timestamp("2025-02-15", tz="UTC"),
                settings=json.dumps(settings),
            )
            .returning(tables.loads.c.load_id)
        ).scalar_one()
    return load_id


def cell(level: str, verksamhet: str, gender: str) -> dict[str, Any]:
    area_code, kommun_kod, lan_kod = AREA[level]
    return {
        "level": level,
        "area_code": area_code,
        "kommun_kod": kommun_kod,
        "lan_kod": lan_kod,
        "verksamhet": verksamhet,
        "gender": gender,
    }


def result(
    level: str,
    verksamhet: str,
    gender: str,
    question: str,
    *counts: int | None,
    reason: str = FEW_ANSWERS,
) -> dict[str, Any]:
    """One result row from (n_positive, n_valid); n_positive None: the cell is suppressed
    (for ``reason``)."""
    n_positive, n_valid = counts
    assert n_valid is not None
    published = n_positive is not None
    low, high = wilson_interval(pd.Series([n_positive or 0]), pd.Series([n_valid]), 0.95)
    return cell(level, verksamhet, gender) | {
        "question_id": question,
        "n_valid": n_valid if published else None,
        "n_positive": n_positive,
        "pct_positive": 100 * n_positive / n_valid if published else None,
        "ci_low": low.iloc[0] if published else None,
        "ci_high": high.iloc[0] if published else None,
        "suppressed": not published,
        "suppression_reason": None if published else reason,
    }


def publish_results(engine: Engine, survey: str, year: int, rows: list[dict[str, Any]]) -> int:
    """A published load (at 5 %) of (survey, year) whose results are ``rows``; its load id."""
    load_id = publish_load(engine, survey, year, 0.05)
    write_facts(engine, tables.fct_results, survey, year, load_id=load_id, rows=rows)
    return load_id


def write_facts(
    engine: Engine, table: Any, survey: str, year: int, *, load_id: int, rows: list[dict[str, Any]]
) -> None:
    frame = pd.DataFrame(rows).assign(survey=survey, year=year, load_id=load_id)
    counts = [column for column in frame.columns if column in COUNTS]
    frame[counts] = frame[counts].astype("Int64")  # whole numbers, NULL where suppressed
    with engine.begin() as conn:
        bulk_insert(conn, table, frame)


def flag(value: Any) -> bool | None:
    """A boolean of a view as read: None where it is NULL."""
    return None if pd.isna(value) else bool(value)


def read(engine: Engine, query: str) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(text(query), conn)


def test_trends_test_the_change_at_the_recorded_significance_level(
    statistics_engine: Engine,
) -> None:
    engine = statistics_engine
    previous = publish_load(engine, "ifo", 2023, 0.05)
    write_facts(
        engine,
        tables.fct_results,
        "ifo",
        2023,
        load_id=previous,
        rows=[
            result("kommun", "EKB", "T", "IFO_KONTAKT", 60, 100),
            result("kommun", "EKB", "T", "IFO_INFO", 50, 100),
            result("kommun", "EKB", "T", "IFO_FORSTAELSE", 40, 100),
            result("kommun", "EKB", "T", "IFO_NOJD", None, 3),
        ],
    )
    current = publish_load(engine, "ifo", 2024, 0.05)
    write_facts(
        engine,
        tables.fct_results,
        "ifo",
        2024,
        load_id=current,
        rows=[
            result("kommun", "EKB", "T", "IFO_KONTAKT", 75, 100),
            result("kommun", "EKB", "T", "IFO_INFO", 55, 100),
            result("kommun", "EKB", "T", "IFO_FORSTAELSE", None, 4),
            result("kommun", "EKB", "T", "IFO_NOJD", 90, 100),
            result("kommun", "EKB", "T", "IFO_PAVERKA", 90, 100),
        ],
    )
    trends = read(engine, "SELECT * FROM reporting.trends WHERE year = 2024").set_index(
        "question_id"
    )
    kontakt = trends.loc["IFO_KONTAKT"]
    # pooled p = 135/200 = 0.675; se = sqrt(0.675 · 0.325 · (1/100 + 1/100)) = 0.0662382
    # z = (0.75 − 0.60) / 0.0662382 = 2.26455 > 1.95996
    assert kontakt["prev_pct_positive"] == pytest.approx(60.0)
    assert kontakt["change_pp"] == pytest.approx(15.0)
    assert kontakt["z_score"] == pytest.approx(2.26455, abs=1e-5)
    assert kontakt["z_critical"] == pytest.approx(1.959964, abs=1e-6)
    assert kontakt["significant"]
    # pooled p = 105/200 = 0.525; se = sqrt(0.525 · 0.475 · 0.02) = 0.0706222; z = 0.70799
    info = trends.loc["IFO_INFO"]
    assert info["change_pp"] == pytest.approx(5.0)
    assert info["z_score"] == pytest.approx(0.70799, abs=1e-5)
    assert flag(info["significant"]) is False
    # suppressed now (FORSTAELSE) or then (NOJD): no change, nothing tested (NULL, not FALSE)
    for question in ("IFO_FORSTAELSE", "IFO_NOJD"):
        assert pd.isna(trends.loc[question, "change_pp"])
        assert flag(trends.loc[question, "significant"]) is None
        assert (
            flag(trends.loc[question, "comparable"]) is True
        )  # the same kommun and enkät both years
    # no cell the year before: neither comparable nor testable
    assert pd.isna(trends.loc["IFO_PAVERKA", "prev_pct_positive"])
    assert flag(trends.loc["IFO_PAVERKA", "comparable"]) is None
    assert flag(trends.loc["IFO_PAVERKA", "significant"]) is None
    assert flag(trends.loc["IFO_KONTAKT", "comparable"]) is True

    # re-published at 1 %: the critical value is 2.57583 and 2.26455 no longer exceeds it
    strict = publish_load(engine, "ifo", 2024, 0.01)
    with engine.begin() as conn:
        conn.execute(tables.fct_results.update().values(load_id=strict))
    kontakt = read(
        engine,
        "SELECT * FROM reporting.trends WHERE year = 2024 AND question_id = 'IFO_KONTAKT'",
    ).iloc[0]
    assert kontakt["z_critical"] == pytest.approx(2.575829, abs=1e-6)
    assert flag(kontakt["significant"]) is False


def test_quality_area_index_needs_every_question_of_the_area(
    statistics_engine: Engine,
) -> None:
    engine = statistics_engine
    load_id = publish_load(engine, "ifo", 2024, 0.05)
    # delaktighet = IFO_SYNPUNKTER + IFO_PAVERKA; information = IFO_INFO (EKB asks all three)
    write_facts(
        engine,
        tables.fct_results,
        "ifo",
        2024,
        load_id=load_id,
        rows=[
            result("kommun", "EKB", "T", "IFO_SYNPUNKTER", 14, 20),  # 70 %
            result("kommun", "EKB", "T", "IFO_PAVERKA", 16, 20),  # 80 %
            result("kommun", "EKB", "T", "IFO_INFO", 9, 10),  # 90 %
            result("kommun", "EKB", "K", "IFO_SYNPUNKTER", 6, 10),  # PAVERKA: nobody answered
            result("kommun", "EKB", "M", "IFO_SYNPUNKTER", 8, 10),
            result("kommun", "EKB", "M", "IFO_PAVERKA", None, 2),  # suppressed
        ],
    )
    areas = read(engine, "SELECT * FROM reporting.quality_areas").set_index(
        ["gender", "quality_area"]
    )
    assert set(areas["verksamhet"]) == {"EKB"}
    delaktighet = areas.loc[("T", "delaktighet")]
    assert delaktighet["unweighted_mean_pct"] == pytest.approx(75.0)  # (70 + 80) / 2
    assert (delaktighet["n_questions"], delaktighet["n_published"]) == (2, 2)
    assert not delaktighet["suppressed"]
    assert not delaktighet["not_applicable"]
    assert areas.loc[("T", "information"), "unweighted_mean_pct"] == pytest.approx(90.0)
    for gender in ("K", "M"):
        row = areas.loc[(gender, "delaktighet")]
        assert pd.isna(row["unweighted_mean_pct"])
        assert (row["n_questions"], row["n_published"]) == (2, 1)
    # M's PAVERKA is hidden: suppressed; K's PAVERKA was not answered: nothing hidden
    assert areas.loc[("M", "delaktighet"), "suppressed"]
    assert not areas.loc[("K", "delaktighet"), "suppressed"]
    # an area none of whose questions was answered in the cell is listed, with no figure
    assert areas.loc[("T", "helhet"), "n_published"] == 0
    assert pd.isna(areas.loc[("T", "helhet"), "unweighted_mean_pct"])
    assert not areas.loc[("T", "helhet"), "suppressed"]


def test_quality_area_of_a_composite_spans_its_members_questions(
    statistics_engine: Engine, catalogue: Catalogue
) -> None:
    engine = statistics_engine
    load_id = publish_load(engine, "ifo", 2024, 0.05)
    write_facts(
        engine,
        tables.fct_results,
        "ifo",
        2024,
        load_id=load_id,
        rows=[result("riket", "ALL", "T", "IFO_KONTAKT", 30, 40)],
    )
    areas = read(engine, "SELECT * FROM reporting.quality_areas").set_index("quality_area")
    questions = catalogue.questions[catalogue.questions["survey"] == "ifo"]
    # every ifo question lies in one area; each area's count is its questions in the catalogue
    expected = questions.groupby("quality_area")["question_id"].nunique()
    assert areas["n_questions"].sort_index().to_dict() == expected.sort_index().to_dict()
    assert areas.loc["tillgänglighet", "unweighted_mean_pct"] == pytest.approx(75.0)  # 30 / 40


def test_kolada_comparison_flags_differences_beyond_rounding(
    statistics_engine: Engine, catalogue: Catalogue
) -> None:
    engine = statistics_engine
    write_published_figures(engine)
    store_kolada_values(engine, year=2024, values=recorded_kolada_values(), catalogue=catalogue)
    comparison = read(engine, "SELECT * FROM reporting.kolada_comparison").set_index(
        ["kpi", "municipality_id"]
    )
    expected = {
        # kpi, Kolada area: (level, area_code, ours, published, differs)
        ("U30447", "0880"): ("kommun", "0880", 100 * 49 / 65, 75.0, False),  # 75.38 vs 75
        # län and riket as Kolada computes them, the mean of the published kommun shares:
        # (75.3846 + 57) / 2 = 66.1923 (the pooled 66 % and 82 % are not compared)
        ("U30447", "0008"): ("lan", "08", (100 * 49 / 65 + 57) / 2, 66.0, False),
        ("U30447", "0000"): ("riket", "0000", (100 * 49 / 65 + 57) / 2, 80.0, True),
        # 181/200 = 90.5 % is published as 91: Kolada's 90 differs
        ("U30448", "0880"): ("kommun", "0880", 90.5, 90.0, True),
        ("U30900", "0880"): ("kommun", "0880", 62.5, None, True),  # Kolada: value null
        ("U30901", "0880"): ("kommun", "0880", 65.0, 65.0, False),
        ("U28602", "0880"): ("kommun", "0880", 20.0, 20.0, False),  # middle: code 2
        ("U28603", "0880"): ("kommun", "0880", 10.0, 12.0, True),  # negative: code 3
    }
    assert set(comparison.index) == set(expected)
    for key, (level, area_code, ours, published, differs) in expected.items():
        row = comparison.loc[key]
        assert (row["level"], row["area_code"]) == (level, area_code), key
        assert row["our_value"] == pytest.approx(ours), key
        if published is None:
            assert pd.isna(row["published_value"]), key
            assert pd.isna(row["difference"]), key
        else:
            assert row["difference"] == pytest.approx(ours - published), key
        assert bool(row["differs"]) is differs, key
    assert comparison.loc[("U30447", "0880"), "area_name"] == "Kalmar"


def write_published_figures(engine: Engine) -> None:
    """Our 2024 figures for the Kolada KPIs of ``recorded_kolada_values``."""
    ifo = publish_load(engine, "ifo", 2024, 0.05)
    write_facts(
        engine,
        tables.fct_results,
        "ifo",
        2024,
        load_id=ifo,
        rows=[
            result("kommun", "ALL", "T", "IFO_KONTAKT", 49, 65),
            result("kommun", "ALL", "T", "IFO_KONTAKT", 57, 100)
            | {"area_code": "0860", "kommun_kod": "0860"},
            result("kommun", "ALL", "T", "IFO_KONTAKT", None, 3)  # hidden: in no mean
            | {"area_code": "0861", "kommun_kod": "0861"},
            result("kommun", "ALL", "T", "IFO_INFO", 181, 200),
            result("lan", "ALL", "T", "IFO_KONTAKT", 66, 100),
            result("riket", "ALL", "T", "IFO_KONTAKT", 82, 100),
        ],
    )
    write_facts(
        engine,
        tables.fct_response_counts,
        "ifo",
        2024,
        load_id=ifo,
        rows=[
            cell("kommun", "ALL", "T")
            | {"n_respondents": 65, "n_distributed": 104, "response_rate": 62.5}
            | {"suppressed": False}
        ],
    )
    fh = publish_load(engine, "fh", 2024, 0.05)
    # FH_BESTAMMA in LSS_DV: 1 Ja (positive) 35, 2 Ibland (middle) 10, 3 Nej (negative) 5,
    # 9 Vet inte (excluded) 4; n_valid = 50 → middle 20 %, negative 10 %
    counts = {1: 35, 2: 10, 3: 5, 9: 4}
    write_facts(
        engine,
        tables.fct_answer_distribution,
        "fh",
        2024,
        load_id=fh,
        rows=[
            cell("kommun", "LSS_DV", "T")
            | {"question_id": "FH_BESTAMMA", "answer_code": code, "n": n}
            | {"pct": None if code == 9 else 100 * n / 50, "suppressed": False}
            for code, n in counts.items()
        ],
    )


def recorded_kolada_values() -> pd.DataFrame:
    """Kolada's values for the figures of ``write_published_figures`` (and one area we lack)."""
    rows = [
        ("U30447", "0880", 75.0),
        ("U30447", "0008", 66.0),
        ("U30447", "0000", 80.0),
        ("U30448", "0880", 90.0),
        ("U30447", "1480", 70.0),  # a kommun we have no figures for: not compared
        ("U30900", "0880", None),
        ("U30901", "0880", 65.0),
        ("U28602", "0880", 20.0),
        ("U28603", "0880", 12.0),
    ]
    frame = pd.DataFrame(rows, columns=["kpi", "municipality_id", "value"])
    return frame.assign(year=2024, gender="T", count=pd.array([1] * len(frame), "Int64")).assign(
        status=pd.Series([None] * len(frame), dtype="str")
    )
