"""Connecting to the warehouse and bringing its schema up to date.

One SQLAlchemy URL selects the warehouse: ``duckdb:///brukardata.duckdb`` (embedded, the
default) or ``postgresql+psycopg://…``. Migrations run in-process, so users need neither an
``alembic.ini`` nor the ``alembic`` command. To write a new revision, pass
``alembic_config(url)`` to ``alembic.command.revision``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, make_url
from sqlalchemy.pool import NullPool

MIGRATIONS = "warehouse:migrations"


def create_warehouse_engine(url: str) -> Engine:
    """An engine for ``url``; a DuckDB file's folder is created so a fresh path just works.

    A DuckDB file is opened per transaction and closed right after (no pool): DuckDB lets
    one process at a time hold the file, so the pipeline must not keep it between writes,
    where a BI tool or ``brukardata history`` in another process may want to read it.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "duckdb":
        return create_engine(parsed)
    if parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return create_engine(parsed, poolclass=NullPool)


def alembic_config(url: str | None = None) -> Config:
    """Alembic's configuration for the warehouse migrations, without any ini file."""
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # ini interpolation
    return config


def _migrate(
    engine_or_url: Engine | str, migration: Callable[[Config, str], None], revision: str
) -> None:
    """Run one Alembic command in-process, on one connection and in one transaction."""
    engine = (
        create_warehouse_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    )
    config = alembic_config()
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            migration(config, revision)
    finally:
        if isinstance(engine_or_url, str):
            engine.dispose()


def upgrade(engine_or_url: Engine | str, revision: str = "head") -> None:
    """Migrate the warehouse up to ``revision``; a warehouse already there is left as it is."""
    _migrate(engine_or_url, command.upgrade, revision)


def downgrade(engine_or_url: Engine | str, revision: str) -> None:
    """Migrate the warehouse back to ``revision`` (``base`` removes everything it created)."""
    _migrate(engine_or_url, command.downgrade, revision)
