"""``brukardata kolada``: fetch Kolada's published figures for a year, reconcile with ours."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
import typer
from prefect import flow
from rich.console import Console
from rich.table import Table

from flows.settings import Settings
from schemas.catalogue import default_catalogue
from tasks.kolada import (
    KoladaError,
    fetch_kolada_values_task,
    reconciliation_task,
    require_published_year,
    store_kolada_values_task,
)
from tasks.rounding import half_up
from warehouse.db import create_warehouse_engine, upgrade

SHOWN_DIFFERENCES = 20


@flow(name="kolada-reconciliation", log_prints=True)
def kolada_reconciliation(
    year: int, warehouse: str | None = None, kolada_url: str | None = None
) -> pd.DataFrame:
    """Fetch the catalogue's KPIs for ``year``, store them, and return the comparison."""
    settings = Settings()
    settings = settings.model_copy(
        update={
            "warehouse": warehouse or settings.warehouse,
            "kolada_url": kolada_url or settings.kolada_url,
        }
    )
    catalogue = default_catalogue()
    engine = create_warehouse_engine(settings.warehouse)
    upgrade(engine)
    require_published_year(engine, year)
    values = fetch_kolada_values_task(
        list(catalogue.kolada_kpis["kpi_id"]),
        year,
        base_url=settings.kolada_url,
        api_version=settings.kolada_api_version,
    )
    store_kolada_values_task(engine, year=year, values=values, catalogue=catalogue)
    comparison: pd.DataFrame = reconciliation_task(engine, year)
    return comparison


def _shown(value: object) -> str:
    """A table cell: a figure to one decimal (half up), a missing one as a dash (never "nan")."""
    if isinstance(value, float):
        return "–" if pd.isna(value) else str(half_up(value, 1))
    return str(value)


def kolada_command(
    year: Annotated[int, typer.Option("--year", help="Survey year, e.g. 2024.", min=2016)],
    warehouse: Annotated[
        str | None,
        typer.Option(envvar="BRUKARDATA_WAREHOUSE", help="SQLAlchemy URL of the warehouse."),
    ] = None,
    kolada_url: Annotated[
        str | None,
        typer.Option(envvar="BRUKARDATA_KOLADA_URL", help="Base URL of the Kolada API."),
    ] = None,
) -> None:
    """Fetch Kolada's published figures for a year and show where ours differ."""
    console = Console()
    try:
        engine = create_warehouse_engine(warehouse or Settings().warehouse)
        upgrade(engine)
        require_published_year(engine, year)  # here too, so a wrong year is one line, not a trace
        comparison = kolada_reconciliation(year=year, warehouse=warehouse, kolada_url=kolada_url)
    except (KoladaError, LookupError) as err:
        typer.echo(f"kolada: {err}", err=True)
        raise typer.Exit(1) from err
    differing = comparison[comparison["differs"]]
    console.print(
        f"Kolada {year}: {len(comparison)} figures compared, {len(differing)} differ by more "
        "than rounding"
    )
    columns = ["kpi", "municipality_id", "gender", "published_value", "our_value", "difference"]
    table = Table(title="Skillnader mot Kolada")
    for column in columns:
        table.add_column(column)
    for row in differing.head(SHOWN_DIFFERENCES)[columns].itertuples(index=False):
        table.add_row(*(_shown(value) for value in row))
    if len(differing):
        console.print(table)
