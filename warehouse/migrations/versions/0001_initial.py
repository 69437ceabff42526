"""The initial warehouse: schemas raw, core, audit, reporting, their tables and the BI views.

A revision is a frozen snapshot: it spells out its tables instead of importing
``warehouse.tables``, so later changes to the model never change what this step creates.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_SCHEMAS = ("raw", "core", "reporting")  # audit exists already: it holds the version table
LOAD_ID_SEQUENCE = sa.Sequence("loads_load_id_seq", schema="audit")


def _partition_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("survey", sa.String(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("load_id", sa.Integer(), nullable=False),
    ]


def _cell_key_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("level", sa.String(), nullable=False),
        sa.Column("area_code", sa.String(), nullable=False),
        sa.Column("kommun_kod", sa.String(), nullable=True),
        sa.Column("lan_kod", sa.String(), nullable=True),
        sa.Column("verksamhet", sa.String(), nullable=False),
        sa.Column("gender", sa.String(), nullable=False),
    ]


def _create_audit_tables() -> None:
    op.execute(sa.schema.CreateSequence(LOAD_ID_SEQUENCE))
    op.create_table(
        "loads",
        sa.Column("load_id", sa.Integer(), LOAD_ID_SEQUENCE, nullable=False),
        sa.Column("survey", sa.String(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("flow_run_id", sa.String(), nullable=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rows_read", sa.BigInteger(), nullable=True),
        sa.Column("rows_loaded", sa.BigInteger(), nullable=True),
        sa.Column("rows_quarantined", sa.BigInteger(), nullable=True),
        sa.Column("files_refused", sa.Integer(), nullable=True),
        sa.Column("settings", sa.Text(), nullable=False),
        sa.CheckConstraint("status IN ('running', 'published', 'failed')", name="ck_loads_status"),
        sa.PrimaryKeyConstraint("load_id"),
        schema="audit",
        comment="One row per load of one (survey, year).",
    )
    op.create_table(
        "load_files",
        sa.Column("load_id", sa.Integer(), nullable=False),
        sa.Column("source_file", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("source_url", sa.String(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("landing_url", sa.String(), nullable=True),
        sa.Column("sha256", sa.String(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("rows_read", sa.BigInteger(), nullable=False),
        sa.Column("rows_loaded", sa.BigInteger(), nullable=False),
        sa.Column("rows_quarantined", sa.BigInteger(), nullable=False),
        sa.Column("kommun_kod_padded", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('loaded', 'refused')", name="ck_load_files_status"),
        sa.CheckConstraint("kind IN ('answers', 'distributed')", name="ck_load_files_kind"),
        sa.ForeignKeyConstraint(["load_id"], ["audit.loads.load_id"]),
        sa.PrimaryKeyConstraint("load_id", "source_file"),
        schema="audit",
        comment="One row per input file per load.",
    )


def _create_raw_tables() -> None:
    op.create_table(
        "respondents",
        *_partition_columns(),
        sa.Column("respondent_id", sa.BigInteger(), nullable=False),
        sa.Column("source_file", sa.String(), nullable=False),
        sa.Column("row_number", sa.BigInteger(), nullable=False),
        sa.Column("kommun_kod", sa.String(), nullable=False),
        sa.Column("lan_kod", sa.String(), nullable=False),
        sa.Column("verksamhet", sa.String(), nullable=False),
        sa.Column("enhet_id", sa.String(), nullable=False),
        sa.Column("svar_id", sa.String(), nullable=False),
        sa.Column("kon", sa.String(), nullable=False),
        schema="raw",
        comment="One row per accepted questionnaire of the published load of one (survey, year).",
    )
    op.create_table(
        "answers",
        *_partition_columns(),
        sa.Column("respondent_id", sa.BigInteger(), nullable=False),
        sa.Column("question_id", sa.String(), nullable=False),
        sa.Column("answer_code", sa.Integer(), nullable=False),
        schema="raw",
        comment="One row per answered question of an accepted questionnaire.",
    )
    op.create_table(
        "quarantine",
        *_partition_columns(),
        sa.Column("source_file", sa.String(), nullable=False),
        sa.Column("row_number", sa.BigInteger(), nullable=False),
        sa.Column("kommun_kod", sa.String(), nullable=False),
        sa.Column("svar_id", sa.String(), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("original", sa.Text(), nullable=False),
        schema="raw",
        comment="One row per refused row of an accepted file, with every reason.",
    )


def _create_dimensions() -> None:
    op.create_table(
        "dim_survey",
        sa.Column("survey", sa.String(), nullable=False),
        sa.Column("name_sv", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("survey"),
        schema="core",
        comment="One row per survey.",
    )
    op.create_table(
        "dim_kommun",
        sa.Column("kommun_kod", sa.String(), nullable=False),
        sa.Column("kommun_namn", sa.String(), nullable=False),
        sa.Column("lan_kod", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("kommun_kod"),
        schema="core",
        comment="One row per kommun.",
    )
    op.create_table(
        "dim_lan",
        sa.Column("lan_kod", sa.String(), nullable=False),
        sa.Column("lan_namn", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("lan_kod"),
        schema="core",
        comment="One row per län.",
    )
    op.create_table(
        "dim_verksamhet",
        sa.Column("survey", sa.String(), nullable=False),
        sa.Column("verksamhet", sa.String(), nullable=False),
        sa.Column("name_sv", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("members", sa.String(), nullable=False),
        sa.Column("first_year", sa.Integer(), nullable=True),
        sa.Column("last_year", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("survey", "verksamhet"),
        schema="core",
        comment="One row per enkät or composite group of a survey.",
    )
    op.create_table(
        "dim_question",
        sa.Column("survey", sa.String(), nullable=False),
        sa.Column("question_id", sa.String(), nullable=False),
        sa.Column("text_sv", sa.Text(), nullable=False),
        sa.Column("kolada_short", sa.String(), nullable=False),
        sa.Column("quality_area", sa.String(), nullable=False),
        sa.Column("scale_id", sa.String(), nullable=False),
        sa.Column("first_year", sa.Integer(), nullable=True),
        sa.Column("last_year", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("survey", "question_id"),
        schema="core",
        comment="One row per question of a survey.",
    )
    op.create_table(
        "dim_answer_option",
        sa.Column("survey", sa.String(), nullable=False),
        sa.Column("question_id", sa.String(), nullable=False),
        sa.Column("answer_code", sa.Integer(), nullable=False),
        sa.Column("label_sv", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("survey", "question_id", "answer_code"),
        schema="core",
        comment="One row per answer option of one question.",
    )


def _create_fact(name: str, comment: str, *columns: sa.Column[Any]) -> None:
    """A fact table of cells plus the index behind the BI tools' usual filter."""
    op.create_table(
        name,
        *_partition_columns(),
        *_cell_key_columns(),
        *columns,
        sa.Column("suppressed", sa.Boolean(), nullable=False),
        schema="core",
        comment=comment,
    )
    op.create_index(
        f"ix_{name}_area", name, ["survey", "year", "level", "area_code"], schema="core"
    )


def _create_facts() -> None:
    _create_fact(
        "fct_results",
        "One row per survey, year, level, area, verksamhet, gender and question.",
        sa.Column("question_id", sa.String(), nullable=False),
        sa.Column("n_valid", sa.BigInteger(), nullable=True),
        sa.Column("n_positive", sa.BigInteger(), nullable=True),
        sa.Column("pct_positive", sa.Double(), nullable=True),
        sa.Column("ci_low", sa.Double(), nullable=True),
        sa.Column("ci_high", sa.Double(), nullable=True),
    )
    _create_fact(
        "fct_answer_distribution",
        "One row per survey, year, level, area, verksamhet, gender, question and answer.",
        sa.Column("question_id", sa.String(), nullable=False),
        sa.Column("answer_code", sa.Integer(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=True),
        sa.Column("pct", sa.Double(), nullable=True),
    )
    _create_fact(
        "fct_response_counts",
        "One row per survey, year, level, area, verksamhet and gender.",
        sa.Column("n_respondents", sa.BigInteger(), nullable=True),
        sa.Column("n_distributed", sa.BigInteger(), nullable=True),
        sa.Column("response_rate", sa.Double(), nullable=True),
    )


# --- reporting views: portable SQL (DuckDB and PostgreSQL) -----------------------------------
# An enhet cell's area_code is "{kommun_kod}-{enhet_id}"; its name is the kommun's and the unit's.
CELL_COLUMNS = """
    f.survey, f.year, f.level, f.area_code,
    CASE f.level
        WHEN 'riket' THEN 'Riket'
        WHEN 'lan' THEN l.lan_namn
        WHEN 'kommun' THEN k.kommun_namn
        WHEN 'enhet' THEN
            k.kommun_namn || ' ' || SUBSTRING(f.area_code FROM LENGTH(f.kommun_kod) + 2)
    END AS area_name,
    f.kommun_kod, f.lan_kod, f.verksamhet, v.name_sv AS verksamhet_name, f.gender"""

CELL_JOINS = """
    LEFT JOIN core.dim_kommun AS k ON k.kommun_kod = f.kommun_kod
    LEFT JOIN core.dim_lan AS l ON l.lan_kod = f.lan_kod
    LEFT JOIN core.dim_verksamhet AS v ON v.survey = f.survey AND v.verksamhet = f.verksamhet"""

QUESTION_COLUMNS = """
    f.question_id, q.text_sv AS question_text, q.kolada_short, q.quality_area"""

QUESTION_JOIN = """
    LEFT JOIN core.dim_question AS q ON q.survey = f.survey AND q.question_id = f.question_id"""


def _cell_view(fact: str, columns: str, joins: str = "") -> str:
    """A view of one fact table with the cell's Swedish labels joined from the dimensions."""
    return f"SELECT {CELL_COLUMNS},{columns}\nFROM core.{fact} AS f{CELL_JOINS}{joins}"


VIEWS: dict[str, tuple[str, str]] = {
    "results": (
        "One row per survey, year, level, area, verksamhet, gender and question: "
        "the share of positive answers; NULL figures where suppressed.",
        _cell_view(
            "fct_results",
            QUESTION_COLUMNS
            + """,
    f.n_valid, f.n_positive, f.pct_positive, f.ci_low, f.ci_high, f.suppressed""",
            QUESTION_JOIN,
        ),
    ),
    "answer_distribution": (
        "One row per survey, year, level, area, verksamhet, gender, question and answer option: "
        "its share among the valid answers; NULL figures where suppressed.",
        _cell_view(
            "fct_answer_distribution",
            QUESTION_COLUMNS
            + """,
    f.answer_code, a.label_sv AS answer_label, a.role, f.n, f.pct, f.suppressed""",
            QUESTION_JOIN
            + """
    LEFT JOIN core.dim_answer_option AS a
        ON a.survey = f.survey AND a.question_id = f.question_id
        AND a.answer_code = f.answer_code""",
        ),
    ),
    "response_counts": (
        "One row per survey, year, level, area, verksamhet and gender: respondents, "
        "questionnaires handed out and the response rate; NULL figures where suppressed.",
        _cell_view(
            "fct_response_counts",
            """
    f.n_respondents, f.n_distributed, f.response_rate, f.suppressed""",
        ),
    ),
    "load_history": (
        "One row per file per load (a load that read no file has one row without file): "
        "where the data came from and what became of it.",
        """SELECT
    l.load_id, l.survey, l.year, l.flow_run_id, l.status AS load_status,
    f.source_file, f.kind AS file_kind, f.source_url, f.fetched_at, f.landing_url, f.sha256,
    f.rows_read, f.rows_loaded, f.rows_quarantined,
    f.status, f.error, l.error AS load_error, f.loaded_at, l.started_at, l.finished_at
FROM audit.loads AS l
    LEFT JOIN audit.load_files AS f ON f.load_id = l.load_id""",
    ),
}


def _create_views() -> None:
    for name, (comment, select) in VIEWS.items():
        op.execute(f"CREATE VIEW reporting.{name} AS\n{select}")
        op.execute(f"COMMENT ON VIEW reporting.{name} IS '{comment}'")


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS audit")
    for schema in NEW_SCHEMAS:
        op.execute(f"CREATE SCHEMA {schema}")
    _create_audit_tables()
    _create_raw_tables()
    _create_dimensions()
    _create_facts()
    _create_views()


TABLES_TO_DROP: dict[str, tuple[str, ...]] = {
    "core": (
        "fct_results",
        "fct_answer_distribution",
        "fct_response_counts",
        "dim_answer_option",
        "dim_question",
        "dim_verksamhet",
        "dim_lan",
        "dim_kommun",
        "dim_survey",
    ),
    "raw": ("respondents", "answers", "quarantine"),
    "audit": ("load_files", "loads"),
}


def downgrade() -> None:
    for name in VIEWS:
        op.execute(f"DROP VIEW reporting.{name}")
    for schema, tables in TABLES_TO_DROP.items():
        for table in tables:
            op.drop_table(table, schema=schema)
    op.execute(sa.schema.DropSequence(LOAD_ID_SEQUENCE))
    for schema in NEW_SCHEMAS:
        op.execute(f"DROP SCHEMA {schema}")
