"""The warehouse tables as SQLAlchemy Core metadata: the model the loader writes to.

The migrations in ``warehouse/migrations`` create these tables; a test checks that the newest
migration and this module agree, so a change here without a migration fails loudly.

Raw and fact tables carry no primary key: their grain is enforced by the frame contracts
(``schemas/frames.py``) before anything is loaded, and on DuckDB a unique index over tens of
millions of answers costs more time and disk than the table itself. Every table is portable
SQL (DuckDB and PostgreSQL); DuckDB cannot reference a table in another schema, so only
``audit.load_files`` has a foreign key.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Sequence,
    String,
    Table,
    Text,
)

from schemas.frames import FILE_KINDS

RAW = "raw"
CORE = "core"
AUDIT = "audit"
REPORTING = "reporting"
STAGING = "staging"
SCHEMAS: tuple[str, ...] = (RAW, CORE, AUDIT, REPORTING, STAGING)

LOAD_STATUSES: tuple[str, ...] = ("running", "published", "failed")
FILE_STATUSES: tuple[str, ...] = ("loaded", "refused")
AUDIT_STATUSES: tuple[str, ...] = ("passed", "warned", "failed")
EXPECTATION_SEVERITIES: tuple[str, ...] = ("critical", "warning")
BI_ROLE = "brukardata_bi"

metadata = MetaData()


def _in(column: str, values: tuple[str, ...]) -> str:
    """A CHECK expression restricting ``column`` to ``values``."""
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def _partition_columns() -> list[Column[Any]]:
    """The (survey, year) a row belongs to and the load that wrote it."""
    return [
        Column("survey", String, nullable=False),
        Column("year", Integer, nullable=False),
        Column("load_id", Integer, nullable=False),
    ]


def _cell_key_columns() -> list[Column[Any]]:
    """The keys of a published cell (``schemas.frames._CellKeys``)."""
    return [
        Column("level", String, nullable=False),
        Column("area_code", String, nullable=False),
        Column("kommun_kod", String),
        Column("lan_kod", String),
        Column("verksamhet", String, nullable=False),
        Column("gender", String, nullable=False),
    ]


def _bi_index(table_name: str) -> Index:
    """The index behind the BI tools' usual filter: one survey-year, one level, some areas.

    PostgreSQL's only: DuckDB answers that filter by skipping row groups whether or not the
    index exists, so there it would only slow the publish that rewrites it.
    """
    return Index(f"ix_{table_name}_area", "survey", "year", "level", "area_code").ddl_if(
        dialect="postgresql"
    )


# --- audit ----------------------------------------------------------------------------------
loads = Table(
    "loads",
    metadata,
    Column(
        "load_id",
        Integer,
        Sequence("loads_load_id_seq", schema=AUDIT),
        primary_key=True,
    ),
    Column("survey", String, nullable=False),
    Column("year", Integer, nullable=False),
    Column("flow_run_id", String),
    Column("source", String, nullable=False),
    Column("status", String, nullable=False),
    Column("error", Text),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("rows_read", BigInteger),
    Column("rows_loaded", BigInteger),
    Column("rows_quarantined", BigInteger),
    Column("files_refused", Integer),
    Column("settings", Text, nullable=False),  # JSON: threshold and the other run settings
    CheckConstraint(_in("status", LOAD_STATUSES), name="ck_loads_status"),
    schema=AUDIT,
    comment="One row per load of one (survey, year).",
)

load_files = Table(
    "load_files",
    metadata,
    Column("load_id", Integer, ForeignKey(loads.c.load_id), primary_key=True),
    Column("source_file", String, primary_key=True),
    Column("kind", String, nullable=False),
    Column("source_url", String, nullable=False),
    Column("fetched_at", DateTime(timezone=True), nullable=False),
    Column("landing_url", String),
    Column("sha256", String, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("rows_read", BigInteger, nullable=False),
    Column("rows_loaded", BigInteger, nullable=False),
    Column("rows_quarantined", BigInteger, nullable=False),
    Column("kommun_kod_padded", BigInteger, nullable=False),
    Column("status", String, nullable=False),
    Column("error", Text),
    Column("loaded_at", DateTime(timezone=True), nullable=False),
    CheckConstraint(_in("status", FILE_STATUSES), name="ck_load_files_status"),
    CheckConstraint(_in("kind", FILE_KINDS), name="ck_load_files_kind"),
    schema=AUDIT,
    comment="One row per input file per load.",
)

load_audits = Table(
    "load_audits",
    metadata,
    # no foreign key: DuckDB refuses to update a referenced row, and loads rows get updated
    Column("load_id", Integer, primary_key=True, autoincrement=False),
    Column("status", String, nullable=False),
    Column("audited_at", DateTime(timezone=True), nullable=False),
    Column("data_docs_path", String),
    CheckConstraint(_in("status", AUDIT_STATUSES), name="ck_load_audits_status"),
    schema=AUDIT,
    comment="One row per audited load: the verdict and where its Data Docs are.",
)

expectation_results = Table(
    "expectation_results",
    metadata,
    Column("load_id", Integer, nullable=False),
    Column("expectation", String, nullable=False),
    Column("column_name", String),
    Column("severity", String, nullable=False),
    Column("success", Boolean, nullable=False),
    Column("observed", Text),  # JSON: what the expectation saw (counts, unexpected values)
    CheckConstraint(
        _in("severity", EXPECTATION_SEVERITIES), name="ck_expectation_results_severity"
    ),
    schema=AUDIT,
    comment="One row per expectation of the audit of one load.",
)

reporting_views = Table(
    "reporting_views",
    metadata,
    Column("view_name", String, primary_key=True),
    Column("fingerprint", String, nullable=False),  # sha256 of its query and comments
    schema=AUDIT,
    comment="One row per reporting view: the fingerprint of the definition it was made from.",
)

rerun_requests = Table(
    "rerun_requests",
    metadata,
    Column(
        "rerun_id",
        Integer,
        Sequence("rerun_requests_rerun_id_seq", schema=AUDIT),
        primary_key=True,
    ),
    Column("survey", String, nullable=False),
    Column("year", Integer, nullable=False),
    Column("kommuner", Text),  # the kommuner asked for, ";"-separated; NULL = every one
    Column("force", Boolean, nullable=False),
    Column("requested_by", String, nullable=False),
    Column("reason", Text, nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("outcome", String),  # replaced | unchanged | failed
    Column("load_id", Integer),
    Column("changed_files", Text),  # ";"-separated
    Column("replaced_kommuner", Text),  # ";"-separated
    Column("rows_replaced", BigInteger),
    schema=AUDIT,
    comment="One row per requested re-run: who asked, why and what it replaced.",
)

# --- raw: respondent level, never granted to BI ----------------------------------------------
respondents = Table(
    "respondents",
    metadata,
    *_partition_columns(),
    Column("respondent_id", BigInteger, nullable=False),
    Column("source_file", String, nullable=False),
    Column("row_number", BigInteger, nullable=False),
    Column("kommun_kod", String, nullable=False),
    Column("lan_kod", String, nullable=False),
    Column("verksamhet", String, nullable=False),
    Column("enhet_id", String, nullable=False),
    Column("svar_id", String, nullable=False),
    Column("gender", String, nullable=False),  # K, M or X (unknown): the export's kon
    schema=RAW,
    comment="One row per accepted questionnaire of the published load of one (survey, year).",
)

answers = Table(
    "answers",
    metadata,
    *_partition_columns(),
    Column("respondent_id", BigInteger, nullable=False),
    Column("question_id", String, nullable=False),
    Column("answer_code", Integer, nullable=False),
    schema=RAW,
    comment="One row per answered question of an accepted questionnaire.",
)

quarantine = Table(
    "quarantine",
    metadata,
    *_partition_columns(),
    Column("source_file", String, nullable=False),
    Column("row_number", BigInteger, nullable=False),
    Column("kommun_kod", String, nullable=False),
    Column("svar_id", String, nullable=False),
    Column("reasons", Text, nullable=False),
    Column("original", Text, nullable=False),  # JSON object of the row's original cells
    schema=RAW,
    comment="One row per refused row of an accepted file, with every reason.",
)

distributed = Table(
    "distributed",
    metadata,
    *_partition_columns(),
    Column("kommun_kod", String, nullable=False),
    Column("verksamhet", String, nullable=False),
    Column("antal_utdelade", BigInteger, nullable=False),
    schema=RAW,
    comment="One row per kommun and enkät: questionnaires handed out, as published.",
)

# --- core: dimensions from the reference catalogue -------------------------------------------
dim_survey = Table(
    "dim_survey",
    metadata,
    Column("survey", String, primary_key=True),
    Column("name_sv", String, nullable=False),
    schema=CORE,
    comment="One row per survey.",
)

dim_kommun = Table(
    "dim_kommun",
    metadata,
    Column("kommun_kod", String, primary_key=True),
    Column("kommun_namn", String, nullable=False),
    Column("lan_kod", String, nullable=False),
    schema=CORE,
    comment="One row per kommun.",
)

dim_lan = Table(
    "dim_lan",
    metadata,
    Column("lan_kod", String, primary_key=True),
    Column("lan_namn", String, nullable=False),
    schema=CORE,
    comment="One row per län.",
)

dim_gender = Table(
    "dim_gender",
    metadata,
    Column("gender", String, primary_key=True),
    Column("label_sv", String, nullable=False),
    schema=CORE,
    comment="One row per gender code of the published figures (T, K, M).",
)

dim_verksamhet = Table(
    "dim_verksamhet",
    metadata,
    Column("survey", String, primary_key=True),
    Column("verksamhet", String, primary_key=True),
    Column("name_sv", String, nullable=False),
    Column("kind", String, nullable=False),  # enkat | composite
    Column("members", String, nullable=False),  # a composite's enkäter, ";"-separated or "*"
    Column("first_year", Integer),
    Column("last_year", Integer),
    schema=CORE,
    comment="One row per enkät or composite group of a survey.",
)

dim_question = Table(
    "dim_question",
    metadata,
    Column("survey", String, primary_key=True),
    Column("question_id", String, primary_key=True),
    Column("text_sv", Text, nullable=False),
    Column("kolada_short", String, nullable=False),
    Column("quality_area", String, nullable=False),
    Column("scale_id", String, nullable=False),
    Column("first_year", Integer),
    Column("last_year", Integer),
    Column("question_order", Integer),  # its place in the survey's questionnaire, from 1
    schema=CORE,
    comment="One row per question of a survey.",
)

dim_answer_option = Table(
    "dim_answer_option",
    metadata,
    Column("survey", String, primary_key=True),
    Column("question_id", String, primary_key=True),
    Column("answer_code", Integer, primary_key=True),
    Column("label_sv", String, nullable=False),
    Column("role", String, nullable=False),  # positive | middle | negative | excluded
    schema=CORE,
    comment="One row per answer option of one question.",
)

# --- core: facts, only the published load of each (survey, year) ------------------------------
fct_results = Table(
    "fct_results",
    metadata,
    *_partition_columns(),
    *_cell_key_columns(),
    Column("question_id", String, nullable=False),
    Column("n_valid", BigInteger),
    Column("n_positive", BigInteger),
    Column("pct_positive", Double),
    Column("ci_low", Double),
    Column("ci_high", Double),
    Column("suppressed", Boolean, nullable=False),
    Column("suppression_reason", String),  # few_answers | protects_other; NULL where shown
    _bi_index("fct_results"),
    schema=CORE,
    comment="One row per survey, year, level, area, verksamhet, gender and question.",
)

fct_answer_distribution = Table(
    "fct_answer_distribution",
    metadata,
    *_partition_columns(),
    *_cell_key_columns(),
    Column("question_id", String, nullable=False),
    Column("answer_code", Integer, nullable=False),
    Column("n", BigInteger),
    Column("pct", Double),
    Column("suppressed", Boolean, nullable=False),
    Column("suppression_reason", String),  # few_answers | protects_other; NULL where shown
    _bi_index("fct_answer_distribution"),
    schema=CORE,
    comment="One row per survey, year, level, area, verksamhet, gender, question and answer.",
)

fct_response_counts = Table(
    "fct_response_counts",
    metadata,
    *_partition_columns(),
    *_cell_key_columns(),
    Column("n_respondents", BigInteger),
    Column("n_distributed", BigInteger),
    Column("response_rate", Double),
    Column("suppressed", Boolean, nullable=False),
    Column("suppression_reason", String),  # few_answers | protects_other; NULL where shown
    Column("n_covered", BigInteger),  # respondents of the parts with a hand-out count
    _bi_index("fct_response_counts"),
    schema=CORE,
    comment="One row per survey, year, level, area, verksamhet and gender.",
)


# --- staging: a load waits here, tagged with its load id, until its audit passes ------------
def _staging_twin(table: Table, comment: str) -> Table:
    """An index-free table of ``table``'s columns in ``staging`` (the migration copies them)."""
    columns = [Column(column.name, column.type) for column in table.columns]
    return Table(table.name, metadata, *columns, schema=STAGING, comment=comment)


STAGED: dict[Table, Table] = {
    published: _staging_twin(published, comment)
    for published, comment in (
        (respondents, "One row per accepted questionnaire of a load in audit."),
        (answers, "One row per answered question of a load in audit."),
        (quarantine, "One row per refused row of a load in audit."),
        (distributed, "One row per kommun and enkät of a load in audit."),
        (fct_results, "One row per result cell of a load in audit."),
        (fct_answer_distribution, "One row per answer-distribution cell of a load in audit."),
        (fct_response_counts, "One row per response-count cell of a load in audit."),
    )
}

# --- core: statistics beyond one cell (quality areas) and Kolada's published figures ----------
dim_questionnaire = Table(
    "dim_questionnaire",
    metadata,
    Column("survey", String, primary_key=True),
    Column("verksamhet", String, primary_key=True),
    Column("question_id", String, primary_key=True),
    schema=CORE,
    comment="One row per question an enkät asks (in the years the question exists).",
)

dim_kolada_kpi = Table(
    "dim_kolada_kpi",
    metadata,
    Column("kpi_id", String, primary_key=True),
    Column("survey", String, nullable=False),
    Column("verksamhet", String, nullable=False),
    Column("question_id", String, nullable=False),  # "" for a KPI about respondents
    Column("measure", String, nullable=False),
    Column("title", Text, nullable=False),
    schema=CORE,
    comment="One row per Kolada KPI the project reconciles: which figure of ours it publishes.",
)

kolada_values = Table(
    "kolada_values",
    metadata,
    Column("kpi", String, primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("municipality_id", String, primary_key=True),
    Column("gender", String, primary_key=True),
    Column("value", Double),
    Column("count", BigInteger),
    Column("status", String),
    Column("fetched_at", DateTime(timezone=True), nullable=False),
    schema=CORE,
    comment="One row per Kolada KPI, year, area and gender, as Kolada published it.",
)
