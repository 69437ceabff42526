"""Alembic environment: migrates the connection handed over by ``warehouse.db.upgrade``.

Given ``warehouse.db.alembic_config(url)`` instead, as Alembic's own commands are, it connects
to that URL itself.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

import warehouse.migrations  # noqa: F401  (registers the DuckDB dialect with Alembic)
from warehouse.db import create_warehouse_engine
from warehouse.reporting import sync_views
from warehouse.tables import AUDIT

VERSION_TABLE_SCHEMA = AUDIT


def run_migrations(connection: Connection) -> None:
    """Apply the pending revisions in one transaction; the version table lives in ``audit``.

    A warehouse left at the newest revision gets the reporting views of ``warehouse/views/``
    in the same transaction.
    """
    connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {VERSION_TABLE_SCHEMA}"))
    context.configure(connection=connection, version_table_schema=VERSION_TABLE_SCHEMA)
    with context.begin_transaction():
        context.run_migrations()
        at = set(context.get_context().get_current_heads())
        if at == set(context.script.get_heads()):
            sync_views(connection)


def main() -> None:
    handed_over: Connection | None = context.config.attributes.get("connection")
    if handed_over is not None:
        run_migrations(handed_over)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("no warehouse to migrate: hand over a connection or set sqlalchemy.url")
    engine = create_warehouse_engine(url)
    try:
        with engine.begin() as connection:
            run_migrations(connection)
    finally:
        engine.dispose()


main()
