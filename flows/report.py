"""``brukardata report``: the year's figures as a self-contained HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.settings import Settings
from schemas.catalogue import default_catalogue
from tasks.report import write_report
from warehouse.db import create_warehouse_engine, upgrade


def report_command(
    year: Annotated[int, typer.Option("--year", help="Survey year, e.g. 2024.", min=2016)],
    kommun: Annotated[
        str | None, typer.Option("--kommun", help="4-digit kommun code (default: riket).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="The HTML file to write.")] = None,
    warehouse: Annotated[
        str | None,
        typer.Option(envvar="BRUKARDATA_WAREHOUSE", help="SQLAlchemy URL of the warehouse."),
    ] = None,
) -> None:
    """Write a self-contained HTML report of a year (a kommun against riket, or riket)."""
    if kommun is not None and kommun not in set(default_catalogue().kommuner["kommun_kod"]):
        typer.echo(
            f"report: unknown kommun {kommun!r} (a 4-digit kommun code, e.g. 0880)", err=True
        )
        raise typer.Exit(1)
    settings = Settings() if warehouse is None else Settings(warehouse=warehouse)
    target = out or Path(f"rapport_{year}_{kommun or 'riket'}.html")
    engine = create_warehouse_engine(settings.warehouse)
    try:
        upgrade(engine)  # a warehouse without the reporting views has no figures, not an error
        written = write_report(engine, year, target, kommun=kommun)
    except LookupError as err:
        typer.echo(f"report: {err}", err=True)
        raise typer.Exit(1) from err
    finally:
        engine.dispose()
    typer.echo(f"report written: {written}")
