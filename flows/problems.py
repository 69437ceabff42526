"""Errors the command line reports in one line, with the exit status they stand for.

0: all good. 1: data refused, or a run that did not publish. 2: usage or environment (a bad
argument, an unreachable warehouse or source, an unwritable output). Commands check what they
are given before any slow work (a Prefect server start, a flow) and raise a CommandError; the
entry point prints it and exits with its status, never with a traceback.
"""

from __future__ import annotations

from pathlib import Path

# Typer carries its own copy of click; its ClickException is what Typer prints as one error
# and exits with ``exit_code``, in the entry point and under ``typer.testing`` alike.
from typer._click.exceptions import ClickException

DATA_REFUSED = 1
USAGE_OR_ENVIRONMENT = 2


class CommandError(ClickException):
    """One line for the user and the exit status it means."""

    def __init__(self, message: str, exit_code: int = USAGE_OR_ENVIRONMENT) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def first_line(err: BaseException) -> str:
    """The first line of an error's message (drivers append context on later lines)."""
    text = str(getattr(err, "orig", None) or err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def shown_url(url: str) -> str:
    """A URL as it may be printed: the password masked."""
    from sqlalchemy import make_url

    return make_url(url).render_as_string(hide_password=True)


def checked_warehouse_url(url: str) -> str:
    """``url`` if it is a SQLAlchemy URL of an installed backend, else a CommandError."""
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        make_url(url).get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError) as err:
        raise CommandError(
            f"--warehouse {url!r} is not a warehouse URL: {first_line(err)} "
            "(e.g. duckdb:///brukardata.duckdb or postgresql+psycopg://user@host/brukardata)"
        ) from err
    return url


def duckdb_file(url: str) -> Path | None:
    """The file of a DuckDB warehouse URL; None for another backend or an in-memory one."""
    from sqlalchemy import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "duckdb" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser()


def writable_warehouse(url: str) -> str:
    """A warehouse a run may create or write: a DuckDB file's folder must exist already, and
    any other backend must answer now (not after a Prefect server start and retries)."""
    checked_warehouse_url(url)
    database = duckdb_file(url)
    if database is not None:
        if not database.parent.is_dir():
            raise CommandError(
                f"warehouse {url}: folder {database.parent} does not exist (create it first)"
            )
        return url
    _connect(url)
    return url


def existing_warehouse(url: str) -> str:
    """A warehouse that must exist already at the current schema: read-only commands never
    create, migrate or change one."""
    checked_warehouse_url(url)
    database = duckdb_file(url)
    if database is not None and not database.is_file():
        raise CommandError(
            f"no warehouse at {url} (no such file): pass --warehouse (after `make demo`: "
            "duckdb:///demo/brukardata.duckdb) or create one with `brukardata run` or "
            "`brukardata db upgrade --warehouse URL`"
        )
    if not _is_current(url):
        raise CommandError(
            f"warehouse {shown_url(url)} is not at the current schema: "
            f"run `brukardata db upgrade --warehouse URL` first"
        )
    return url


def _connect(url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    engine = create_engine(url, connect_args=_timeout(url))
    try:
        with engine.connect() as connection:
            connection.execute(text("select 1"))
    except SQLAlchemyError as err:
        raise CommandError(f"warehouse {shown_url(url)} unreachable: {first_line(err)}") from err
    finally:
        engine.dispose()


def _timeout(url: str) -> dict[str, int]:
    from sqlalchemy import make_url

    return {"connect_timeout": 10} if make_url(url).get_backend_name() == "postgresql" else {}


def _is_current(url: str) -> bool:
    """Whether the warehouse's schema is at the newest migration (read without changing it)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.pool import NullPool

    import warehouse.migrations  # noqa: F401 (registers Alembic's DuckDB support)
    from warehouse.db import alembic_config
    from warehouse.tables import AUDIT  # where the migrations keep their version table

    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    engine = create_engine(url, poolclass=NullPool, connect_args=_timeout(url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"version_table_schema": AUDIT})
            current = set(context.get_current_heads())
    except SQLAlchemyError as err:
        raise CommandError(f"warehouse {shown_url(url)} unreachable: {first_line(err)}") from err
    finally:
        engine.dispose()
    return current == heads


def source_folder(source: str) -> str:
    """A local source must be a folder; a URL is checked when it is fetched."""
    if "://" not in source and not Path(source).expanduser().is_dir():
        raise CommandError(f"source {source} is not a folder (give --source or BRUKARDATA_SOURCE)")
    return source


def writable_file(path: Path, option: str) -> Path:
    """An output file whose folder exists, checked before the work that fills it."""
    if not path.parent.is_dir():
        raise CommandError(f"{option} {path}: folder {path.parent} does not exist")
    return path
