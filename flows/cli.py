"""The ``brukardata`` command line: thin wrappers around the flows, with readable output.

Exit status 0 means every file loaded; bad data gives one line per problem and status 1,
never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from flows.server import server, use_running_server

# Before any module imports Prefect: Prefect reads its API URL once, at import.
use_running_server()

from flows.database import db_upgrade  # noqa: E402
from flows.kolada import kolada_command  # noqa: E402
from flows.report import report_command  # noqa: E402
from flows.rerun import rerun_command  # noqa: E402
from flows.settings import DEFAULT_WAREHOUSE, Settings  # noqa: E402
from flows.validation import validate  # noqa: E402

if TYPE_CHECKING:
    from flows.annual import RunSummary

app = typer.Typer(
    name="brukardata",
    help="National user surveys of social services (IFO, funktionshinder) into a warehouse.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
# Problems are one line each, never wrapped, and never read as markup (file names may hold "[").
errors = Console(stderr=True, soft_wrap=True, markup=False, highlight=False)

Year = Annotated[int, typer.Option("--year", help="Survey year, e.g. 2024.", min=2016, max=2100)]
Warehouse = Annotated[
    str,
    typer.Option(envvar="BRUKARDATA_WAREHOUSE", help="SQLAlchemy URL of the warehouse."),
]
Survey = Annotated[
    str | None, typer.Option("--survey", help="ifo or fh (default: both).", case_sensitive=False)
]


def _surveys(survey: str | None) -> list[str] | None:
    from schemas.catalogue import SURVEYS

    if survey is None:
        return None
    if survey.lower() not in SURVEYS:
        raise typer.BadParameter(f"must be one of {', '.join(SURVEYS)}", param_hint="--survey")
    return [survey.lower()]


def _run_annual(year: int, source: str, surveys: list[str] | None, warehouse: str) -> int:
    """Run the annual flow and print its summary; the exit status to use."""
    from flows.annual import RunSummary, annual_run

    state = annual_run(
        year=year, source=source, surveys=surveys, warehouse=warehouse, return_state=True
    )
    summary = state.result(raise_on_failure=False)
    if not isinstance(summary, RunSummary):  # the flow itself crashed: Prefect has logged why
        errors.print(f"run failed: {state.message}")
        return 1
    _print_summary(summary)
    return 0 if summary.ok else 1


def _print_summary(summary: RunSummary) -> None:
    table = Table(title="brukardata run", show_lines=False)
    rows = [o.summary_row() for o in summary.outcomes]
    for column in rows[0] if rows else []:
        table.add_column(column, justify="left" if column in ("survey", "status") else "right")
    for row in rows:
        table.add_row(*row.values())
    console.print(table)
    for o in summary.outcomes:
        for line in o.headline:
            console.print(f"  {line}")
    for line in summary.problems:
        errors.print(f"✗ {line}")
    console.print(f"Warehouse: {summary.warehouse}")


@app.command()
def run(
    year: Year,
    survey: Survey = None,
    source: Annotated[
        str | None,
        typer.Option(
            envvar="BRUKARDATA_SOURCE", help="Folder or fsspec URL holding {survey}/{year}/."
        ),
    ] = None,
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
) -> None:
    """The annual flow for one year: fetch, validate, aggregate and publish."""
    if source is None:
        raise typer.BadParameter("give --source or set BRUKARDATA_SOURCE", param_hint="--source")
    raise typer.Exit(_run_annual(year, source, _surveys(survey), warehouse))


@app.command()
def history(
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
    limit: Annotated[int, typer.Option(help="How many loads to show.", min=1)] = 20,
) -> None:
    """Recent loads, one line per file, newest first."""
    from warehouse.db import create_warehouse_engine, upgrade
    from warehouse.load import load_history

    engine = create_warehouse_engine(warehouse)
    upgrade(engine)
    loads = load_history(engine, limit=limit)
    table = Table(title=f"Recent loads in {warehouse}")
    columns = [
        "load_id",
        "survey",
        "year",
        "load_status",
        "source_file",
        "status",
        "rows_read",
        "rows_loaded",
        "rows_quarantined",
        "finished_at",
        "error",
    ]
    for column in columns:
        table.add_column(column)
    for row in loads[columns].itertuples(index=False):
        table.add_row(*["" if pd.isna(value) else str(value) for value in row])
    console.print(table)


@app.command()
def generate(  # noqa: PLR0917 (Typer maps options to parameters)
    out: Annotated[Path, typer.Option(help="Folder to write {survey}/{year}/ exports into.")],
    years: Annotated[list[int], typer.Option(help="Survey years, e.g. --years 2023 2024.")],
    more_years: Annotated[list[int] | None, typer.Argument(hidden=True)] = None,
    kommuner: Annotated[int, typer.Option(help="How many municipalities.", min=1, max=290)] = 20,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 0,
    layout: Annotated[
        str, typer.Option(help="Codebook whose layout to write (see schemas/codebooks/).")
    ] = "canonical",
) -> None:
    """Write realistic sample exports of both surveys in one export layout."""
    from tasks.generate import generate_exports

    generated = generate_exports(
        out, [*years, *(more_years or [])], n_kommuner=kommuner, seed=seed, layout=layout
    )
    console.print(f"Wrote {len(generated.files)} files under {generated.out}")
    for (survey, year), rows in sorted(generated.respondents.items()):
        defects = generated.defects.get((survey, year), 0)
        console.print(f"  {survey} {year}: {rows} questionnaires, {defects} deliberately bad rows")


@app.command()
def demo(
    folder: Annotated[Path, typer.Option("--out", help="Where the demo writes its files.")] = Path(
        "demo"
    ),
    kommuner: Annotated[int, typer.Option(help="How many municipalities.", min=2, max=290)] = 20,
) -> None:
    """Generate two years of sample exports and run the whole pipeline into a local DuckDB."""
    from tasks.generate import generate_exports

    years = [2023, 2024]
    exports = folder / "exports"
    database = folder / "brukardata.duckdb"
    warehouse = f"duckdb:///{database}"
    generated = generate_exports(exports, years, n_kommuner=kommuner, seed=2024)
    console.print(f"Sample exports: {len(generated.files)} files in {exports}")
    status = 0
    for year in years:
        console.rule(f"Annual run {year}")
        status = max(status, _run_annual(year, str(exports), None, warehouse))
    settings = Settings(warehouse=warehouse)
    console.rule("Where to look")
    console.print(
        f"Warehouse: {database} (DuckDB). Reporting views: reporting.results, "
        "reporting.answer_distribution, reporting.response_counts, reporting.quality_areas, "
        "reporting.trends, reporting.kolada_comparison, reporting.load_history; a press "
        "release's figures: reporting.rankings, reporting.verksamhet_means, "
        "reporting.all_answers, reporting.gender_differences.\n"
        "Query them with any DuckDB client, e.g. SELECT * FROM reporting.results "
        "WHERE level = 'riket' AND verksamhet = 'ALL' AND gender = 'T'.\n"
        f"HTML report of {years[-1]}: {settings.reports_dir()}; audit reports (Data Docs): "
        f"{settings.data_docs_dir()}\n"
        f"Load history: brukardata history --warehouse {warehouse}"
    )
    raise typer.Exit(status)


app.command()(server)
app.command("rerun")(rerun_command)
app.command("validate")(validate)
app.command("kolada")(kolada_command)
app.command("report")(report_command)

db_app = typer.Typer(help="The warehouse's schema.", no_args_is_help=True)
db_app.command("upgrade")(db_upgrade)
app.add_typer(db_app, name="db")
