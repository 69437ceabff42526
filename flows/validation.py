"""``brukardata validate``: what a load would make of some files, without loading anything.

The files go through the same parse and validation steps as a run, so the verdict is the one a
run would give; nothing is written to the warehouse or the landing area. The report says per
file how many rows would load, be quarantined or be refused with the whole file, and the most
common reasons with example rows, so the supplier can be told exactly what to fix.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from flows.output import print_records
from flows.problems import DATA_REFUSED, CommandError
from flows.settings import Settings
from tasks.fetch import SourceError, fetch_paths
from tasks.parse import parse_survey_year
from tasks.safe_csv import write_csv
from tasks.validate import ValidatedSurveyYear, validate_survey_year

EXAMPLES_PER_REASON = 5
TOP_REASONS = 10


def dry_run(
    paths: Sequence[str], survey: str, year: int, settings: Settings
) -> ValidatedSurveyYear:
    """Parse and validate ``paths`` (files or folders, local or fsspec URLs) as one survey-year.

    The valid rows are counted, not kept: memory holds a batch of rows, whatever the files' size.
    """
    catalogue = settings.catalogue()
    files = fetch_paths(paths, stream_above=settings.stream_above)
    parsed = parse_survey_year(files, survey, year, catalogue)
    return validate_survey_year(parsed, survey, year, catalogue, keep_rows=False)


def validation_report(
    validated: ValidatedSurveyYear, survey: str, year: int, *, top: int = TOP_REASONS
) -> dict[str, Any]:
    """The verdict as plain data (what ``--json`` prints): files, then reasons by frequency."""
    files = [
        {
            "file": row["source_file"],
            "kind": row["kind"],
            "sha256": row["sha256"],
            "rows_read": int(row["rows_read"]),
            "would_load": int(row["rows_loaded"]),
            "would_quarantine": int(row["rows_quarantined"]),
            "kommun_kod_padded": int(row["kommun_kod_padded"]),
            "refused": row["status"] == "refused",
            "error": row["error"] if row["status"] == "refused" else None,
        }
        for row in validated.files.to_dict(orient="records")
    ]
    problems = validated.problems
    reasons: list[dict[str, Any]] = []
    for (column, rule), rows in problems.groupby(["column", "rule"], sort=False):
        shown = rows.head(EXAMPLES_PER_REASON)
        reasons.append(
            {
                "column": column,
                "rule": rule,
                "rows": len(rows),
                "examples": [
                    {"file": file, "row": int(row), "value": value}
                    for file, row, value in zip(
                        shown["source_file"], shown["row_number"], shown["value"], strict=True
                    )
                ],
            }
        )
    reasons.sort(key=lambda reason: (-reason["rows"], reason["column"], reason["rule"]))
    return {
        "survey": survey,
        "year": year,
        "ok": not any(file["refused"] for file in files),
        "files": files,
        "reasons": reasons[:top],
        "reasons_not_shown": max(len(reasons) - top, 0),
    }


def print_report(report: dict[str, Any], console: Console) -> None:
    """The verdict as tables: one row per file, then the most common reasons with examples.

    File names and errors are the files' text, printed as written, never read as markup."""
    print_records(  # a table, or one block per file where it does not fit: names stay whole
        console,
        f"brukardata validate: {report['survey']} {report['year']}",
        [
            {
                "file": file["file"],
                "rows read": str(file["rows_read"]),
                "would load": str(file["would_load"]),
                "would quarantine": str(file["would_quarantine"]),
                "kommun codes restored": str(file["kommun_kod_padded"]),
                "refused: why": file["error"] if file["refused"] else "",
            }
            for file in report["files"]
        ],
        left=("file", "refused: why"),
        styles={"refused: why": "red"},
        wrap_headers=True,
    )
    if any(file["kommun_kod_padded"] for file in report["files"]):
        console.print(
            "kommun codes restored: codes that lost their leading zero, restored to four digits "
            "(e.g. 114 -> 0114)",
            markup=False,
            highlight=False,
        )
    if not report["reasons"]:
        return
    reasons = Table(title="Why rows would be quarantined (most common first)")
    for column in ("rows", "column", "rule", "examples (file:row value)"):
        reasons.add_column(  # folded, never cut: a row number stays whole
            column, justify="right" if column == "rows" else "left", overflow="fold"
        )
    for reason in report["reasons"]:
        examples = ", ".join(
            f"{e['file']}:{e['row']}" + (f" {e['value']!r}" if e["value"] else "")
            for e in reason["examples"]
        )
        reasons.add_row(
            str(reason["rows"]), escape(reason["column"]), escape(reason["rule"]), escape(examples)
        )
    console.print(reasons)
    if report["reasons_not_shown"]:
        console.print(f"… and {report['reasons_not_shown']} more reason(s): see --json")


def check_files(
    paths: Sequence[str],
    survey: str,
    year: int,
    *,
    json_output: bool,
    quarantine_csv: Path | None,
    settings: Settings,
) -> int:
    """``brukardata validate``: print the verdict on ``paths``; the exit status.

    1 when a file would be refused as a whole; a path that cannot be read is a CommandError (2).
    """
    try:
        validated = dry_run(paths, survey, year, settings)
    except (SourceError, OSError) as err:
        raise CommandError(f"cannot read: {err}") from err
    report = validation_report(validated, survey, year)
    if json_output:
        typer.echo(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        print_report(report, Console())
    if quarantine_csv is not None:
        write_csv(_quarantine_rows(validated), quarantine_csv)
    return 0 if report["ok"] else DATA_REFUSED


def _quarantine_rows(validated: ValidatedSurveyYear) -> pd.DataFrame:
    """Quarantined rows with their original cells spread into columns, for a spreadsheet."""
    quarantine = validated.quarantine
    cells = pd.json_normalize([json.loads(original) for original in quarantine["original"]])
    return pd.concat(
        [quarantine[["source_file", "row_number", "reasons"]], cells.astype(str)], axis=1
    )
