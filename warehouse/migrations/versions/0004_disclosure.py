"""Disclosure control says why: each hidden cell's ``suppression_reason``.

``few_answers``: the cell has fewer valid answers (respondents) than the threshold.
``protects_other``: a complement, hidden so that no small group can be recovered by subtracting
published cells from each other. NULL where the cell is shown. Loads published before this
revision have NULL reasons on hidden cells too, until their survey-year is loaded again.

The views of the first revision are replaced with the column added at the end (both backends
keep a view's grants and dependent views when columns are only appended; DuckDB forgets the
view's comment, so it is set again).

Revision ID: 0004_disclosure
Revises: 0003_statistics
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import import_module

import sqlalchemy as sa
from alembic import op

revision: str = "0004_disclosure"
down_revision: str | None = "0003_statistics"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FACTS = ("fct_results", "fct_answer_distribution", "fct_response_counts")
VIEWS = ("results", "answer_distribution", "response_counts")
COLUMN = "suppression_reason"


def _views_of(revision: str) -> dict[str, tuple[str, str]]:
    """A frozen revision's views: (comment, SELECT) by name."""
    views: dict[str, tuple[str, str]] = import_module(
        f"warehouse.migrations.versions.{revision}"
    ).VIEWS
    return views


def _replace_views(extra: str) -> None:
    for name in VIEWS:
        comment, select = _views_of("0001_initial")[name]
        if extra:
            select = select.replace("\nFROM core.", f",\n    {extra}\nFROM core.", 1)
        op.execute(f"CREATE OR REPLACE VIEW reporting.{name} AS\n{select}")
        op.execute(f"COMMENT ON VIEW reporting.{name} IS '{comment}'")


def upgrade() -> None:
    for schema in ("core", "staging"):
        for table in FACTS:
            op.add_column(table, sa.Column(COLUMN, sa.String(), nullable=True), schema=schema)
    _replace_views(f"f.{COLUMN}")


def downgrade() -> None:
    """A column cannot be taken out of a view in place, nor out of an indexed table on DuckDB:
    what depends on the column is dropped and made again as the earlier revisions made it."""
    statistics = _views_of("0003_statistics")
    for name in [*reversed(statistics), *VIEWS]:
        op.execute(f"DROP VIEW reporting.{name}")
    for table in FACTS:
        op.drop_column(table, COLUMN, schema="staging")
        # DuckDB alters no table an index depends on
        op.drop_index(f"ix_{table}_area", table, schema="core")
        op.drop_column(table, COLUMN, schema="core")
        op.create_index(
            f"ix_{table}_area", table, ["survey", "year", "level", "area_code"], schema="core"
        )
    _replace_views("")
    for name, (comment, select) in statistics.items():
        op.execute(f"CREATE VIEW reporting.{name} AS\n{select}")
        op.execute(f"COMMENT ON VIEW reporting.{name} IS '{comment}'")
