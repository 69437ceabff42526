"""What the command line says about a file or an argument names the real problem."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app

EXPORTS = Path(__file__).parents[1] / "fixtures" / "exports"
GOOD_IFO = EXPORTS / "ifo" / "2024" / "good_utf8.csv"


def validate(path: Path, survey: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["validate", str(path), "--survey", survey, "--year", "2024", "--json"]
    )
    return result.exit_code, result.output


@pytest.mark.parametrize(("delimiter", "named"), [("|", "'|'"), ("\t", "tabs")])
def test_a_file_separated_by_another_delimiter_says_so(
    delimiter: str, named: str, tmp_path: Path
) -> None:
    export = tmp_path / "export.csv"
    export.write_text(GOOD_IFO.read_text("utf-8").replace(";", delimiter), "utf-8")
    status, output = validate(export, "ifo")
    assert status == 1
    assert f"the columns are separated by {named}: an export must use ';' or ','" in output


def test_an_export_of_the_other_survey_says_which() -> None:
    status, output = validate(EXPORTS / "fh" / "2024" / "not_asked.csv", "ifo")
    assert status == 1
    assert "it is the header of a fh export" in output


def test_restored_kommun_codes_are_shown_in_the_table() -> None:
    result = CliRunner().invoke(
        app,
        ["validate", str(EXPORTS / "ifo" / "2024" / "good_cp1252.csv"), "--survey", "ifo",
         "--year", "2024"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "  kommun codes restored  1\n" in result.output


def test_a_rerun_of_an_unknown_kommun_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["rerun", "--survey", "ifo", "--year", "2024", "--reason", "r", "--kommun", "9999",
         "--source", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "unknown kommun '9999'" in result.output
