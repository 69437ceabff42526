"""A migrated DuckDB warehouse in tmp_path, with the catalogue's dimensions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from schemas.catalogue import Catalogue
from warehouse.db import create_warehouse_engine, upgrade
from warehouse.load import sync_dimensions


@pytest.fixture
def warehouse_url(tmp_path: Path) -> str:
    """A DuckDB file in a folder that does not exist yet."""
    return f"duckdb:///{tmp_path / 'warehouse' / 'brukardata.duckdb'}"


@pytest.fixture
def engine(warehouse_url: str, catalogue: Catalogue) -> Iterator[Engine]:
    """A migrated warehouse with the catalogue's dimensions."""
    engine = create_warehouse_engine(warehouse_url)
    upgrade(engine)
    sync_dimensions(engine, catalogue)
    yield engine
    engine.dispose()


@pytest.fixture
def statistics_engine(backend_url: str, catalogue: Catalogue) -> Iterator[Engine]:
    """A migrated warehouse on each backend; its dimensions include which enkät asks what."""
    engine = create_warehouse_engine(backend_url)
    upgrade(engine)
    sync_dimensions(engine, catalogue)
    with engine.connect() as conn:
        asked = conn.execute(text("SELECT count(*) FROM core.dim_questionnaire")).scalar_one()
    assert asked > 0
    yield engine
    engine.dispose()
