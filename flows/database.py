"""``brukardata db upgrade``: bring an existing warehouse to the current schema, keeping data."""

from __future__ import annotations

from typing import Annotated

import typer

from flows.settings import Settings
from tasks.redact import masked_warehouse
from warehouse.db import upgrade


def db_upgrade(
    warehouse: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL of the warehouse (BRUKARDATA_WAREHOUSE).")
    ] = None,
    revision: Annotated[str, typer.Option(help="Revision to migrate to.")] = "head",
) -> None:
    """Migrate the warehouse to the newest schema revision; data already loaded stays."""
    url = warehouse or Settings().warehouse
    upgrade(url, revision)
    typer.echo(f"{masked_warehouse(url)}: at revision {revision}")
