"""The fact tables' BI index stays on PostgreSQL only: DuckDB never reads it.

DuckDB plans the BI tools' usual filter (survey, year, level, some areas) as a sequential scan
skipping row groups by their min/max, whether the four-column index exists or not, so the
index changed no BI query's time there. It only cost writes: a load replacing a published
survey-year spent most of its publish rewriting it. PostgreSQL keeps it, its filtered reads
need it.

Revision ID: 0007_bi_index_postgresql_only
Revises: 0006_views_from_files
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007_bi_index_postgresql_only"
down_revision: str | None = "0006_views_from_files"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FACTS = ("fct_results", "fct_answer_distribution", "fct_response_counts")


def _on_duckdb() -> bool:
    return op.get_bind().dialect.name == "duckdb"


def upgrade() -> None:
    if _on_duckdb():
        for table in FACTS:
            op.drop_index(f"ix_{table}_area", table_name=table, schema="core")


def downgrade() -> None:
    if _on_duckdb():
        for table in FACTS:
            op.create_index(
                f"ix_{table}_area", table, ["survey", "year", "level", "area_code"], schema="core"
            )
