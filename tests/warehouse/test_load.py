"""The loader: publishing swaps a (survey, year) atomically and the views label it in Swedish."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, Table, exc, text

from schemas.catalogue import SURVEYS, Catalogue
from tests.warehouse.sample import (
    AREAS,
    ENHET,
    KOMMUN,
    LAN,
    QUESTION,
    SURVEY,
    VERKSAMHET,
    VIEW_COLUMNS,
    Load,
    build_load,
)
from warehouse import tables
from warehouse.db import create_warehouse_engine, upgrade
from warehouse.load import (
    begin_load,
    bulk_insert,
    fail_load,
    load_history,
    publish,
    stage,
    sync_dimensions,
)

CODES = [1, 1, 2, 3, 1, 9]  # 5 valid answers (9 is excluded), 3 positive: 60 %
KON = ["K", "K", "K", "M", "M", "X"]
CELL_KEYS = ["level", "area_code", "verksamhet", "gender"]
FIGURES = {
    "results": ["n_valid", "n_positive", "pct_positive", "ci_low", "ci_high"],
    "answer_distribution": ["n", "pct"],
    "response_counts": ["n_respondents", "n_distributed", "response_rate"],
}
PARTITIONS = (  # the tables a publish replaces
    "raw.respondents",
    "raw.answers",
    "raw.quarantine",
    "core.fct_results",
    "core.fct_answer_distribution",
    "core.fct_response_counts",
)
VIEW_KEYS = {  # the grain of each view of figures
    "results": [*CELL_KEYS, "question_id"],
    "answer_distribution": [*CELL_KEYS, "question_id", "answer_code"],
    "response_counts": CELL_KEYS,
}


def _read(engine: Engine, query: str, **params: Any) -> pd.DataFrame:
    with engine.connect() as connection:
        return pd.read_sql(text(query), connection, params=params)


def _start(engine: Engine, year: int) -> int:
    return begin_load(
        engine,
        survey=SURVEY,
        year=year,
        source="file:///exports",
        flow_run_id="run-1",
        settings={"threshold": 5},
    )


def _stage_and_publish(engine: Engine, load_id: int, year: int, load: Load) -> None:
    stage(engine, load_id=load_id, survey=SURVEY, year=year, **load.frames())
    publish(engine, load_id=load_id, survey=SURVEY, year=year, files=load.files)


def _publish(engine: Engine, year: int, load: Load) -> int:
    load_id = _start(engine, year)
    _stage_and_publish(engine, load_id, year, load)
    return load_id


def _snapshot(engine: Engine, year: int | None = None) -> dict[str, pd.DataFrame]:
    """Every raw/core row and every view row (of one year, or all), in a stable order."""
    where = "" if year is None else f" WHERE year = {year}"
    names = [*PARTITIONS, *(f"reporting.{view}" for view in FIGURES)]
    snapshot = {name: _read(engine, f"SELECT * FROM {name}{where}") for name in names}
    return {
        name: rows.sort_values(list(rows.columns)).reset_index(drop=True)
        for name, rows in snapshot.items()
    }


def _assert_same(before: dict[str, pd.DataFrame], after: dict[str, pd.DataFrame]) -> None:
    assert before.keys() == after.keys()
    for name, rows in before.items():
        pd.testing.assert_frame_equal(after[name], rows, obj=name)


def test_views_show_the_published_figures_with_swedish_labels(
    engine: Engine, catalogue: Catalogue
) -> None:
    load = build_load(CODES, KON)
    _publish(engine, 2024, load)

    kommun = catalogue.kommuner.set_index("kommun_kod").loc[KOMMUN]
    question = catalogue.questions.set_index("question_id").loc[QUESTION]
    verksamheter = catalogue.verksamheter.set_index(["survey", "verksamhet"])
    area_names = {
        "enhet": f"{kommun['kommun_namn']} {ENHET}",
        "kommun": kommun["kommun_namn"],
        "lan": kommun["lan_namn"],
        "riket": "Riket",
    }
    frames = {
        "results": load.results,
        "answer_distribution": load.distribution,
        "response_counts": load.response_counts,
    }
    for view, frame in frames.items():
        shown = _read(engine, f"SELECT * FROM reporting.{view}")
        assert list(shown.columns) == VIEW_COLUMNS[view]
        assert len(shown) == len(frame)
        assert (shown["area_name"] == shown["level"].map(area_names)).all(), view
        assert set(shown["verksamhet_name"]) == {verksamheter.loc[(SURVEY, VERKSAMHET), "name_sv"]}
        joined = shown.merge(frame, on=VIEW_KEYS[view], suffixes=("", "_published"), validate="1:1")
        assert len(joined) == len(frame)
        for figure in [*FIGURES[view], "suppressed"]:
            pd.testing.assert_series_equal(
                joined[figure].astype(float),
                joined[f"{figure}_published"].astype(float),
                check_names=False,
            )
        if view == "response_counts":  # the rate's respondents, named for what they are
            pd.testing.assert_series_equal(
                joined["n_respondents_with_distributed"].astype(float),
                joined["n_covered"].astype(float),
                check_names=False,
            )
        else:
            assert set(shown["question_text"]) == {question["text_sv"]}
            assert set(shown["kolada_short"]) == {question["kolada_short"]}
            assert set(shown["quality_area"]) == {question["quality_area"]}

    labels = catalogue.scale(str(question["scale_id"])).set_index("code")
    query = "SELECT DISTINCT answer_code, answer_label, role FROM reporting.answer_distribution"
    options = _read(engine, query).set_index("answer_code")
    assert options["answer_label"].to_dict() == labels.loc[options.index, "label_sv"].to_dict()
    assert options["role"].to_dict() == labels.loc[options.index, "role"].to_dict()


def test_suppressed_cells_show_null_figures_never_nan(engine: Engine) -> None:
    _publish(engine, 2024, build_load(CODES, KON))
    suppressed_cells = 2 * len(AREAS)  # genders K and M in every area
    for view, figures in FIGURES.items():
        hidden = " AND ".join(f"{figure} IS NULL" for figure in figures)
        counts = _read(
            engine,
            f"SELECT count(*) FILTER (WHERE suppressed) AS suppressed, "
            f"count(*) FILTER (WHERE suppressed AND {hidden}) AS hidden, "
            f"count(*) FILTER (WHERE NOT suppressed AND {hidden}) AS wrongly_hidden "
            f"FROM reporting.{view}",
        ).iloc[0]
        per_cell = 3 if view == "answer_distribution" else 1  # one row per answer option
        assert counts.to_dict() == {
            "suppressed": suppressed_cells * per_cell,
            "hidden": suppressed_cells * per_cell,
            "wrongly_hidden": 0,
        }
    shares = {
        "core.fct_results": ["pct_positive", "ci_low", "ci_high"],
        "core.fct_answer_distribution": ["pct"],
        "core.fct_response_counts": ["response_rate"],
    }
    for table, columns in shares.items():
        nan = " OR ".join(f"isnan({column})" for column in columns)
        assert _read(engine, f"SELECT count(*) AS n FROM {table} WHERE {nan}")["n"][0] == 0
    nulls = _read(engine, "SELECT count(*) AS n FROM core.fct_results WHERE kommun_kod IS NULL")
    assert nulls["n"][0] == 2 * 3  # län and riket cells have no kommun, for T, K and M


def test_publish_records_the_load_and_its_files(engine: Engine) -> None:
    before = datetime.now(UTC)
    load = build_load(CODES, KON)
    load_id = _publish(engine, 2024, load)
    audit = _read(engine, "SELECT * FROM audit.loads WHERE load_id = :id", id=load_id).iloc[0]
    assert audit["status"] == "published"
    assert pd.isna(audit["error"])
    # kalmar.csv: 6 loaded + 1 quarantined = 7 read; trasig.csv refused with 0 rows
    assert audit[["rows_read", "rows_loaded", "rows_quarantined", "files_refused"]].tolist() == [
        7,
        6,
        1,
        1,
    ]
    assert json.loads(audit["settings"]) == {"threshold": 5}
    assert before <= audit["started_at"] <= audit["finished_at"] <= datetime.now(UTC)
    files = _read(engine, "SELECT * FROM audit.load_files WHERE load_id = :id", id=load_id)
    assert sorted(files["source_file"]) == sorted(load.files["source_file"])
    for table in PARTITIONS:
        loaded = _read(engine, f"SELECT DISTINCT survey, year, load_id FROM {table}")
        assert loaded.values.tolist() == [[SURVEY, 2024, load_id]], table


def test_second_publish_replaces_its_year_and_leaves_other_years(engine: Engine) -> None:
    _publish(engine, 2024, build_load(CODES, KON))
    _publish(engine, 2023, build_load(CODES[:5], KON[:5]))
    year_before = _snapshot(engine, 2023)

    newer = build_load([*CODES, 2, 2], [*KON, "K", "M"])
    newer_id = _publish(engine, 2024, newer)

    _assert_same(year_before, _snapshot(engine, 2023))
    expected_rows = {
        "raw.respondents": len(newer.respondents),
        "raw.answers": len(newer.answers),
        "raw.quarantine": len(newer.quarantine),
        "core.fct_results": len(newer.results),
        "core.fct_answer_distribution": len(newer.distribution),
        "core.fct_response_counts": len(newer.response_counts),
    }
    for table, rows in expected_rows.items():
        loaded = _read(engine, f"SELECT load_id FROM {table} WHERE year = 2024")
        assert len(loaded) == rows, table
        assert set(loaded["load_id"]) == {newer_id}, table
    query = "SELECT n_respondents FROM reporting.response_counts WHERE year = 2024"
    shown = _read(engine, query + " AND gender = 'T'")
    assert set(shown["n_respondents"]) == {len(newer.respondents)}


def _with_unknown_column(load: Load) -> Load:
    """Results carry a column the table lacks: the failure comes after raw rows were written."""
    return Load(**(load.frames() | {"results": load.results.assign(mean_score=1.0)}))


def _with_null_key(load: Load) -> Load:
    """The last table written gets a NULL in a NOT NULL column: a constraint violation."""
    broken = load.response_counts.astype({"gender": object})
    broken.loc[0, "gender"] = None
    return Load(**(load.frames() | {"response_counts": broken}))


@pytest.mark.parametrize(
    ("break_load", "error"),
    [(_with_unknown_column, ValueError), (_with_null_key, exc.IntegrityError)],
)
def test_a_publish_failing_half_way_leaves_the_published_figures(
    engine: Engine, break_load: Callable[[Load], Load], error: type[Exception]
) -> None:
    _publish(engine, 2024, build_load(CODES, KON))
    before = _snapshot(engine)

    failing = break_load(build_load([*CODES, 3], [*KON, "K"]))
    load_id = _start(engine, 2024)
    with pytest.raises(error) as raised:
        _stage_and_publish(engine, load_id, 2024, failing)

    _assert_same(before, _snapshot(engine))
    fail_load(engine, load_id=load_id, error=str(raised.value), files=failing.files)
    history = load_history(engine).query("load_id == @load_id")
    assert set(history["load_status"]) == {"failed"}
    assert set(history["load_error"]) == {str(raised.value)}
    assert sorted(history["source_file"]) == sorted(failing.files["source_file"])
    _assert_same(before, _snapshot(engine))


def test_only_a_running_load_of_the_same_survey_and_year_can_be_published(
    engine: Engine,
) -> None:
    load = build_load(CODES, KON)
    published_id = _publish(engine, 2024, load)
    before = _snapshot(engine)
    with pytest.raises(ValueError, match="not a running load"):
        _stage_and_publish(engine, published_id, 2024, load)
    other_year = _start(engine, 2023)
    with pytest.raises(ValueError, match="not a running load of fh 2024"):
        _stage_and_publish(engine, other_year, 2024, load)
    with pytest.raises(ValueError, match="not a running load"):
        fail_load(engine, load_id=published_id, error="too late", files=None)
    _assert_same(before, _snapshot(engine))


def test_publish_refuses_rows_the_file_report_does_not_account_for(engine: Engine) -> None:
    load = build_load(CODES, KON)
    load_id = _start(engine, 2024)
    short = Load(**(load.frames() | {"respondents": load.respondents.iloc[1:]}))
    with pytest.raises(ValueError, match="5 respondents to publish, files report 6"):
        _stage_and_publish(engine, load_id, 2024, short)
    no_quarantine = Load(**(load.frames() | {"quarantine": load.quarantine.iloc[:0]}))
    with pytest.raises(ValueError, match="0 quarantined rows to publish, files report 1"):
        _stage_and_publish(engine, load_id, 2024, no_quarantine)
    assert _read(engine, "SELECT count(*) AS n FROM raw.respondents")["n"][0] == 0


def test_load_history_lists_the_newest_loads_first(engine: Engine) -> None:
    published = _publish(engine, 2024, build_load(CODES, KON))
    failed = _start(engine, 2023)
    fail_load(engine, load_id=failed, error="the source cannot be reached", files=None)
    running = _start(engine, 2022)

    history = load_history(engine)
    assert list(history.columns) == VIEW_COLUMNS["load_history"]
    assert list(history["load_id"].drop_duplicates()) == [running, failed, published]
    assert history.groupby("load_id").size().to_dict() == {published: 2, failed: 1, running: 1}
    failed_row = history.query("load_id == @failed").iloc[0]
    assert failed_row["load_status"] == "failed"
    assert failed_row["load_error"] == "the source cannot be reached"
    assert pd.isna(failed_row["source_file"])
    assert pd.isna(history.query("load_id == @running").iloc[0]["finished_at"])
    files = history.query("load_id == @published").set_index("source_file")
    assert files["status"].to_dict() == {"kalmar.csv": "loaded", "trasig.csv": "refused"}
    assert files.loc["trasig.csv", "error"] == "trasig.csv: the file has no rows"
    assert list(load_history(engine, limit=2)["load_id"].drop_duplicates()) == [running, failed]


def test_begin_load_records_a_running_load(engine: Engine) -> None:
    load_id = begin_load(
        engine,
        survey="ifo",
        year=2024,
        source="https://exports.example/ifo",
        flow_run_id=None,
        settings={"threshold": 7, "kommuner": ["0880"]},
    )
    row = _read(engine, "SELECT * FROM audit.loads WHERE load_id = :id", id=load_id).iloc[0]
    assert row[["survey", "year", "source", "status"]].tolist() == [
        "ifo",
        2024,
        "https://exports.example/ifo",
        "running",
    ]
    assert pd.isna(row["flow_run_id"])
    assert pd.isna(row["finished_at"])
    assert json.loads(row["settings"]) == {"threshold": 7, "kommuner": ["0880"]}
    assert datetime.now(UTC) - row["started_at"] < timedelta(minutes=1)
    assert (
        begin_load(engine, survey="ifo", year=2024, source="x", flow_run_id=None, settings={})
        > load_id
    )


def test_sync_dimensions_replaces_them_with_the_catalogue(
    engine: Engine, catalogue: Catalogue
) -> None:
    sync_dimensions(engine, catalogue)  # a second time: replaced, not appended
    scale_sizes = catalogue.answer_scales["scale_id"].value_counts()
    expected = {
        "dim_survey": len(SURVEYS),
        "dim_kommun": len(catalogue.kommuner),
        "dim_lan": catalogue.kommuner["lan_kod"].nunique(),
        "dim_verksamhet": len(catalogue.verksamheter),
        "dim_question": len(catalogue.questions),
        "dim_answer_option": int(scale_sizes[catalogue.questions["scale_id"]].sum()),
    }
    for table, rows in expected.items():
        assert _read(engine, f"SELECT count(*) AS n FROM core.{table}")["n"][0] == rows, table
    open_ended = (catalogue.verksamheter["last_year"] == "").sum()
    counted = _read(engine, "SELECT count(*) AS n FROM core.dim_verksamhet WHERE last_year IS NULL")
    assert counted["n"][0] == open_ended
    lan = _read(engine, "SELECT lan_namn FROM core.dim_lan WHERE lan_kod = :lan", lan=LAN)
    assert lan["lan_namn"][0] == catalogue.kommuner.set_index("kommun_kod").loc[KOMMUN, "lan_namn"]


def test_sync_dimensions_restores_a_dimension_that_differs(
    backend_url: str, catalogue: Catalogue
) -> None:
    """An unchanged dimension is left as it is; one that differs from the catalogue in any
    row, a NULL year included, is replaced on either backend."""
    engine = create_warehouse_engine(backend_url)
    upgrade(engine)
    sync_dimensions(engine, catalogue)
    with engine.begin() as connection:
        connection.execute(text("UPDATE core.dim_kommun SET kommun_namn = 'x'"))
        connection.execute(text("UPDATE core.dim_verksamhet SET last_year = 1999"))
    sync_dimensions(engine, catalogue)
    kommuner = _read(engine, "SELECT kommun_kod, kommun_namn FROM core.dim_kommun")
    open_ended = _read(
        engine, "SELECT count(*) AS n FROM core.dim_verksamhet WHERE last_year IS NULL"
    )
    engine.dispose()
    names = catalogue.kommuner.set_index("kommun_kod")["kommun_namn"]
    assert kommuner.set_index("kommun_kod")["kommun_namn"].sort_index().equals(names.sort_index())
    assert open_ended["n"][0] == (catalogue.verksamheter["last_year"] == "").sum()


def round_trip(backend_url: str, table: Table, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` written into an empty ``table`` by ``bulk_insert``, and read back."""
    engine = create_warehouse_engine(backend_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {table.schema}")
        table.create(connection)
        bulk_insert(connection, table, frame)
        stored = pd.read_sql(text(f"SELECT * FROM {table.fullname}"), connection)
    engine.dispose()
    return stored


def test_bulk_insert_writes_null_for_missing_values(backend_url: str) -> None:
    """Both insert paths (DuckDB's frame scan, PostgreSQL's COPY) store NaN as SQL NULL."""
    load = build_load(CODES, KON)
    frame = load.response_counts.assign(survey=SURVEY, year=2024, load_id=1)
    stored = round_trip(backend_url, tables.fct_response_counts, frame)
    assert len(stored) == len(frame)
    missing = stored.query("suppressed == 1")
    assert len(missing) == 2 * len(AREAS)
    assert missing[["n_respondents", "n_distributed", "response_rate"]].isna().all().all()
    assert stored["kommun_kod"].isna().sum() == frame["kommun_kod"].isna().sum()


def test_bulk_insert_keeps_every_text_as_written(backend_url: str) -> None:
    """A refused row's cells are stored as the file wrote them, on both insert paths: empty
    text stays empty (not NULL), and quotes, delimiters, line breaks, backslashes and
    non-ASCII letters come back unchanged."""
    awkward = [
        "",
        " ",
        '"citat"',
        "a,b;c\td",
        "rad ett\nrad två\r\n",
        "C:\\mapp\\N",
        "\\N",
        "åäö Ü",
    ]
    frame = pd.DataFrame(
        {
            "survey": SURVEY,
            "year": 2024,
            "load_id": 1,
            "source_file": [f"fil {index}.csv" for index in range(len(awkward))],
            "row_number": range(2, len(awkward) + 2),
            "kommun_kod": awkward,
            "svar_id": awkward[::-1],
            "reasons": "svar_id: saknas",
            "original": awkward,
        }
    )
    stored = round_trip(backend_url, tables.quarantine, frame).sort_values("row_number")
    for column in ("kommun_kod", "svar_id", "original"):
        assert stored[column].tolist() == frame[column].tolist()
