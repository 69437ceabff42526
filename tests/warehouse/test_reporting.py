"""The reporting views as a BI user meets them: every column explained in the database, the
labels a dashboard needs without the dimensions behind the views, and the README's table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, text

from tests.warehouse.test_statistics_views import publish_load, publish_results, read, result
from warehouse import tables
from warehouse.db import upgrade
from warehouse.reporting import View, ViewDriftError, _create, catalogue, readme_section, sync_views

README = Path(__file__).parents[2] / "README.md"

COLUMN_COMMENTS = {
    "postgresql": """
        SELECT c.relname AS view_name, a.attname AS column_name,
            col_description(c.oid, a.attnum) AS comment
        FROM pg_class AS c
            JOIN pg_namespace AS n ON n.oid = c.relnamespace
            JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0
        WHERE n.nspname = 'reporting' AND c.relkind = 'v'""",
    "duckdb": """
        SELECT table_name AS view_name, column_name, comment
        FROM duckdb_columns() WHERE schema_name = 'reporting'""",
}


def test_every_reporting_column_says_what_it_means(statistics_engine: Engine) -> None:
    """What Superset and Metabase show beside a column: its comment, on both backends."""
    comments = read(statistics_engine, COLUMN_COMMENTS[statistics_engine.dialect.name])
    found = {(row.view_name, row.column_name): row.comment for row in comments.itertuples()}
    described = {
        (view.name, column): meaning
        for view in catalogue()
        for column, meaning in view.columns.items()
    }
    assert found == described
    assert all(meaning.strip() for meaning in described.values())


def test_a_bi_user_gets_names_labels_and_order_from_the_views(statistics_engine: Engine) -> None:
    """A dashboard shows the län's name, the gender in words, and questions in the
    questionnaire's order without reading core (closed to the BI role)."""
    questions = ["IFO_NOJD", "IFO_KONTAKT", "IFO_INFO"]  # not in the questionnaire's order
    publish_results(
        statistics_engine,
        "ifo",
        2024,
        [
            result(level, "EKB", gender, question, 60, 100)
            for level in ("kommun", "lan", "riket")
            for gender in ("T", "K", "M")
            for question in questions
        ],
    )
    results = read(
        statistics_engine,
        "SELECT level, gender, gender_label, lan_name, question_id FROM reporting.results "
        "ORDER BY level, gender, question_order",
    )
    names = results.groupby("level")["lan_name"].first()
    assert names["kommun"] == names["lan"] == "Kalmar län"
    assert pd.isna(names["riket"])
    labels = dict(zip(results["gender"], results["gender_label"], strict=False))
    assert labels == {"T": "Totalt", "K": "Kvinnor", "M": "Män"}
    kommun_total = results[(results["level"] == "kommun") & (results["gender"] == "T")]
    assert list(kommun_total["question_id"]) == ["IFO_KONTAKT", "IFO_INFO", "IFO_NOJD"]


def test_a_trend_comes_with_the_interval_of_its_change(statistics_engine: Engine) -> None:
    """Newcombe's published example (Statistics in Medicine 1998, method 10): 56/70 against
    48/80 is a difference of 0.2000 with the 95 % interval 0.0524 to 0.3339."""
    for year, counts in ((2023, (48, 80)), (2024, (56, 70))):
        publish_results(
            statistics_engine, "ifo", year, [result("kommun", "EKB", "T", "IFO_NOJD", *counts)]
        )
    trend = read(statistics_engine, "SELECT * FROM reporting.trends WHERE year = 2024").iloc[0]
    assert trend["change_pp"] == pytest.approx(20.0)
    assert trend["change_ci_low_pp"] == pytest.approx(5.24, abs=0.005)
    assert trend["change_ci_high_pp"] == pytest.approx(33.39, abs=0.005)
    assert trend["ci_low"] < trend["pct_positive"] < trend["ci_high"]
    assert trend["prev_ci_low"] < trend["prev_pct_positive"] < trend["prev_ci_high"]


def test_a_hidden_cell_has_no_interval_of_change(statistics_engine: Engine) -> None:
    publish_results(
        statistics_engine, "ifo", 2023, [result("kommun", "EKB", "T", "IFO_NOJD", None, 3)]
    )
    publish_results(
        statistics_engine, "ifo", 2024, [result("kommun", "EKB", "T", "IFO_NOJD", 60, 100)]
    )
    trend = read(statistics_engine, "SELECT * FROM reporting.trends WHERE year = 2024").iloc[0]
    assert trend[["prev_ci_low", "change_ci_low_pp", "change_ci_high_pp"]].isna().all()


def test_upgrade_keeps_views_that_are_in_step_and_remakes_stale_ones(engine: Engine) -> None:
    publish_load(engine, "ifo", 2024, 0.05)
    with engine.begin() as connection:
        assert not sync_views(connection)  # the fixture's upgrade made them
        connection.execute(text("DROP VIEW reporting.rankings"))
        connection.execute(
            tables.reporting_views.update()
            .where(tables.reporting_views.c.view_name == "trends")
            .values(fingerprint="made from older files")
        )
    upgrade(engine)
    with engine.connect() as connection:
        assert not sync_views(connection)
        views = read(engine, "SELECT view_name FROM duckdb_views() WHERE schema_name = 'reporting'")
    assert set(views["view_name"]) == {view.name for view in catalogue()}


def test_a_view_whose_columns_differ_from_its_description_is_refused(engine: Engine) -> None:
    results = catalogue()[0]
    renamed = dict(results.columns) | {"gender_label": "relabelled"}
    described = View(
        name="drifted",
        grain=results.grain,
        says=results.says,
        columns={("gender_text" if c == "gender_label" else c): m for c, m in renamed.items()},
        select=results.select,
    )
    with engine.begin() as connection, pytest.raises(ViewDriftError, match="gender_text"):
        _create(connection, described)


def test_the_readme_describes_the_views_as_views_yaml_does() -> None:
    """``python -m warehouse.reporting --write README.md`` after changing a view."""
    assert readme_section() in README.read_text("utf-8")
