"""Production warehouse: staging for write–audit–publish, audit results, re-runs, the BI role.

The new audit tables carry no foreign key to ``audit.loads``: DuckDB refuses to update a row
that another table references, and a load's row is updated when it finishes.

A revision is a frozen snapshot: it spells out its tables instead of importing
``warehouse.tables``. The staging tables are created as empty copies of the tables they feed
(``CREATE TABLE … AS SELECT … WHERE 1 = 0``), so they take the shape those tables have at this
revision.

Revision ID: 0002_production
Revises: 0001_initial
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_production"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RERUN_ID_SEQUENCE = sa.Sequence("rerun_requests_rerun_id_seq", schema="audit")
BI_ROLE = "brukardata_bi"

# staging table: (table it feeds, comment)
STAGED: dict[str, tuple[str, str]] = {
    "respondents": ("raw.respondents", "One row per accepted questionnaire of a load in audit."),
    "answers": ("raw.answers", "One row per answered question of a load in audit."),
    "quarantine": ("raw.quarantine", "One row per refused row of a load in audit."),
    "distributed": ("raw.distributed", "One row per kommun and enkät of a load in audit."),
    "fct_results": ("core.fct_results", "One row per result cell of a load in audit."),
    "fct_answer_distribution": (
        "core.fct_answer_distribution",
        "One row per answer-distribution cell of a load in audit.",
    ),
    "fct_response_counts": (
        "core.fct_response_counts",
        "One row per response-count cell of a load in audit.",
    ),
}


def _create_raw_distributed() -> None:
    op.create_table(
        "distributed",
        sa.Column("survey", sa.String(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("load_id", sa.Integer(), nullable=False),
        sa.Column("kommun_kod", sa.String(), nullable=False),
        sa.Column("verksamhet", sa.String(), nullable=False),
        sa.Column("antal_utdelade", sa.BigInteger(), nullable=False),
        schema="raw",
        comment="One row per kommun and enkät: questionnaires handed out, as published.",
    )


def _create_audit_tables() -> None:
    op.create_table(
        "load_audits",
        sa.Column("load_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("audited_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data_docs_path", sa.String(), nullable=True),
        sa.CheckConstraint(
            "status IN ('passed', 'warned', 'failed')", name="ck_load_audits_status"
        ),
        sa.PrimaryKeyConstraint("load_id"),
        schema="audit",
        comment="One row per audited load: the verdict and where its Data Docs are.",
    )
    op.create_table(
        "expectation_results",
        sa.Column("load_id", sa.Integer(), nullable=False),
        sa.Column("expectation", sa.String(), nullable=False),
        sa.Column("column_name", sa.String(), nullable=True),
        sa.Column("severity", sa.String(), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("observed", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "severity IN ('critical', 'warning')", name="ck_expectation_results_severity"
        ),
        schema="audit",
        comment="One row per expectation of the audit of one load.",
    )
    op.execute(sa.schema.CreateSequence(RERUN_ID_SEQUENCE))
    op.create_table(
        "rerun_requests",
        sa.Column("rerun_id", sa.Integer(), RERUN_ID_SEQUENCE, nullable=False),
        sa.Column("survey", sa.String(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("kommuner", sa.Text(), nullable=True),
        sa.Column("force", sa.Boolean(), nullable=False),
        sa.Column("requested_by", sa.String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(), nullable=True),
        sa.Column("load_id", sa.Integer(), nullable=True),
        sa.Column("changed_files", sa.Text(), nullable=True),
        sa.Column("replaced_kommuner", sa.Text(), nullable=True),
        sa.Column("rows_replaced", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("rerun_id"),
        schema="audit",
        comment="One row per requested re-run: who asked, why and what it replaced.",
    )


def _create_staging() -> None:
    op.execute("CREATE SCHEMA staging")
    for name, (source, comment) in STAGED.items():
        op.execute(f"CREATE TABLE staging.{name} AS SELECT * FROM {source} WHERE 1 = 0")
        op.execute(f"COMMENT ON TABLE staging.{name} IS '{comment}'")


def _grant_reporting_to_bi() -> None:
    """PostgreSQL only: a NOLOGIN group that may read the reporting views and nothing else.

    Roles belong to the cluster, not the database, so the role may exist already.
    """
    op.execute(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{BI_ROLE}') "
        f"THEN CREATE ROLE {BI_ROLE} NOLOGIN; END IF; END $$"
    )
    op.execute(f"GRANT USAGE ON SCHEMA reporting TO {BI_ROLE}")
    op.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA reporting TO {BI_ROLE}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA reporting GRANT SELECT ON TABLES TO {BI_ROLE}")


def upgrade() -> None:
    _create_raw_distributed()
    _create_audit_tables()
    _create_staging()
    if op.get_bind().dialect.name == "postgresql":
        _grant_reporting_to_bi()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA reporting REVOKE SELECT ON TABLES FROM {BI_ROLE}"
        )
        op.execute(f"REVOKE SELECT ON ALL TABLES IN SCHEMA reporting FROM {BI_ROLE}")
        op.execute(f"REVOKE USAGE ON SCHEMA reporting FROM {BI_ROLE}")
    for name in STAGED:
        op.execute(f"DROP TABLE staging.{name}")
    op.execute("DROP SCHEMA staging")
    op.drop_table("rerun_requests", schema="audit")
    op.execute(sa.schema.DropSequence(RERUN_ID_SEQUENCE))
    op.drop_table("expectation_results", schema="audit")
    op.drop_table("load_audits", schema="audit")
    op.drop_table("distributed", schema="raw")
