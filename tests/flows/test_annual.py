"""End to end: generated exports → the annual Prefect flow → DuckDB reporting views.

The published figures are checked against an independent computation made here, straight from
the generated files and the reference answer scales, without any of the pipeline's code.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import pandas as pd
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from flows.annual import NO_SOURCE, RunSummary, annual_run
from flows.cli import app
from sample.generate import generate_exports
from schemas.defaults import DEFAULT_REFERENCE_DIR
from tests.conftest import new_database
from tests.flows.test_rerun import reporting_views, view_rows
from warehouse.db import create_warehouse_engine

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_server")]

YEARS = (2023, 2024)


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("exports")
    generate_exports(out, YEARS, n_kommuner=8, seed=7)
    return out


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory, exports: Path) -> Path:
    """A warehouse with both years loaded by the real flow."""
    database = tmp_path_factory.mktemp("warehouse") / "w.duckdb"
    for year in YEARS:
        state = annual_run(
            year=year, source=str(exports), warehouse=f"duckdb:///{database}", return_state=True
        )
        assert state.is_completed(), state.message
    return database


def query(database: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(database), read_only=True) as connection:
        frame: pd.DataFrame = connection.sql(sql).df()
        return frame


def independent_answers(exports: Path, survey: str, year: int) -> pd.DataFrame:
    """Valid answers (kommun, verksamhet, kon, question, code), read with pandas/openpyxl only."""
    manifest = json.loads((exports / "manifest.json").read_text("utf-8"))
    scales = pd.read_csv(DEFAULT_REFERENCE_DIR / "answer_scales.csv", dtype=str)
    questions = pd.read_csv(DEFAULT_REFERENCE_DIR / "questions.csv", dtype=str)
    label_to_code = {
        (q.question_id.lower(), s.label_sv.lower()): int(s.code)
        for q in questions.itertuples()
        for s in scales[scales["scale_id"] == q.scale_id].itertuples()
    }
    frames = []
    for entry in manifest["files"]:
        if (entry["survey"], entry["year"], entry["kind"]) != (survey, year, "answers"):
            continue
        path = exports / entry["path"]
        if entry["format"] == "xlsx":
            rows = list(openpyxl.load_workbook(path, read_only=True).worksheets[0].values)
            cells = [
                ["" if v is None else str(int(v)) if isinstance(v, float) else str(v) for v in row]
                for row in rows[1:]
            ]
            table = pd.DataFrame(cells, columns=[str(c) for c in rows[0]])
        else:
            table = pd.read_csv(
                path,
                sep=entry["delimiter"],
                encoding=entry["encoding"],
                dtype=str,
                keep_default_na=False,
                compression="infer",
            )
        table.columns = [c.lower() for c in table.columns]
        table["row"] = range(2, len(table) + 2)
        table = table[~table["row"].isin([d["row"] for d in entry["defect_rows"]])]
        table["kommun_kod"] = table["kommun_kod"].str.zfill(4)
        table["kon"] = table["kon"].replace({"Kvinna": "K", "Man": "M", "": "X"})
        long = table.melt(
            id_vars=["kommun_kod", "verksamhet", "kon"],
            value_vars=[c for c in table.columns if c.startswith(("ifo_", "fh_"))],
            var_name="question",
            value_name="answer",
        )
        long = long[long["answer"] != ""]
        long["code"] = [
            int(a) if a.isdigit() else label_to_code[(q, a.lower())]
            for q, a in zip(long["question"], long["answer"], strict=True)
        ]
        frames.append(long)
    answers = pd.concat(frames, ignore_index=True)
    answers["question_id"] = answers["question"].str.upper()
    roles = scales.merge(questions[["question_id", "scale_id"]], on="scale_id")
    roles["code"] = roles["code"].astype(int)
    return answers.merge(roles[["question_id", "code", "role"]], on=["question_id", "code"])


@pytest.mark.parametrize("survey", ["ifo", "fh"])
@pytest.mark.parametrize("year", YEARS)
def test_riket_figures_equal_an_independent_computation(
    exports: Path, warehouse: Path, survey: str, year: int
) -> None:
    answers = independent_answers(exports, survey, year)
    valid = answers[answers["role"] != "excluded"]
    expected = valid.groupby("question_id").agg(
        n_valid=("role", "size"), n_positive=("role", lambda r: int((r == "positive").sum()))
    )
    published = (
        query(
            warehouse,
            f"select question_id, n_valid, n_positive, pct_positive from reporting.results "
            f"where survey = '{survey}' and year = {year} and level = 'riket' "
            "and verksamhet = 'ALL' and gender = 'T'",
        )
        .set_index("question_id")
        .sort_index()
    )
    assert (
        published[["n_valid", "n_positive"]].astype(int).to_dict()
        == expected.sort_index().to_dict()
    )
    assert published["pct_positive"].to_numpy() == pytest.approx(
        (100 * expected["n_positive"] / expected["n_valid"]).sort_index().to_numpy()
    )


def test_every_kommun_and_gender_cell_matches(exports: Path, warehouse: Path) -> None:
    answers = independent_answers(exports, "ifo", 2024)
    valid = answers[answers["role"] != "excluded"]
    expected = (
        valid[valid["kon"] == "K"]
        .groupby(["kommun_kod", "verksamhet", "question_id"])["role"]
        .agg(n_valid="size", n_positive=lambda r: int((r == "positive").sum()))
    )
    published = query(
        warehouse,
        "select area_code as kommun_kod, verksamhet, question_id, n_valid, n_positive, suppressed "
        "from reporting.results where survey = 'ifo' and year = 2024 and level = 'kommun' "
        "and gender = 'K' "
        "and verksamhet in (select verksamhet from core.dim_verksamhet where kind = 'enkat')",
    ).set_index(["kommun_kod", "verksamhet", "question_id"])
    shown = published[~published["suppressed"]]
    assert len(shown) > 0
    assert (
        shown[["n_valid", "n_positive"]]
        .astype(int)
        .sort_index()
        .equals(expected.loc[shown.index].sort_index().astype(int))
    )
    # every suppressed cell is suppressed for a reason: small itself, or its K/M/sibling pair
    assert published.loc[published["suppressed"], "n_valid"].isna().all()


def test_load_history_accounts_for_every_file(exports: Path, warehouse: Path) -> None:
    manifest = json.loads((exports / "manifest.json").read_text("utf-8"))
    history = query(
        warehouse, "select * from reporting.load_history where load_status = 'published'"
    )
    assert len(history) == len([f for f in manifest["files"] if f["path"].count("/") == 2])
    assert (history["rows_read"] == history["rows_loaded"] + history["rows_quarantined"]).all()
    defects = sum(len(f.get("defect_rows", [])) for f in manifest["files"])
    assert history["rows_quarantined"].sum() == defects


def test_a_rerun_replaces_and_never_appends(exports: Path, warehouse: Path, tmp_path: Path) -> None:
    database = tmp_path / "copy.duckdb"
    shutil.copy(warehouse, database)
    before = query(database, "select count(*) as n, sum(n_valid) as s from reporting.results")
    state = annual_run(
        year=2024,
        source=str(exports),
        surveys=["fh"],
        warehouse=f"duckdb:///{database}",
        return_state=True,
    )
    assert state.is_completed()
    after = query(database, "select count(*) as n, sum(n_valid) as s from reporting.results")
    assert before.equals(after)


def test_refused_files_fail_the_run_and_the_rest_is_published(
    exports: Path, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    shutil.copytree(exports / "ifo" / "2024", source / "ifo" / "2024")
    (source / "ifo" / "2024" / "broken.xlsx").write_bytes(b"this is not a workbook")
    database = tmp_path / "w.duckdb"
    result = CliRunner().invoke(
        app,
        [
            "run",
            "--year",
            "2024",
            "--survey",
            "ifo",
            "--source",
            str(source),
            "--warehouse",
            f"duckdb:///{database}",
        ],
    )
    assert result.exit_code == 1, result.output
    assert "broken.xlsx: not an .xlsx workbook (not a zip archive)" in result.output
    assert "published, 1 file refused" in result.output  # not "failed": the rest is published
    assert "Traceback" not in result.output
    published = query(database, "select count(*) as n from reporting.results where survey = 'ifo'")
    assert published["n"].iloc[0] > 0


def test_a_missing_source_is_one_line_and_keeps_what_was_published(
    warehouse: Path, tmp_path: Path
) -> None:
    database = tmp_path / "copy.duckdb"
    shutil.copy(warehouse, database)
    before = query(database, "select * from reporting.results order by all")
    state = annual_run(
        year=2024,
        source=str(tmp_path / "nowhere"),
        warehouse=f"duckdb:///{database}",
        return_state=True,
    )
    assert state.is_failed()
    summary: Any = state.result(raise_on_failure=False)
    assert isinstance(summary, RunSummary)
    assert summary.problems == [
        f"ifo 2024: {tmp_path / 'nowhere'}/ifo/2024: no such folder",
        f"fh 2024: {tmp_path / 'nowhere'}/fh/2024: no such folder",
    ]
    assert query(database, "select * from reporting.results order by all").equals(before)


def test_a_deployment_run_without_a_source_fails_at_its_start_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BRUKARDATA_SOURCE", raising=False)  # a worker given no source
    state = annual_run(warehouse=f"duckdb:///{tmp_path / 'w.duckdb'}", return_state=True)
    assert state.is_failed()
    assert state.message == NO_SOURCE
    assert "brukardata server --source" in NO_SOURCE
    assert not (tmp_path / "w.duckdb").exists()  # nothing done before the source was known


@pytest.fixture(scope="module")
def postgres_warehouse(exports: Path, postgres_server: str) -> str:
    """Both years loaded into a PostgreSQL database by the real flow, through COPY."""
    url = new_database(postgres_server)
    for year in YEARS:
        state = annual_run(year=year, source=str(exports), warehouse=url, return_state=True)
        assert state.is_completed(), state.message
    return url


def test_postgresql_publishes_exactly_what_duckdb_does(
    warehouse: Path, postgres_warehouse: str
) -> None:
    """The same input through COPY into PostgreSQL gives every reporting view of DuckDB."""
    duckdb_engine = create_warehouse_engine(f"duckdb:///{warehouse}")
    postgres_engine = create_warehouse_engine(postgres_warehouse)
    views = reporting_views(duckdb_engine)
    assert views == reporting_views(postgres_engine)
    for view in sorted(set(views) - {"load_history"}):
        pd.testing.assert_frame_equal(
            view_rows(postgres_engine, view),
            view_rows(duckdb_engine, view),
            check_dtype=False,
            rtol=1e-9,
            obj=f"reporting.{view}",
        )


def rows_thrown_away(plan: dict[str, Any]) -> int:
    """Rows a PostgreSQL plan's joins compared and threw away, summed over its nodes."""
    own = int(plan.get("Rows Removed by Join Filter", 0))
    return own + sum(rows_thrown_away(child) for child in plan.get("Plans", []))


def test_a_bi_tool_reading_the_results_whole_meets_each_cell_once(
    postgres_warehouse: str,
) -> None:
    """Power BI's import and a Superset dataset read ``reporting.results`` whole: PostgreSQL
    joins each cell to its own level's kommun mean by every key: a join on both levels' means
    at once made it compare each cell with every cell of its survey-year (26 million
    comparisons, 8 s, for these 8 kommuner and 2 years)."""
    engine = create_warehouse_engine(postgres_warehouse)
    with engine.connect() as conn:
        explained = conn.execute(
            text("EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM reporting.results")
        ).scalar_one()
    engine.dispose()
    plan = explained[0]["Plan"]
    assert plan["Actual Rows"] > 10_000
    assert rows_thrown_away(plan) <= plan["Actual Rows"]


@pytest.mark.parametrize("where", ["utdelade.csv", "sub/utdelade.csv"])
def test_the_summary_counts_answers_and_hand_out_counts_apart(
    exports: Path, tmp_path: Path, where: str
) -> None:
    """The rows read and loaded are questionnaires, as in audit.loads and raw.respondents; the
    hand-out counts are reported on their own, wherever in the folder the file lies."""
    folder = tmp_path / "source" / "ifo" / "2024"
    shutil.copytree(exports / "ifo" / "2024", folder)
    (folder / where).parent.mkdir(parents=True, exist_ok=True)
    (folder / "utdelade.csv").rename(folder / where)
    handed_out = len((folder / where).read_text("utf-8").splitlines()) - 1
    database = tmp_path / "w.duckdb"
    state = annual_run(
        year=2024,
        source=str(tmp_path / "source"),
        surveys=["ifo"],
        warehouse=f"duckdb:///{database}",
        return_state=True,
    )
    assert state.is_completed(), state.message
    (outcome,) = state.result().outcomes
    row = outcome.summary_row()
    (load,) = query(database, "select * from audit.loads").to_dict(orient="records")
    respondents = query(database, "select count(*) as n from raw.respondents")["n"].iloc[0]
    files = query(database, "select source_file, kind from audit.load_files")
    assert (row["rows read"], row["loaded"]) == (str(load["rows_read"]), str(respondents))
    assert load["rows_loaded"] == respondents
    assert row["hand-out counts"] == str(handed_out)
    assert files.loc[files["source_file"] == where, "kind"].tolist() == ["distributed"]
