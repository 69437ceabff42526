"""The reporting views are made from ``warehouse/views/`` from here on, not by revisions.

Upgrade drops the views the earlier revisions made; ``warehouse.reporting.sync_views`` makes
the current ones from their SQL files once the warehouse is at the newest revision. Adds what
those views show a BI user: a gender code's label (``core.dim_gender``), each question's place
in its questionnaire (``core.dim_question.question_order``), and ``audit.reporting_views``,
which records the definition each view was made from. A respondent's ``kon`` (the export's
word) is ``gender`` in the warehouse, as in every step after parsing.

Revision ID: 0006_views_from_files
Revises: 0005_figures
Create Date: 2026-11-29
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from warehouse.reporting import drop_views

revision: str = "0006_views_from_files"
down_revision: str | None = "0005_figures"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _revision(name: str) -> Any:
    return importlib.import_module(f"warehouse.migrations.versions.{name}")


def _views_of_0005() -> dict[str, tuple[str, str]]:
    """The views as revision 0005 left them, in an order that creates each after its sources:
    0001's, with 0004's column on answer_distribution, and 0005's."""
    initial, disclosure, figures = (
        _revision(name) for name in ("0001_initial", "0004_disclosure", "0005_figures")
    )
    comment, select = initial.VIEWS["answer_distribution"]
    column = f",\n    f.{disclosure.COLUMN}\nFROM core."
    return {
        "answer_distribution": (comment, select.replace("\nFROM core.", column, 1)),
        "load_history": initial.VIEWS["load_history"],
        **figures._cell_views(),
        **figures.STATISTICS_VIEWS,
        **figures.NEW_VIEWS,
    }


GENDER_IN = ("raw", "staging")  # the schemas whose respondents table has it


def upgrade() -> None:
    for name in reversed(_views_of_0005()):
        op.execute(f"DROP VIEW reporting.{name}")
    for schema in GENDER_IN:
        op.execute(f"ALTER TABLE {schema}.respondents RENAME COLUMN kon TO gender")
    op.create_table(
        "dim_gender",
        sa.Column("gender", sa.String(), nullable=False),
        sa.Column("label_sv", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("gender"),
        schema="core",
        comment="One row per gender code of the published figures (T, K, M).",
    )
    op.add_column("dim_question", sa.Column("question_order", sa.Integer()), schema="core")
    op.create_table(
        "reporting_views",
        sa.Column("view_name", sa.String(), nullable=False),
        sa.Column("fingerprint", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("view_name"),
        schema="audit",
        comment="One row per reporting view: the fingerprint of the definition it was made from.",
    )


def downgrade() -> None:
    drop_views(op.get_bind())
    op.drop_table("reporting_views", schema="audit")
    op.drop_column("dim_question", "question_order", schema="core")
    op.drop_table("dim_gender", schema="core")
    for schema in GENDER_IN:
        op.execute(f"ALTER TABLE {schema}.respondents RENAME COLUMN gender TO kon")
    for name, (comment, select) in _views_of_0005().items():
        op.execute(f"CREATE VIEW reporting.{name} AS\n{select}")
        op.execute(f"COMMENT ON VIEW reporting.{name} IS '{comment}'")
