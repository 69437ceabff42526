"""``brukardata validate``: the verdict of a load on some files, with nothing written."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from flows.cli import app
from tests.flows.conftest import BRUKARDATA

FIXTURES = Path(__file__).parents[1] / "fixtures" / "exports"
IFO = FIXTURES / "ifo" / "2024"
EXPECTED = yaml.safe_load((FIXTURES / "expected.yaml").read_text(encoding="utf-8"))
FILE_COLUMNS = (
    "file",
    "rows read",
    "would load",
    "would quarantine",
    "kommun codes restored",
    "refused: why",
)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["validate", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.output


@pytest.fixture
def in_empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BRUKARDATA_WAREHOUSE", f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    return tmp_path


def test_problems_are_reported_per_file_with_example_rows_and_nothing_is_written(
    in_empty_folder: Path,
) -> None:
    status, output = invoke(
        str(IFO / "bad_rows.csv"),
        str(IFO / "too_many_fields.csv"),
        "--survey",
        "ifo",
        "--year",
        "2024",
    )
    assert status == 1  # a file would be refused
    assert "too_many_fields.csv" in output
    assert EXPECTED["ifo/2024/too_many_fields.csv"]["error"] in output
    assert "duplicate svar_id within kommun" in output
    assert "bad_rows.csv:4" in output
    assert "bad_rows.csv:5" in output
    assert list(in_empty_folder.iterdir()) == []  # no warehouse, no landing copy


def test_json_counts_every_row_as_the_fixtures_expect(in_empty_folder: Path) -> None:
    status, output = invoke(
        str(IFO / "bad_rows.csv"),
        str(IFO / "good_utf8.csv"),
        "--survey",
        "IFO",
        "--year",
        "2024",
        "--json",
    )
    report = json.loads(output)
    assert status == 0
    assert report["ok"] is True
    by_file = {Path(file["file"]).name: file for file in report["files"]}
    for name in ("bad_rows.csv", "good_utf8.csv"):
        expected = EXPECTED[f"ifo/2024/{name}"]
        quarantined = len(expected["quarantined"])
        assert by_file[name]["rows_read"] == expected["rows_read"]
        assert by_file[name]["would_quarantine"] == quarantined
        assert by_file[name]["would_load"] == expected["rows_read"] - quarantined
    # the reasons, counted from expected.yaml: rule → rows breaking it
    counted: dict[str, list[int]] = {}
    for row, reasons in EXPECTED["ifo/2024/bad_rows.csv"]["quarantined"].items():
        for reason in reasons:
            rule = reason.split(": ", 1)[1].split(" ('")[0]
            counted.setdefault(rule, []).append(row)
    reported = {
        reason["rule"]: [e["row"] for e in reason["examples"]] for reason in report["reasons"]
    }
    assert reported == counted
    assert [r["rows"] for r in report["reasons"]] == sorted(
        (r["rows"] for r in report["reasons"]), reverse=True
    )


def test_a_folder_is_read_whole(in_empty_folder: Path) -> None:
    status, output = invoke(
        str(FIXTURES / "fh" / "2024"), "--survey", "fh", "--year", "2024", "--json"
    )
    report = json.loads(output)
    names = sorted(Path(file["file"]).name for file in report["files"])
    assert names == sorted(path.name for path in (FIXTURES / "fh" / "2024").iterdir())
    assert status == 1
    refused = [file for file in report["files"] if file["refused"]]
    assert [Path(file["file"]).name for file in refused] == ["missing_asked_column.csv"]


def test_the_quarantine_csv_defuses_formulas(in_empty_folder: Path) -> None:
    target = in_empty_folder / "karantan.csv"
    status, _ = invoke(
        str(IFO / "bad_rows.csv"),
        "--survey",
        "ifo",
        "--year",
        "2024",
        "--quarantine-csv",
        str(target),
    )
    assert status == 0
    assert target.read_bytes().startswith("\ufeffsource_file;row_number;".encode())  # Excel (sv)
    with target.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    assert len(rows) == len(EXPECTED["ifo/2024/bad_rows.csv"]["quarantined"])
    formula_row = next(row for row in rows if row["row_number"] == "12")
    assert formula_row["IFO_KONTAKT"] == "'=1+1"  # written as "=1+1" in the export


def test_an_unreadable_path_is_one_line_and_status_2(in_empty_folder: Path) -> None:
    status, output = invoke(
        str(in_empty_folder / "missing.csv"), "--survey", "ifo", "--year", "2024"
    )
    assert status == 2
    assert "no such file or folder" in output
    assert "Traceback" not in output


def test_files_too_large_to_hold_get_the_same_verdict(
    in_empty_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Streamed and read in chunks, the fixture folder gets the verdict it gets held whole."""

    def verdict() -> dict[str, Any]:
        status, output = invoke(str(IFO), "--survey", "ifo", "--year", "2024", "--json")
        assert status == 1
        report: dict[str, Any] = json.loads(output)
        report["files"] = sorted(report["files"], key=lambda file: file["file"])
        return report

    held = verdict()
    monkeypatch.setenv("BRUKARDATA_STREAM_ABOVE_MB", "0")
    monkeypatch.setattr("tasks.parse.CHUNK_ROWS", 3)
    assert verdict() == held
    assert list(in_empty_folder.iterdir()) == []


@pytest.mark.parametrize("stream_above_mb", ["256", "0"])
def test_a_first_row_longer_than_the_header_refuses_the_file(
    in_empty_folder: Path, monkeypatch: pytest.MonkeyPatch, stream_above_mb: str
) -> None:
    """Read whole or streamed, the extra field is never taken as an index shifting the columns."""
    monkeypatch.setenv("BRUKARDATA_STREAM_ABOVE_MB", stream_above_mb)
    header = (IFO / "good_utf8.csv").read_text(encoding="utf-8").splitlines()[0]
    export = in_empty_folder / "long_first_row.csv"
    export.write_text(
        f"{header}\n0883;EKB;a1;K;1;1;1;1;1;1;1;EXTRA\n0642;BOU_VH;s2;K;1;1;1;1;1;1;1\n",
        encoding="utf-8",
    )
    status, output = invoke(str(export), "--survey", "ifo", "--year", "2024", "--json")
    report = json.loads(output)
    assert status == 1
    assert report["ok"] is False
    assert report["files"][0]["error"] == (
        "malformed CSV: row 2 has 12 field(s), the header 11 (1 long row(s) in all)"
    )


def test_text_from_files_is_shown_as_written_never_as_markup(in_empty_folder: Path) -> None:
    header = (IFO / "good_utf8.csv").read_text(encoding="utf-8").splitlines()[0]
    folder = in_empty_folder / "[bold]exports"
    folder.mkdir()
    quarantined = folder / "rows.csv"
    quarantined.write_text(f"{header}\n0880;EKB;s1;[red]Q[/red];1;1;1;1;1;1;1\n", "utf-8")
    refused = folder / "header.csv"
    refused.write_text(header.replace("kon", "[link=https://example.org]kon[/link]") + "\n")
    status, output = invoke(str(folder), "--survey", "ifo", "--year", "2024")
    assert status == 1
    assert "'[red]Q[/red]'" in output
    assert "'[link=https://example.org]kon[/link]'" in output
    assert "[bold]exports/rows.csv:2" in output
    status, output = invoke(str(folder / "[red]missing.csv"), "--survey", "ifo", "--year", "2024")
    assert status == 2
    assert "[red]missing.csv: no such file or folder" in output


def file_rows(output: str) -> list[dict[str, str]]:
    """The rows of ``validate``'s file table: drawn as a table (a column's name may take more
    than one line), else as one block of ``column value`` lines per file."""
    lines = output.splitlines()
    header = [line.strip("┃").split("┃") for line in lines if line.startswith("┃")]
    if header:
        names = [" ".join(" ".join(part).split()) for part in zip(*header, strict=True)]
        return [
            dict(zip(names, (cell.strip() for cell in line.strip("│").split("│")), strict=True))
            for line in lines
            if line.startswith("│")
        ]
    rows: list[dict[str, str]] = []
    for line in lines:
        if re.fullmatch(r"\[\d+\]", line):
            rows.append({})
        for column in FILE_COLUMNS:
            if rows and line.startswith(f"  {column} "):
                rows[-1][column] = line.removeprefix(f"  {column} ").strip()
    return rows


def test_restored_kommun_codes_are_a_column_of_the_table_in_80_columns(tmp_path: Path) -> None:
    for name in ("good_cp1252.csv", "good_utf8.csv"):  # 0114 written as 114, and none
        shutil.copy(IFO / name, tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRUKARDATA_")}
    env |= {"COLUMNS": "80", "PREFECT_HOME": str(tmp_path / ".prefect")}
    done = subprocess.run(
        [BRUKARDATA, "validate", "good_cp1252.csv", "good_utf8.csv", "--survey", "ifo",
         "--year", "2024"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "┃ file " in done.stdout  # a table, its columns' names wrapped to fit
    rows = file_rows(done.stdout)
    assert [list(row) for row in rows] == [list(FILE_COLUMNS)] * 2, done.stdout
    restored = {row["file"]: row["kommun codes restored"] for row in rows}
    assert restored == {"good_cp1252.csv": "1", "good_utf8.csv": "0"}
    assert max(map(len, done.stdout.splitlines())) <= 80
    assert "114 -> 0114" in done.stdout  # what the column means, said once


def test_restored_kommun_codes_stay_in_json_as_they_were(in_empty_folder: Path) -> None:
    status, output = invoke(
        str(IFO / "good_cp1252.csv"), "--survey", "ifo", "--year", "2024", "--json"
    )
    assert status == 0
    [file] = json.loads(output)["files"]
    assert file["kommun_kod_padded"] == 1
