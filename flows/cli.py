"""The ``brukardata`` command line: thin wrappers around the flows, with readable output.

Exit status (README, "Exit status"): 0 all good; 1 data refused or a run that did not
publish; 2 usage or environment. Every error is one line on stderr, never a traceback.

Only Typer, Rich and the standard library are imported here at start: Prefect, pandas and
Great Expectations take seconds to import, so each command imports what it needs when it
runs, and ``--help`` answers at once.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from flows.defaults import DEFAULT_WAREHOUSE
from flows.display import ProgressDisplay
from flows.output import print_records
from flows.prefect_home import prefect_environment, prefect_home
from flows.problems import (
    DATA_REFUSED,
    USAGE_OR_ENVIRONMENT,
    CommandError,
    checked_warehouse_url,
    existing_warehouse,
    first_line,
    source_folder,
    writable_file,
    writable_warehouse,
)
from flows.progress import PROGRESS
from flows.server import server, use_running_server

if TYPE_CHECKING:
    from flows.annual import RunSummary
    from flows.settings import Settings

app = typer.Typer(
    name="brukardata",
    help="National user surveys of social services (IFO, funktionshinder) into a warehouse.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
# Problems are one line each, never wrapped, and never read as markup (file names may hold "[").
errors = Console(stderr=True, soft_wrap=True, markup=False, highlight=False)
# The flows' progress: drawn live on a terminal, plain lines on ``errors`` elsewhere.
progress = ProgressDisplay(plain=errors, screen=Console(stderr=True))

SURVEYS = ("ifo", "fh")
THREAD_STOP_TIMEOUT_S = 5.0
Year = Annotated[int, typer.Option("--year", help="Survey year, e.g. 2024.", min=2016, max=2100)]
Warehouse = Annotated[
    str | None,
    typer.Option(
        help="SQLAlchemy URL of the warehouse "
        f"(default: BRUKARDATA_WAREHOUSE, else {DEFAULT_WAREHOUSE})."
    ),
]
Survey = Annotated[
    str | None, typer.Option("--survey", help="ifo or fh (default: both).", case_sensitive=False)
]
OneSurvey = Annotated[str, typer.Option("--survey", help="ifo or fh.", case_sensitive=False)]
Source = Annotated[
    str | None,
    typer.Option(
        help="Folder or fsspec URL holding {survey}/{year}/ (default: BRUKARDATA_SOURCE)."
    ),
]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print the result as JSON, for machines.")]


def main() -> None:
    """The ``brukardata`` entry point: every error as one line and its exit status."""
    atexit.register(_release_at_exit)  # before Prefect's handlers, so it runs after them
    prefect_environment()
    _prefect_logs_to_file()
    PROGRESS.setLevel(logging.INFO)
    PROGRESS.addHandler(progress)
    use_running_server()  # before Prefect is imported: it reads its API URL once, at import
    try:
        status = app(standalone_mode=False)
    except typer.TyperException as err:  # a usage error, a CommandError
        context = getattr(err, "ctx", None)
        hint = f" (see {context.command_path} --help)" if context is not None else ""
        if err.format_message():  # empty after the help a bare command prints
            errors.print(f"error: {err.format_message()}{hint}")
        status = err.exit_code
    except typer.Abort:
        errors.print("interrupted")
        status = DATA_REFUSED
    except OSError as err:
        errors.print(f"error: {err}")
        status = USAGE_OR_ENVIRONMENT
    except Exception as err:  # the last resort: one line, the traceback in the log
        log = _log_file()
        with log.open("a", encoding="utf-8") as out:
            traceback.print_exc(file=out)
        errors.print(f"error: {type(err).__name__}: {first_line(err)} (details in {log})")
        status = DATA_REFUSED
    sys.exit(status if isinstance(status, int) else 0)


def _release_at_exit() -> None:
    """Free DuckDB's objects while its bindings still exist, after every other exit handler.

    Left to the interpreter's teardown, the objects that DuckDB's own modules hold (its type
    constants, the connection type) outlive its compiled bindings whenever Great Expectations
    was imported or a Prefect event-loop thread still runs, and the bindings print each one as
    "leaked" on stderr. So Prefect's daemon threads are ended (its own handlers have sent the
    last logs by now) and DuckDB's modules are emptied here.
    """
    threads = sys.modules.get("prefect._internal.concurrency.threads")
    if threads is not None:
        run_sync = threads.get_run_sync_loop()
        run_sync.shutdown()
        run_sync.thread.join(THREAD_STOP_TIMEOUT_S)
        threads.wait_for_global_loop_exit(THREAD_STOP_TIMEOUT_S)
    for name, module in list(sys.modules.items()):
        if name.startswith(("duckdb.", "_duckdb.")) or name in ("duckdb", "_duckdb"):
            vars(module).clear()
    gc.collect()


def _log_file() -> Path:
    return prefect_home() / "brukardata.log"


def _prefect_logs_to_file() -> None:
    """Prefect's own logs go to the Prefect UI and a log file, not over the user's tables."""
    os.environ.setdefault(
        "PREFECT_LOGGING_SETTINGS_PATH", str(Path(__file__).with_name("logging.yml"))
    )
    _log_file().parent.mkdir(parents=True, exist_ok=True)


def _settings(**flags: Any) -> Settings:
    """The command's settings, built once from its flags and the environment."""
    from flows.settings import command_settings

    return command_settings(**flags)


def _survey(survey: str) -> str:
    if survey.lower() not in SURVEYS:
        raise typer.BadParameter(f"must be one of {', '.join(SURVEYS)}", param_hint="--survey")
    return survey.lower()


def _source(settings: Settings) -> str:
    source = settings.source
    if source is None:
        raise typer.BadParameter("give --source or set BRUKARDATA_SOURCE", param_hint="--source")
    return source_folder(source)


def _known_kommuner(codes: list[str], settings: Settings) -> None:
    """Kommun codes of the reference catalogue, else a usage error naming the unknown ones."""
    unknown = sorted(set(codes) - settings.catalogue().kommun_codes)
    if unknown:
        named = ", ".join(map(repr, unknown))
        raise typer.BadParameter(
            f"unknown kommun {named} (a 4-digit kommun code, e.g. 0880)", param_hint="--kommun"
        )


def _prefect_session() -> contextlib.AbstractContextManager[None]:
    """Prefect for a command's flow runs: what a killed command left cleaned up, a temporary
    server started (and said so) when none runs, and the runs tagged with this process."""
    from flows.leftovers import prefect_session

    return prefect_session(errors.print)


def _run_summary(state: Any, what: str) -> RunSummary:
    """The flow's summary, or the one line that says why the flow stopped."""
    from flows.annual import RunSummary

    summary = state.result(raise_on_failure=False)
    if not isinstance(summary, RunSummary):  # the flow itself stopped: Prefect has logged why
        raise CommandError(f"{what} failed: {state.message}", DATA_REFUSED)
    return summary


def _print_summary(summary: RunSummary, json_output: bool) -> int:
    """The summary as a table (or JSON) and its problems on stderr; the exit status."""
    if json_output:
        typer.echo(json.dumps(summary.as_json(), ensure_ascii=False, indent=2))
    else:
        rows = [o.summary_row() for o in summary.outcomes]
        print_records(console, "brukardata run", rows, left=("survey", "status"))
        for o in summary.outcomes:
            for line in o.headline:
                console.print(f"  {line}")
        console.print(f"Warehouse: {summary.warehouse}")
    for line in summary.problems:
        errors.print(f"✗ {line}")
    return 0 if summary.ok else DATA_REFUSED


def _run_annual(year: int, source: str, surveys: list[str] | None, warehouse: str) -> RunSummary:
    from flows.annual import annual_run
    from flows.settings import as_parameter

    with _prefect_session(), progress.live():
        state = annual_run(
            year=year,
            source=as_parameter(source, "source"),
            surveys=surveys,
            warehouse=as_parameter(warehouse, "warehouse"),
            return_state=True,
        )
    return _run_summary(state, "run")


@app.command()
def run(
    year: Year,
    survey: Survey = None,
    source: Source = None,
    warehouse: Warehouse = None,
    json_output: JsonOutput = False,
) -> None:
    """The annual flow for one year: fetch, validate, aggregate and publish."""
    surveys = None if survey is None else [_survey(survey)]
    settings = _settings(source=source, warehouse=warehouse)
    source = _source(settings)
    writable_warehouse(settings.warehouse)
    summary = _run_annual(year, source, surveys, settings.warehouse)
    raise typer.Exit(_print_summary(summary, json_output))


@app.command("rerun")
def rerun_command(
    survey: OneSurvey,
    year: Year,
    reason: Annotated[str, typer.Option("--reason", help="Why the re-run is needed.")],
    *,
    kommun: Annotated[
        list[str] | None,
        typer.Option("--kommun", help="Only this kommun (repeatable); with --force, reload it."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Reload even kommuner whose files did not change.")
    ] = False,
    requested_by: Annotated[
        str | None, typer.Option("--requested-by", help="Who asks (default: the OS user).")
    ] = None,
    source: Source = None,
    warehouse: Warehouse = None,
    json_output: JsonOutput = False,
) -> None:
    """Re-fetch a survey-year and replace only the kommuner whose input changed."""
    survey = _survey(survey)
    if not reason.strip():
        raise typer.BadParameter("say why the re-run is needed", param_hint="--reason")
    settings = _settings(source=source, warehouse=warehouse)
    _known_kommuner(kommun or [], settings)
    source = _source(settings)
    existing_warehouse(settings.warehouse)
    from flows.rerun import rerun, what_it_did
    from flows.settings import as_parameter

    with _prefect_session(), progress.live():
        state = rerun(
            survey=survey,
            year=year,
            kommuner=kommun or None,
            force=force,
            reason=reason,
            requested_by=requested_by,
            source=as_parameter(source, "source"),
            warehouse=as_parameter(settings.warehouse, "warehouse"),
            return_state=True,
        )
    summary = _run_summary(state, "re-run")
    if json_output:
        raise typer.Exit(_print_summary(summary, json_output))
    for outcome in summary.outcomes:
        if outcome.ok:
            console.print(f"{outcome.survey} {outcome.year}: {what_it_did(outcome)}")
    for line in summary.problems:
        errors.print(f"✗ {line}")
    raise typer.Exit(0 if summary.ok else DATA_REFUSED)


HISTORY_COLUMNS = [
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


@app.command()
def history(
    warehouse: Warehouse = None,
    limit: Annotated[int, typer.Option(help="How many loads to show.", min=1)] = 20,
    json_output: JsonOutput = False,
) -> None:
    """Recent loads, one line per file, newest first."""
    warehouse = existing_warehouse(_settings(warehouse=warehouse).warehouse)
    from warehouse.db import create_warehouse_engine
    from warehouse.load import load_history

    engine = create_warehouse_engine(warehouse)
    try:
        loads = load_history(engine, limit=limit)[HISTORY_COLUMNS]
    finally:
        engine.dispose()
    records: list[dict[str, Any]] = json.loads(
        loads.to_json(orient="records", date_format="iso", force_ascii=False)
    )
    if json_output:
        typer.echo(json.dumps(records, ensure_ascii=False, indent=2, default=str))
        return
    rows = [{k: "" if v is None else str(v) for k, v in r.items()} for r in records]
    from tasks.redact import masked_warehouse

    print_records(
        console, f"Recent loads in {masked_warehouse(warehouse)}", rows, left=HISTORY_COLUMNS
    )


@app.command("validate")
def validate(
    paths: Annotated[
        list[str], typer.Argument(help="Export files or folders (local paths or fsspec URLs).")
    ],
    survey: OneSurvey,
    year: Year,
    json_output: JsonOutput = False,
    quarantine_csv: Annotated[
        Path | None,
        typer.Option(help="Also write the rows that would be quarantined, with why, to this CSV."),
    ] = None,
) -> None:
    """Check export files before loading them: writes nothing to the warehouse.

    Exit status 1 when a file would be refused as a whole, 2 when the paths cannot be read.
    """
    survey = _survey(survey)
    settings = _settings()
    if quarantine_csv is not None:
        writable_file(quarantine_csv, "--quarantine-csv")
    from flows.validation import check_files

    verdict = check_files(
        paths,
        survey,
        year,
        json_output=json_output,
        quarantine_csv=quarantine_csv,
        settings=settings,
    )
    raise typer.Exit(verdict)


@app.command("kolada")
def kolada_command(
    year: Year,
    warehouse: Warehouse = None,
    kolada_url: Annotated[
        str | None,
        typer.Option(
            help="Base URL of the Kolada API (default: BRUKARDATA_KOLADA_URL, else Kolada)."
        ),
    ] = None,
) -> None:
    """Fetch Kolada's published figures for a year and show where ours differ."""
    settings = _settings(warehouse=warehouse, kolada_url=kolada_url)
    existing_warehouse(settings.warehouse)
    from flows.kolada import compare_with_kolada

    with _prefect_session():
        compare_with_kolada(year, settings.warehouse, settings.kolada_url, console)


@app.command("report")
def report_command(
    year: Year,
    kommun: Annotated[
        str | None, typer.Option("--kommun", help="4-digit kommun code (default: riket).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="The HTML file to write.")] = None,
    warehouse: Warehouse = None,
) -> None:
    """Write a self-contained HTML report of a year (a kommun against riket, or riket)."""
    settings = _settings(warehouse=warehouse)
    _known_kommuner([] if kommun is None else [kommun], settings)
    target = writable_file(out or Path(f"rapport_{year}_{kommun or 'riket'}.html"), "--out")
    warehouse = existing_warehouse(settings.warehouse)
    from tasks.report import write_report
    from warehouse.db import create_warehouse_engine

    engine = create_warehouse_engine(warehouse)
    try:
        written = write_report(engine, year, target, kommun=kommun)
    except LookupError as err:
        raise CommandError(f"report: {first_line(err)}", DATA_REFUSED) from err
    finally:
        engine.dispose()
    typer.echo(f"report written: {written}")


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
    from sample.generate import generate_exports

    try:
        generated = generate_exports(
            out, [*years, *(more_years or [])], n_kommuner=kommuner, seed=seed, layout=layout
        )
    except ValueError as err:  # its arguments: years the catalogue lacks, an unknown layout
        raise CommandError(str(err)) from err
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
    from sample.generate import generate_exports

    years = [2023, 2024]
    exports = folder / "exports"
    database = folder / "brukardata.duckdb"
    settings = _settings(warehouse=f"duckdb:///{database}")
    generated = generate_exports(exports, years, n_kommuner=kommuner, seed=2024)
    console.print(f"Sample exports: {len(generated.files)} files in {exports}")
    status = 0
    for year in years:
        console.rule(f"Annual run {year}")
        status = max(
            status,
            _print_summary(_run_annual(year, str(exports), None, settings.warehouse), False),
        )
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
        f"Load history: brukardata history --warehouse {settings.warehouse}"
    )
    raise typer.Exit(status)


app.command()(server)

db_app = typer.Typer(help="The warehouse's schema.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(
    warehouse: Warehouse = None,
    revision: Annotated[str, typer.Option(help="Revision to migrate to.")] = "head",
) -> None:
    """Create the warehouse or migrate it to the newest schema revision; data loaded stays."""
    warehouse = writable_warehouse(_settings(warehouse=warehouse).warehouse)
    from warehouse.db import upgrade

    upgrade(warehouse, revision)
    typer.echo(f"{checked_warehouse_url(warehouse)}: at revision {revision}")


app.add_typer(db_app, name="db")
