"""What the command line says about a file or an argument names the real problem."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from tests.flows.conftest import BRUKARDATA

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


@pytest.mark.parametrize(
    "command",
    [
        ["run", "--year", "2024", "--source", str(EXPORTS)],
        ["validate", str(GOOD_IFO), "--survey", "ifo", "--year", "2024"],
        ["history"],
        ["db", "upgrade"],
    ],
    ids=["run", "validate", "history", "db upgrade"],
)
def test_a_setting_that_does_not_parse_is_one_line_naming_it(
    command: list[str], cli_env: dict[str, str], tmp_path: Path
) -> None:
    """Every command reads its settings once, when it starts, and says which one is wrong."""
    env = {**cli_env, "BRUKARDATA_SUPPRESSION_THRESHOLD": "five"}
    done = subprocess.run(
        [BRUKARDATA, *command], env=env, cwd=tmp_path, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        "error: setting BRUKARDATA_SUPPRESSION_THRESHOLD: Input should be a valid integer, "
        "unable to parse string as an integer"
    ]
    assert not (tmp_path / "brukardata.duckdb").exists()


def test_the_warehouse_setting_stands_where_no_flag_is_given(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    warehouse = f"duckdb:///{tmp_path / 'from-setting.duckdb'}"
    env = {**cli_env, "BRUKARDATA_WAREHOUSE": warehouse}
    done = subprocess.run(
        [BRUKARDATA, "db", "upgrade"], env=env, cwd=tmp_path, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{warehouse}: at revision head"
    assert (tmp_path / "from-setting.duckdb").is_file()
