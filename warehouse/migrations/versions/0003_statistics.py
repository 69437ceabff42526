"""Statistics across cells: trends, quality areas, and the reconciliation with Kolada.

The views are portable SQL (DuckDB and PostgreSQL) over the published figures in the reporting
views, so they stay right whenever any year is re-loaded. A trend's significance uses the
critical value recorded with the load that published the newer year (``z_critical`` in
``audit.loads.settings``); a load that recorded none calls nothing significant.

Revision ID: 0003_statistics
Revises: 0002_production
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_statistics"
down_revision: str | None = "0002_production"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Kolada's rounding: shares are published to whole percent, so a larger gap is a real difference
KOLADA_TOLERANCE = 0.5

SAME_CELL = """
        {a}.survey = {b}.survey AND {a}.level = {b}.level AND {a}.area_code = {b}.area_code
        AND {a}.verksamhet = {b}.verksamhet AND {a}.gender = {b}.gender"""

TRENDS = f"""
WITH published_load AS (
    SELECT survey, year, MAX(load_id) AS load_id
    FROM audit.loads WHERE status = 'published' GROUP BY survey, year
),
critical AS (
    SELECT p.survey, p.year,
        CAST(CAST(l.settings AS JSON) ->> 'z_critical' AS DOUBLE PRECISION) AS z_critical
    FROM published_load AS p JOIN audit.loads AS l ON l.load_id = p.load_id
),
paired AS (
    SELECT c.*,
        p.n_valid AS prev_n_valid, p.n_positive AS prev_n_positive,
        p.pct_positive AS prev_pct_positive, p.suppressed AS prev_suppressed,
        CAST(c.n_positive + p.n_positive AS DOUBLE PRECISION)
            / NULLIF(c.n_valid + p.n_valid, 0) AS pooled_share,
        k.z_critical
    FROM reporting.results AS c
        LEFT JOIN reporting.results AS p ON {SAME_CELL.format(a="p", b="c")}
            AND p.year = c.year - 1 AND p.question_id = c.question_id
        LEFT JOIN critical AS k ON k.survey = c.survey AND k.year = c.year
),
tested AS (
    SELECT paired.*,
        pct_positive - prev_pct_positive AS change_pp,
        (pct_positive - prev_pct_positive) / 100 / NULLIF(SQRT(
            pooled_share * (1 - pooled_share)
            * (1.0 / NULLIF(n_valid, 0) + 1.0 / NULLIF(prev_n_valid, 0))
        ), 0) AS z_score
    FROM paired
)
SELECT survey, year, level, area_code, area_name, kommun_kod, lan_kod, verksamhet,
    verksamhet_name, gender, question_id, question_text, kolada_short, quality_area,
    n_valid, n_positive, pct_positive, suppressed,
    prev_n_valid, prev_n_positive, prev_pct_positive, prev_suppressed,
    change_pp, z_score, z_critical,
    COALESCE(NOT suppressed AND NOT prev_suppressed AND ABS(z_score) > z_critical, FALSE)
        AS significant
FROM tested"""

QUALITY_AREAS = f"""
WITH survey_years AS (
    SELECT DISTINCT survey, year FROM reporting.results
),
asked AS (
    SELECT DISTINCT y.survey, y.year, v.verksamhet, q.quality_area, q.question_id
    FROM survey_years AS y
        JOIN core.dim_verksamhet AS v ON v.survey = y.survey
        JOIN core.dim_verksamhet AS e ON e.survey = y.survey AND e.kind = 'enkat'
            AND (e.first_year IS NULL OR e.first_year <= y.year)
            AND (e.last_year IS NULL OR y.year <= e.last_year)
            AND (e.verksamhet = v.verksamhet OR (v.kind = 'composite' AND (v.members = '*'
                OR ';' || v.members || ';' LIKE '%;' || e.verksamhet || ';%')))
        JOIN core.dim_questionnaire AS qn
            ON qn.survey = y.survey AND qn.verksamhet = e.verksamhet
        JOIN core.dim_question AS q ON q.survey = qn.survey AND q.question_id = qn.question_id
            AND (q.first_year IS NULL OR q.first_year <= y.year)
            AND (q.last_year IS NULL OR y.year <= q.last_year)
),
expected AS (
    SELECT survey, year, verksamhet, quality_area, COUNT(*) AS n_questions
    FROM asked GROUP BY survey, year, verksamhet, quality_area
),
cells AS (
    SELECT DISTINCT survey, year, level, area_code, area_name, kommun_kod, lan_kod,
        verksamhet, verksamhet_name, gender
    FROM reporting.results
),
published AS (
    SELECT r.survey, r.year, r.level, r.area_code, r.verksamhet, r.gender, a.quality_area,
        COUNT(r.pct_positive) AS n_published, AVG(r.pct_positive) AS mean_pct
    FROM reporting.results AS r
        JOIN asked AS a ON a.survey = r.survey AND a.year = r.year
            AND a.verksamhet = r.verksamhet AND a.question_id = r.question_id
    GROUP BY r.survey, r.year, r.level, r.area_code, r.verksamhet, r.gender, a.quality_area
)
SELECT c.survey, c.year, c.level, c.area_code, c.area_name, c.kommun_kod, c.lan_kod,
    c.verksamhet, c.verksamhet_name, c.gender, e.quality_area, e.n_questions,
    COALESCE(p.n_published, 0) AS n_published,
    CASE WHEN p.n_published = e.n_questions THEN p.mean_pct END AS index_value,
    COALESCE(p.n_published, 0) < e.n_questions AS suppressed
FROM cells AS c
    JOIN expected AS e
        ON e.survey = c.survey AND e.year = c.year AND e.verksamhet = c.verksamhet
    LEFT JOIN published AS p ON {SAME_CELL.format(a="p", b="c")}
        AND p.year = c.year AND p.quality_area = e.quality_area"""

# Kolada's areas: a kommun by its code, a län (region) as "00" + län code, riket as "0000".
KOLADA_COMPARISON = f"""
WITH published AS (
    SELECT v.kpi, d.title AS kpi_title, v.year, v.municipality_id, v.gender, v.value, v.status,
        d.survey, d.verksamhet, d.question_id, d.measure,
        CASE
            WHEN v.municipality_id = '0000' THEN 'riket'
            WHEN SUBSTRING(v.municipality_id FROM 1 FOR 2) = '00' THEN 'lan'
            ELSE 'kommun'
        END AS level,
        CASE
            WHEN v.municipality_id <> '0000' AND SUBSTRING(v.municipality_id FROM 1 FOR 2) = '00'
            THEN SUBSTRING(v.municipality_id FROM 3 FOR 2)
            ELSE v.municipality_id
        END AS area_code
    FROM core.kolada_values AS v JOIN core.dim_kolada_kpi AS d ON d.kpi_id = v.kpi
),
ours AS (
    SELECT survey, year, level, area_code, area_name, verksamhet, gender, question_id,
        'positive' AS measure, pct_positive AS value
    FROM reporting.results
    UNION ALL
    SELECT survey, year, level, area_code, MAX(area_name), verksamhet, gender, question_id,
        role, SUM(pct)
    FROM reporting.answer_distribution WHERE role IN ('middle', 'negative')
    GROUP BY survey, year, level, area_code, verksamhet, gender, question_id, role
    UNION ALL
    SELECT survey, year, level, area_code, area_name, verksamhet, gender, '',
        'svarsfrekvens', response_rate
    FROM reporting.response_counts
    UNION ALL
    SELECT survey, year, level, area_code, area_name, verksamhet, gender, '',
        'antal_svar', CAST(n_respondents AS DOUBLE PRECISION)
    FROM reporting.response_counts
)
SELECT p.kpi, p.kpi_title, p.year, p.municipality_id, p.level, p.area_code, o.area_name,
    p.gender, p.survey, p.verksamhet, p.question_id, p.measure, p.status AS published_status,
    p.value AS published_value, o.value AS our_value, o.value - p.value AS difference,
    CASE
        WHEN p.value IS NULL AND o.value IS NULL THEN FALSE
        WHEN p.value IS NULL OR o.value IS NULL THEN TRUE
        ELSE ABS(o.value - p.value) > {KOLADA_TOLERANCE}
    END AS differs
FROM published AS p
    JOIN ours AS o ON o.survey = p.survey AND o.year = p.year AND o.level = p.level
        AND o.area_code = p.area_code AND o.verksamhet = p.verksamhet
        AND o.gender = p.gender AND o.question_id = p.question_id AND o.measure = p.measure"""

VIEWS: dict[str, tuple[str, str]] = {
    "trends": (
        "One row per published cell and question: the same cell the year before, the change in "
        "percentage points and whether it is significant (two-proportion z-test).",
        TRENDS,
    ),
    "quality_areas": (
        "One row per cell and quality area: the mean share of positive answers over the "
        "area''s questions, only where every question the enkät asks that year is published.",
        QUALITY_AREAS,
    ),
    "kolada_comparison": (
        "One row per Kolada KPI, year, area and gender where we have the cell: Kolada''s "
        f"published value, ours, the difference, and whether it exceeds {KOLADA_TOLERANCE}.",
        KOLADA_COMPARISON,
    ),
}


def upgrade() -> None:
    op.create_table(
        "dim_questionnaire",
        sa.Column("survey", sa.String(), nullable=False),
        sa.Column("verksamhet", sa.String(), nullable=False),
        sa.Column("question_id", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("survey", "verksamhet", "question_id"),
        schema="core",
        comment="One row per question an enkät asks (in the years the question exists).",
    )
    op.create_table(
        "dim_kolada_kpi",
        sa.Column("kpi_id", sa.String(), nullable=False),
        sa.Column("survey", sa.String(), nullable=False),
        sa.Column("verksamhet", sa.String(), nullable=False),
        sa.Column("question_id", sa.String(), nullable=False),
        sa.Column("measure", sa.String(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("kpi_id"),
        schema="core",
        comment="One row per Kolada KPI the project reconciles: which figure of ours it publishes.",
    )
    op.create_table(
        "kolada_values",
        sa.Column("kpi", sa.String(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("municipality_id", sa.String(), nullable=False),
        sa.Column("gender", sa.String(), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("count", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kpi", "year", "municipality_id", "gender"),
        schema="core",
        comment="One row per Kolada KPI, year, area and gender, as Kolada published it.",
    )
    for name, (comment, select) in VIEWS.items():
        op.execute(f"CREATE VIEW reporting.{name} AS\n{select}")
        op.execute(f"COMMENT ON VIEW reporting.{name} IS '{comment}'")


def downgrade() -> None:
    for name in reversed(VIEWS):
        op.execute(f"DROP VIEW reporting.{name}")
    for table in ("kolada_values", "dim_kolada_kpi", "dim_questionnaire"):
        op.drop_table(table, schema="core")
