"""Exact re-runs: a corrected kommun replaces its own rows and the figures it feeds, nothing else.

The reference for a re-run's figures is a fresh annual load of the same corrected input into an
empty warehouse: the re-run must publish exactly what a full reload would.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

import tasks.parse
from flows.annual import annual_run
from flows.cli import app
from flows.rerun import rerun
from schemas.catalogue import default_catalogue
from tasks.fetch import RawFile
from tests.flows.conftest import BRUKARDATA
from warehouse.db import create_warehouse_engine

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_server")]

YEAR = 2024
FIGURE_VIEWS = ("results", "answer_distribution", "response_counts")


def reporting_views(engine: Engine) -> list[str]:
    """Every view of the reporting schema, as the BI role sees them."""
    with engine.connect() as conn:
        names = conn.execute(
            text(
                "SELECT table_name FROM information_schema.views "
                "WHERE table_schema = 'reporting' ORDER BY table_name"
            )
        ).scalars()
        return list(names)


def view_rows(engine: Engine, view: str) -> pd.DataFrame:
    """A view's rows in a stable order."""
    with engine.connect() as conn:
        rows = pd.read_sql(text(f"SELECT * FROM reporting.{view}"), conn)
    return rows.sort_values(list(rows.columns)).reset_index(drop=True)


def view_checksums(warehouse: str) -> dict[str, str]:
    """sha256 of every reporting view's sorted rows, shares to 9 decimals: a mean over cells
    is summed in whatever order the database's threads meet them, which moves its last bits."""
    engine = create_warehouse_engine(warehouse)
    return {
        view: hashlib.sha256(
            _shares_rounded(view_rows(engine, view)).to_csv(index=False).encode()
        ).hexdigest()
        for view in reporting_views(engine)
    }


def _shares_rounded(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with every float column to 9 decimals (times and texts as they are)."""
    floats = rows.select_dtypes("float").columns
    return rows.assign(**{column: rows[column].round(9) for column in floats})


def drop_last_row(path: Path) -> None:
    """Correct a file the simplest way: its last questionnaire is withdrawn."""
    lines = path.read_bytes().rstrip(b"\r\n").splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]))


def single_kommun_file(source: Path, survey: str) -> tuple[Path, str]:
    """A plain CSV answers file of one kommun, and that kommun."""
    manifest = json.loads((source / "manifest.json").read_text("utf-8"))
    entry = next(
        f
        for f in manifest["files"]
        if (f["survey"], f["year"], f["kind"], f["format"]) == (survey, YEAR, "answers", "csv")
        and len(f["kommuner"]) == 1
    )
    return source / entry["path"], entry["kommuner"][0]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two years of ifo exports, both published by the annual run: (source, warehouse file)."""
    from sample.generate import generate_exports

    root = tmp_path_factory.mktemp("rerun")
    generate_exports(root / "source", [YEAR - 1, YEAR], n_kommuner=6, seed=11)
    database = root / "w.duckdb"
    for year in (YEAR - 1, YEAR):
        state = annual_run(
            source=str(root / "source"),
            year=year,
            surveys=["ifo"],
            warehouse=f"duckdb:///{database}",
            return_state=True,
        )
        assert state.is_completed(), state.message
    return root / "source", database


@pytest.fixture
def copy(published: tuple[Path, Path], tmp_path: Path) -> tuple[Path, str]:
    """A private copy of the published source and warehouse: (source, warehouse URL)."""
    source, database = published
    shutil.copytree(source, tmp_path / "source")
    shutil.copy(database, tmp_path / "w.duckdb")
    return tmp_path / "source", f"duckdb:///{tmp_path / 'w.duckdb'}"


@pytest.fixture
def parsed_files(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the export files parsed from now on, in order."""
    parsed: list[str] = []
    parse_export = tasks.parse.parse_export

    def recording(raw: RawFile, *args: Any) -> tasks.parse.ParsedExport:
        parsed.append(raw.source_file)
        return parse_export(raw, *args)

    monkeypatch.setattr(tasks.parse, "parse_export", recording)
    return parsed


def _read(warehouse: str, sql: str) -> pd.DataFrame:
    with create_warehouse_engine(warehouse).connect() as conn:
        return pd.read_sql(text(sql), conn)


def completed_rerun(source: Path, warehouse: str, **options: Any) -> None:
    """Re-run IFO of ``YEAR`` from ``source`` into ``warehouse``; it must end Completed."""
    state = rerun(
        survey="ifo",
        year=YEAR,
        source=str(source),
        warehouse=warehouse,
        return_state=True,
        **options,
    )
    assert state.is_completed(), state.message


def test_unchanged_input_changes_no_reporting_view(copy: tuple[Path, str]) -> None:
    source, warehouse = copy
    before = view_checksums(warehouse)
    loads_before = _read(warehouse, "SELECT count(*) AS n FROM audit.loads")["n"].iloc[0]
    completed_rerun(source, warehouse, reason="check that nothing moved", requested_by="tester")
    assert view_checksums(warehouse) == before
    assert _read(warehouse, "SELECT count(*) AS n FROM audit.loads")["n"].iloc[0] == loads_before
    request = _read(warehouse, "SELECT * FROM audit.rerun_requests").iloc[0]
    assert (request["outcome"], request["requested_by"]) == ("unchanged", "tester")
    assert request["reason"] == "check that nothing moved"
    assert pd.isna(request["load_id"])
    assert pd.isna(request["replaced_kommuner"])


def test_a_forced_rerun_of_unchanged_input_keeps_every_figure(copy: tuple[Path, str]) -> None:
    source, warehouse = copy
    before = view_checksums(warehouse)
    completed_rerun(source, warehouse, force=True, reason="reload after a reference fix")
    after = view_checksums(warehouse)
    # the forced load is logged in load_history; every figure stays the same
    assert {v: after[v] for v in before if v != "load_history"} == {
        v: before[v] for v in before if v != "load_history"
    }
    request = _read(warehouse, "SELECT outcome, rows_replaced FROM audit.rerun_requests")
    assert request.to_dict("records") == [{"outcome": "replaced", "rows_replaced": 0}]


def test_a_corrected_kommun_is_replaced_exactly_as_a_full_reload_would(
    copy: tuple[Path, str], tmp_path: Path
) -> None:
    source, warehouse = copy
    corrected, kommun = single_kommun_file(source, "ifo")
    drop_last_row(corrected)
    before = {view: view_rows(create_warehouse_engine(warehouse), view) for view in FIGURE_VIEWS}
    result = CliRunner().invoke(
        app,
        [
            "rerun",
            "--survey",
            "ifo",
            "--year",
            str(YEAR),
            "--reason",
            "kommun sent a corrected file",
            "--requested-by",
            "tester",
            "--source",
            str(source),
            "--warehouse",
            warehouse,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "published" in result.output
    request = _read(warehouse, "SELECT * FROM audit.rerun_requests").iloc[0]
    assert request["outcome"] == "replaced"
    assert request["changed_files"] == str(corrected.relative_to(source / "ifo" / str(YEAR)))
    assert request["replaced_kommuner"] == kommun

    fresh = f"duckdb:///{tmp_path / 'fresh.duckdb'}"
    state = annual_run(
        source=str(source), year=YEAR, surveys=["ifo"], warehouse=fresh, return_state=True
    )
    assert state.is_completed(), state.message
    for view in FIGURE_VIEWS:
        rerun_rows = view_rows(create_warehouse_engine(warehouse), view)
        rerun_rows = rerun_rows[rerun_rows["year"] == YEAR].reset_index(drop=True)
        pd.testing.assert_frame_equal(rerun_rows, view_rows(create_warehouse_engine(fresh), view))
        # the other year is untouched
        old_year = before[view][before[view]["year"] == YEAR - 1].reset_index(drop=True)
        after = view_rows(create_warehouse_engine(warehouse), view)
        pd.testing.assert_frame_equal(
            after[after["year"] == YEAR - 1].reset_index(drop=True), old_year
        )
    raw = _read(
        warehouse,
        f"SELECT kommun_kod, count(*) AS n FROM raw.respondents WHERE year = {YEAR} "
        "GROUP BY kommun_kod",
    ).set_index("kommun_kod")["n"]
    fresh_raw = _read(
        fresh, "SELECT kommun_kod, count(*) AS n FROM raw.respondents GROUP BY kommun_kod"
    ).set_index("kommun_kod")["n"]
    assert raw.sort_index().equals(fresh_raw.sort_index())


def test_a_refused_file_fails_the_rerun_in_one_line_and_keeps_the_figures(
    copy: tuple[Path, str],
) -> None:
    source, warehouse = copy
    (source / "ifo" / str(YEAR) / "broken.xlsx").write_bytes(b"this is not a workbook")
    before = {view: view_checksums(warehouse)[view] for view in FIGURE_VIEWS}
    result = CliRunner().invoke(
        app,
        ["rerun", "--survey", "ifo", "--year", str(YEAR), "--reason", "r", "--source",
         str(source), "--warehouse", warehouse],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "broken.xlsx" in result.output
    assert {view: view_checksums(warehouse)[view] for view in FIGURE_VIEWS} == before
    assert _read(warehouse, "SELECT outcome FROM audit.rerun_requests")["outcome"].tolist() == [
        "failed"
    ]


def file_report(warehouse: str, load_id: int) -> pd.DataFrame:
    """A load's file report without what differs between two loads of the same files."""
    report = _read(warehouse, f"SELECT * FROM audit.load_files WHERE load_id = {load_id}")
    return (
        report.drop(columns=["load_id", "loaded_at", "fetched_at"])
        .sort_values("source_file")
        .reset_index(drop=True)
    )


def newest_load(warehouse: str) -> int:
    return int(_read(warehouse, "SELECT max(load_id) AS id FROM audit.loads")["id"].iloc[0])


def assert_as_a_fresh_reload(source: Path, warehouse: str, tmp_path: Path) -> str:
    """A fresh annual load of ``source`` into an empty warehouse, whose URL is returned, after
    checking that the re-run in ``warehouse`` published the same file report and figures."""
    fresh = f"duckdb:///{tmp_path / 'fresh.duckdb'}"
    state = annual_run(
        source=str(source), year=YEAR, surveys=["ifo"], warehouse=fresh, return_state=True
    )
    assert state.is_completed(), state.message
    pd.testing.assert_frame_equal(
        file_report(warehouse, newest_load(warehouse)), file_report(fresh, newest_load(fresh))
    )
    for view in FIGURE_VIEWS:
        rerun_rows = view_rows(create_warehouse_engine(warehouse), view)
        pd.testing.assert_frame_equal(
            rerun_rows[rerun_rows["year"] == YEAR].reset_index(drop=True),
            view_rows(create_warehouse_engine(fresh), view),
        )
    return fresh


def test_a_rerun_reads_only_the_files_of_the_kommuner_it_replaces(
    copy: tuple[Path, str], tmp_path: Path, parsed_files: list[str]
) -> None:
    """One kommun's questionnaires in two files: correcting one file (adding a svar_id the other
    file already has) re-reads both, and nothing else, and publishes what a full reload would:
    the same figures, quarantine and file report."""
    source, warehouse = copy
    whole, kommun = single_kommun_file(source, "ifo")
    header, *rows = whole.read_bytes().splitlines(keepends=True)
    half = len(rows) // 2
    first, second = whole, whole.with_name(whole.stem + "_del2" + whole.suffix)
    first.write_bytes(header + b"".join(rows[:half]))
    second.write_bytes(header + b"".join(rows[half:]))
    state = annual_run(
        source=str(source), year=YEAR, surveys=["ifo"], warehouse=warehouse, return_state=True
    )
    assert state.is_completed(), state.message
    second.write_bytes(header + b"".join(rows[half:]) + rows[0])
    parsed_files.clear()  # from here on: what the re-run reads

    completed_rerun(source, warehouse, reason="second half corrected")
    # the changed file first, to learn its kommuner; then with the other file of its kommun
    assert parsed_files == [second.name, first.name, second.name]
    request = _read(warehouse, "SELECT changed_files, replaced_kommuner FROM audit.rerun_requests")
    assert request.to_dict("records") == [
        {"changed_files": second.name, "replaced_kommuner": kommun}
    ]

    fresh = assert_as_a_fresh_reload(source, warehouse, tmp_path)
    quarantine = f"SELECT * EXCLUDE (load_id) FROM raw.quarantine WHERE year = {YEAR}"
    duplicates = _read(warehouse, quarantine)
    assert kommun in set(duplicates["kommun_kod"])
    pd.testing.assert_frame_equal(
        duplicates.sort_values(["source_file", "row_number"], ignore_index=True),
        _read(fresh, quarantine).sort_values(["source_file", "row_number"], ignore_index=True),
    )


def test_a_forced_rerun_of_one_kommun_reads_only_its_file(
    copy: tuple[Path, str], parsed_files: list[str]
) -> None:
    source, warehouse = copy
    whole, kommun = single_kommun_file(source, "ifo")
    completed_rerun(
        source,
        warehouse,
        kommuner=[kommun],
        force=True,
        reason="reference fix for one kommun",
    )
    assert parsed_files == [whole.name]
    request = _read(warehouse, "SELECT replaced_kommuner, rows_replaced FROM audit.rerun_requests")
    assert request.to_dict("records") == [{"replaced_kommuner": kommun, "rows_replaced": 0}]


def test_a_withdrawn_file_removes_its_kommun_as_a_full_reload_would(
    copy: tuple[Path, str], tmp_path: Path, parsed_files: list[str]
) -> None:
    source, warehouse = copy
    withdrawn, kommun = single_kommun_file(source, "ifo")
    withdrawn.unlink()
    completed_rerun(source, warehouse, reason="file sent by mistake")
    assert parsed_files == []  # nothing left to read: the kommun's rows are simply gone
    request = _read(warehouse, "SELECT changed_files, replaced_kommuner FROM audit.rerun_requests")
    assert request.to_dict("records") == [
        {"changed_files": withdrawn.name, "replaced_kommuner": kommun}
    ]
    kept = _read(warehouse, f"SELECT DISTINCT kommun_kod FROM raw.respondents WHERE year = {YEAR}")
    assert kommun not in set(kept["kommun_kod"])

    assert_as_a_fresh_reload(source, warehouse, tmp_path)


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        (
            ["--survey", "ifo", "--kommun", "0381' OR 1=1 --", "--force"],
            '--kommun: unknown kommun "0381\' OR 1=1 --"',
        ),
        (["--survey", "ifo; drop"], "--survey: must be one of ifo, fh"),
        (["--survey", "ifo", "--year", "99999"], "'--year': Input should be less than"),
    ],
)
def test_rerun_arguments_are_checked_before_anything_is_written(
    copy: tuple[Path, str], arguments: list[str], problem: str
) -> None:
    source, warehouse = copy
    audit = "SELECT (SELECT count(*) FROM audit.loads) AS loads, " \
        "(SELECT count(*) FROM audit.rerun_requests) AS requests"  # fmt: skip
    before = _read(warehouse, audit)
    figures = view_checksums(warehouse)
    result = subprocess.run(
        [BRUKARDATA, "rerun", "--year", str(YEAR), "--reason", "r", "--source", str(source),
         "--warehouse", warehouse, *arguments],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: ")
    assert problem in result.stderr
    assert result.stdout == ""
    assert _read(warehouse, audit).equals(before)
    assert view_checksums(warehouse) == figures


def test_a_rerun_flow_refuses_an_unknown_kommun_before_anything_is_written(
    copy: tuple[Path, str],
) -> None:
    """Started from a deployment, the flow checks its parameters as the command does."""
    source, warehouse = copy
    before = _read(warehouse, "SELECT count(*) AS n FROM audit.rerun_requests")
    state = rerun(
        survey="ifo",
        year=YEAR,
        kommuner=["0381' OR 1=1 --"],
        force=True,
        reason="r",
        source=str(source),
        warehouse=warehouse,
        return_state=True,
    )
    assert state.is_failed()
    assert state.message == (
        'kommun "0381\' OR 1=1 --" is not a kommun code of the catalogue (e.g. 0880)'
    )
    assert _read(warehouse, "SELECT count(*) AS n FROM audit.rerun_requests").equals(before)


def test_a_kommun_without_rows_that_year_is_refused_by_name(copy: tuple[Path, str]) -> None:
    source, warehouse = copy
    absent = sorted(default_catalogue().kommun_codes - set(view_kommuner(warehouse)))[0]
    result = CliRunner().invoke(
        app,
        ["rerun", "--survey", "ifo", "--year", str(YEAR), "--reason", "r", "--kommun", absent,
         "--source", str(source), "--warehouse", warehouse],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert f"kommun {absent} has no rows in the published ifo {YEAR}" in result.output
    assert "input unchanged" not in result.output


def view_kommuner(warehouse: str) -> list[str]:
    query = f"SELECT DISTINCT kommun_kod FROM raw.respondents WHERE year = {YEAR}"
    return list(_read(warehouse, query)["kommun_kod"])
