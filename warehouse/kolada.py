"""Kolada's published figures in the warehouse, for ``reporting.kolada_comparison``."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import Engine, delete

from schemas.catalogue import Catalogue
from warehouse import tables
from warehouse.load import bulk_insert


def store_kolada_values(
    engine: Engine, *, year: int, values: pd.DataFrame, catalogue: Catalogue
) -> int:
    """Replace Kolada's values of the catalogue's KPIs for ``year``, in one transaction.

    ``values`` has the columns of ``tasks.kolada.values_frame``. The KPI mapping is replaced
    from the catalogue in the same transaction, so the comparison always reads the mapping the
    values were fetched for. Returns the number of values stored.
    """
    wrong_year = values.loc[values["year"] != year, "year"].unique()
    if len(wrong_year):
        raise ValueError(f"Kolada values of year(s) {sorted(wrong_year)} given for {year}")
    kpis = catalogue.kolada_kpis
    stored = values.assign(fetched_at=datetime.now(UTC))
    with engine.begin() as conn:
        conn.execute(delete(tables.dim_kolada_kpi))
        bulk_insert(conn, tables.dim_kolada_kpi, kpis[tables.dim_kolada_kpi.columns.keys()])
        conn.execute(
            delete(tables.kolada_values).where(
                tables.kolada_values.c.year == year,
                tables.kolada_values.c.kpi.in_(list(kpis["kpi_id"])),
            )
        )
        bulk_insert(conn, tables.kolada_values, stored)
    return len(stored)
