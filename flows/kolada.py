"""``brukardata kolada``: fetch Kolada's published figures for a year, reconcile with ours."""

from __future__ import annotations

import pandas as pd
from prefect import flow
from rich.console import Console

from flows.output import print_records
from flows.problems import DATA_REFUSED, CommandError
from flows.settings import Settings
from tasks.kolada import (
    KoladaError,
    fetch_kolada_values_task,
    reconciliation_task,
    require_published_year,
    store_kolada_values_task,
)
from tasks.rounding import half_up
from warehouse.db import create_warehouse_engine

SHOWN_DIFFERENCES = 20


@flow(name="kolada-reconciliation", log_prints=True)
def kolada_reconciliation(
    year: int, warehouse: str | None = None, kolada_url: str | None = None
) -> pd.DataFrame:
    """Fetch the catalogue's KPIs for ``year``, store them, and return the comparison."""
    settings = Settings.given(warehouse=warehouse, kolada_url=kolada_url)
    catalogue = settings.catalogue()
    engine = create_warehouse_engine(settings.warehouse)
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


def compare_with_kolada(
    year: int, warehouse: str, kolada_url: str | None, console: Console
) -> None:
    """``brukardata kolada``: fetch, store and print where our figures and Kolada's differ.

    Kolada refusing or unreachable is a CommandError (2); a year with no published figures of ours
    has nothing to compare (1).
    """
    engine = create_warehouse_engine(warehouse)
    try:
        require_published_year(engine, year)  # here too, so a wrong year is one line, not a trace
    except LookupError as err:
        raise CommandError(f"kolada: {err}", DATA_REFUSED) from err
    finally:
        engine.dispose()
    try:
        comparison = kolada_reconciliation(year=year, warehouse=warehouse, kolada_url=kolada_url)
    except KoladaError as err:
        raise CommandError(f"kolada: {err}") from err
    differing = comparison[comparison["differs"]]
    console.print(
        f"Kolada {year}: {len(comparison)} figures compared, {len(differing)} differ by more "
        "than rounding"
    )
    columns = ["kpi", "municipality_id", "gender", "published_value", "our_value", "difference"]
    rows = [
        {column: _shown(value) for column, value in zip(columns, row, strict=True)}
        for row in differing.head(SHOWN_DIFFERENCES)[columns].itertuples(index=False)
    ]
    if rows:
        print_records(console, "Skillnader mot Kolada", rows, left=columns[:3])
