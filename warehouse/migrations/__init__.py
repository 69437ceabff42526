"""Alembic migrations of the warehouse, run in-process by ``warehouse.db.upgrade``.

Importing this package teaches Alembic the DuckDB dialect, which it does not know by itself.
"""

from __future__ import annotations

from alembic.ddl.impl import DefaultImpl


class DuckDBImpl(DefaultImpl):
    """Alembic's operations on DuckDB: generic SQL, and DDL inside the migration transaction."""

    __dialect__ = "duckdb"
    transactional_ddl = True
