"""Figures that say what they mean, and the statements of a municipality's press release.

- ``response_counts`` publishes the respondents its rate is computed on
  (``n_respondents_with_distributed``: rate = 100 · it / ``n_distributed`` on every row).
- ``results`` says how län and riket figures aggregate (``aggregation = 'pooled'``) and adds,
  beside them, Kolada's convention: the unweighted mean of the published kommun figures.
- ``trends``: ``significant`` is NULL where nothing can be tested, and ``comparable`` is FALSE
  where the two years' cells are not the same population (a län's or riket's set of kommuner,
  or a composite group's enkäter, changed); a change that is not comparable is never tested.
- ``quality_areas``: the area figure is this project's unweighted mean of question shares, not
  an SKR measure (``unweighted_mean_pct``); ``not_applicable`` (the verksamhet does not ask every
  question of the area) is told apart from ``suppressed``.
- ``kolada_comparison`` flags a figure whose half-up rounding differs from Kolada's.
- New: ``rankings``, ``verksamhet_means``, ``all_answers`` and ``gender_differences`` — the
  figures of a press release, each over published figures only, so nothing hidden can be
  recovered from them.

A trend and a gender difference are tested by one two-proportion z-test (``_z_test``) at the
critical value recorded with the load that published the year.

Revision ID: 0005_figures
Revises: 0004_disclosure
Create Date: 2026-11-29
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005_figures"
down_revision: str | None = "0004_disclosure"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The revisions that last created the views this one rebuilds: a downgrade restores theirs.
PREVIOUS_CELLS = "0004_disclosure"  # results, response_counts (0001's, with its column)
PREVIOUS_STATISTICS = "0003_statistics"  # trends, quality_areas, kolada_comparison


def _revision(name: str) -> Any:
    """An earlier revision's module: its SQL is frozen, so this one builds on it."""
    return importlib.import_module(f"warehouse.migrations.versions.{name}")


def _changed(sql: str, changes: dict[str, str]) -> str:
    """``sql`` with each fragment replaced, each found exactly once (else the SQL is not what
    this revision was written against)."""
    for old, new in changes.items():
        if sql.count(old) != 1:
            raise ValueError(f"expected exactly one {old.strip()[:60]!r} in the previous SQL")
        sql = sql.replace(old, new)
    return sql


STATISTICS = _revision(PREVIOUS_STATISTICS)
SAME_CELL: str = STATISTICS.SAME_CELL
SAME_PLACE = _changed(SAME_CELL, {" AND {a}.gender = {b}.gender": ""})

# The critical value of the z-test, per survey and year: the one the publishing load recorded
# (the CTEs that open the previous trends, up to its pairing).
CRITICAL = STATISTICS.TRENDS[: STATISTICS.TRENDS.index(",\npaired AS")].removeprefix("\nWITH ")

# Where a composite group's member enkäter differ between a year and the year before.
MEMBER = """(
    {group}.members = '*'
    OR ';' || {group}.members || ';' LIKE '%;' || {enkat}.verksamhet || ';%')"""


def _z_test(a: str, b: str) -> tuple[str, str]:
    """The z-score of the difference of two shares (``{a}_…`` minus ``{b}_…`` columns), and
    whether it is significant: NULL where it cannot be tested (a share missing or no critical
    value), FALSE where both shares are equal at 0 or 100 % (no variance, no difference)."""
    pooled = (
        f"CAST({a}_n_positive + {b}_n_positive AS DOUBLE PRECISION)"
        f" / NULLIF({a}_n_valid + {b}_n_valid, 0)"
    )
    z_score = (
        f"({a}_pct_positive - {b}_pct_positive) / 100 / NULLIF(SQRT({pooled} * (1 - {pooled})"
        f" * (1.0 / NULLIF({a}_n_valid, 0) + 1.0 / NULLIF({b}_n_valid, 0))), 0)"
    )
    significant = (
        f"CASE WHEN {a}_pct_positive IS NOT NULL AND {b}_pct_positive IS NOT NULL"
        f" AND z_critical IS NOT NULL THEN COALESCE(ABS({z_score}) > z_critical, FALSE) END"
    )
    return z_score, significant


TREND_Z, TREND_SIGNIFICANT = _z_test("this", "prev")

TRENDS = f"""
WITH {CRITICAL},
kommuner AS (
    SELECT survey, year, verksamhet, 'lan' AS level, lan_kod AS area_code, kommun_kod
    FROM reporting.response_counts WHERE level = 'kommun' AND gender = 'T'
    UNION ALL
    SELECT survey, year, verksamhet, 'riket', '0000', kommun_kod
    FROM reporting.response_counts WHERE level = 'kommun' AND gender = 'T'
),
kommuner_kept AS (
    SELECT c.survey, c.year, c.level, c.area_code, c.verksamhet,
        COUNT(*) AS n_kommuner, COUNT(p.kommun_kod) AS n_kept
    FROM kommuner AS c
        LEFT JOIN kommuner AS p ON p.survey = c.survey AND p.year = c.year - 1
            AND p.level = c.level AND p.area_code = c.area_code
            AND p.verksamhet = c.verksamhet AND p.kommun_kod = c.kommun_kod
    GROUP BY c.survey, c.year, c.level, c.area_code, c.verksamhet
),
kommuner_changed AS (
    SELECT c.survey, c.year, c.level, c.area_code, c.verksamhet
    FROM kommuner_kept AS c
        LEFT JOIN kommuner_kept AS p ON p.survey = c.survey AND p.year = c.year - 1
            AND p.level = c.level AND p.area_code = c.area_code AND p.verksamhet = c.verksamhet
    WHERE c.n_kept < c.n_kommuner OR c.n_kept < COALESCE(p.n_kommuner, 0)
),
enkater_changed AS (
    SELECT DISTINCT g.survey, y.year, g.verksamhet
    FROM core.dim_verksamhet AS g
        JOIN (SELECT DISTINCT survey, year FROM reporting.results) AS y ON y.survey = g.survey
        JOIN core.dim_verksamhet AS e ON e.survey = g.survey AND e.kind = 'enkat'
            AND {MEMBER.format(group="g", enkat="e")}
    WHERE g.kind = 'composite' AND (e.first_year = y.year OR e.last_year = y.year - 1)
),
paired AS (
    SELECT c.*,
        c.n_valid AS this_n_valid, c.n_positive AS this_n_positive,
        c.pct_positive AS this_pct_positive,
        p.n_valid AS prev_n_valid, p.n_positive AS prev_n_positive,
        p.pct_positive AS prev_pct_positive, p.suppressed AS prev_suppressed,
        CASE WHEN p.suppressed IS NOT NULL
            THEN kc.survey IS NULL AND ec.survey IS NULL END AS comparable,
        k.z_critical
    FROM reporting.results AS c
        LEFT JOIN reporting.results AS p ON {SAME_CELL.format(a="p", b="c")}
            AND p.year = c.year - 1 AND p.question_id = c.question_id
        LEFT JOIN kommuner_changed AS kc ON {SAME_PLACE.format(a="kc", b="c")}
            AND kc.year = c.year
        LEFT JOIN enkater_changed AS ec ON ec.survey = c.survey AND ec.year = c.year
            AND ec.verksamhet = c.verksamhet
        LEFT JOIN critical AS k ON k.survey = c.survey AND k.year = c.year
)
SELECT survey, year, level, area_code, area_name, kommun_kod, lan_kod, verksamhet,
    verksamhet_name, gender, question_id, question_text, kolada_short, quality_area,
    n_valid, n_positive, pct_positive, suppressed,
    prev_n_valid, prev_n_positive, prev_pct_positive, prev_suppressed,
    pct_positive - prev_pct_positive AS change_pp, comparable,
    {TREND_Z} AS z_score, z_critical,
    CASE WHEN comparable THEN {TREND_SIGNIFICANT} END AS significant
FROM paired"""

# The questions of each quality area in a year, whatever enkät asks them.
AREA_QUESTIONS = """
),
area_questions AS (
    SELECT y.survey, y.year, q.quality_area, COUNT(*) AS n_area_questions
    FROM survey_years AS y
        JOIN core.dim_question AS q ON q.survey = y.survey
            AND (q.first_year IS NULL OR q.first_year <= y.year)
            AND (q.last_year IS NULL OR y.year <= q.last_year)
    GROUP BY y.survey, y.year, q.quality_area
),
asked AS ("""
EXPECTED_JOIN = (
    "        ON e.survey = c.survey AND e.year = c.year AND e.verksamhet = c.verksamhet\n"
)
AREA_FIGURES = """    CASE WHEN p.n_published = e.n_questions THEN p.mean_pct END AS index_value,
    COALESCE(p.n_published, 0) < e.n_questions AS suppressed"""

QUALITY_AREAS = _changed(
    STATISTICS.QUALITY_AREAS,
    {
        "\n),\nasked AS (": AREA_QUESTIONS,
        "AVG(r.pct_positive) AS mean_pct\n": """AVG(r.pct_positive) AS mean_pct,
        SUM(CASE WHEN r.suppressed THEN 1 ELSE 0 END) AS n_suppressed
""",
        "e.quality_area, e.n_questions,": "e.quality_area, q.n_area_questions,\n    e.n_questions,",
        AREA_FIGURES: """    CASE WHEN e.n_questions = q.n_area_questions
        AND p.n_published = e.n_questions THEN p.mean_pct END AS unweighted_mean_pct,
    e.n_questions < q.n_area_questions AS not_applicable,
    COALESCE(p.n_suppressed, 0) > 0 AS suppressed""",
        EXPECTED_JOIN: EXPECTED_JOIN
        + """    JOIN area_questions AS q
        ON q.survey = c.survey AND q.year = c.year AND q.quality_area = e.quality_area
""",
    },
)

# A share compares with ours rounded half up, as Kolada publishes: 90.5 differs from 90.
# Kolada's län and riket shares of positive answers are unweighted means of their kommuner:
# they compare with kommun_mean_pct, not with the pooled share.
KOLADA_COMPARISON = _changed(
    STATISTICS.KOLADA_COMPARISON,
    {
        "'positive' AS measure, pct_positive AS value": """'positive' AS measure,
        CASE WHEN level IN ('lan', 'riket') THEN kommun_mean_pct ELSE pct_positive END
            AS value""",
        f"ELSE ABS(o.value - p.value) > {STATISTICS.KOLADA_TOLERANCE}": (
            "ELSE o.value < p.value - 0.5 OR o.value >= p.value + 0.5"
        ),
    },
)

# Kolada's bands: the best quarter of the ranked kommuner, the middle half, the lowest quarter
# (ties share a rank, so they share a band); fewer than this many ranked kommuner get no band.
MIN_RANKED_FOR_BAND = 4

RANKINGS = f"""
WITH figures AS (
    SELECT survey, year, area_code AS kommun_kod, area_name, verksamhet, verksamhet_name,
        gender, 'pct_positive' AS measure, question_id, kolada_short, pct_positive AS value
    FROM reporting.results WHERE level = 'kommun' AND pct_positive IS NOT NULL
    UNION ALL
    SELECT survey, year, area_code, area_name, verksamhet, verksamhet_name, gender,
        'n_respondents', '', '', CAST(n_respondents AS DOUBLE PRECISION)
    FROM reporting.response_counts WHERE level = 'kommun' AND n_respondents IS NOT NULL
),
ranked AS (
    SELECT figures.*,
        RANK() OVER (PARTITION BY survey, year, verksamhet, gender, measure, question_id
            ORDER BY value DESC) AS rank,
        RANK() OVER (PARTITION BY survey, year, verksamhet, gender, measure, question_id
            ORDER BY value) AS rank_from_lowest,
        COUNT(*) OVER (PARTITION BY survey, year, verksamhet, gender, measure, question_id)
            AS n_ranked
    FROM figures
)
SELECT survey, year, kommun_kod, area_name, verksamhet, verksamhet_name, gender, measure,
    question_id, kolada_short, value, rank, n_ranked,
    CASE
        WHEN n_ranked < {MIN_RANKED_FOR_BAND} THEN NULL
        WHEN 4 * rank <= n_ranked THEN 'best_quartile'
        WHEN 4 * rank_from_lowest <= n_ranked THEN 'lowest_quartile'
        ELSE 'middle_half'
    END AS band
FROM ranked"""

# The parts of a survey as a whole: every composite group but the whole ('*'), and every enkät
# in no such group (IFO: EKB, MOB and BOU).
VERKSAMHET_MEANS = f"""
WITH parts AS (
    SELECT v.survey, v.verksamhet
    FROM core.dim_verksamhet AS v
    WHERE (v.kind = 'composite' AND v.members <> '*')
        OR (v.kind = 'enkat' AND NOT EXISTS (
            SELECT 1 FROM core.dim_verksamhet AS g
            WHERE g.survey = v.survey AND g.kind = 'composite' AND g.members <> '*'
                AND {MEMBER.format(group="g", enkat="v")}))
)
SELECT r.survey, r.year, r.level, r.area_code, MAX(r.area_name) AS area_name,
    MAX(r.kommun_kod) AS kommun_kod, MAX(r.lan_kod) AS lan_kod, r.gender, r.question_id,
    MAX(r.kolada_short) AS kolada_short, COUNT(*) AS n_verksamheter,
    COUNT(r.pct_positive) AS n_published,
    CASE WHEN COUNT(r.pct_positive) = COUNT(*) THEN AVG(r.pct_positive) END
        AS mean_of_pct_positive,
    COUNT(r.pct_positive) < COUNT(*) AS suppressed
FROM reporting.results AS r
    JOIN parts AS p ON p.survey = r.survey AND p.verksamhet = r.verksamhet
GROUP BY r.survey, r.year, r.level, r.area_code, r.gender, r.question_id"""

ALL_ANSWERS = """
SELECT survey, year, level, area_code, MAX(area_name) AS area_name,
    MAX(kommun_kod) AS kommun_kod, MAX(lan_kod) AS lan_kod, verksamhet,
    MAX(verksamhet_name) AS verksamhet_name, gender, COUNT(*) AS n_questions,
    CASE WHEN COUNT(n_valid) = COUNT(*) THEN SUM(n_valid) END AS n_valid,
    CASE WHEN COUNT(n_valid) = COUNT(*) THEN SUM(n_positive) END AS n_positive,
    CASE WHEN COUNT(n_valid) = COUNT(*)
        THEN 100.0 * SUM(n_positive) / NULLIF(SUM(n_valid), 0) END AS pct_positive,
    COUNT(n_valid) < COUNT(*) AS suppressed
FROM reporting.results
GROUP BY survey, year, level, area_code, verksamhet, gender"""

GENDER_Z, GENDER_SIGNIFICANT = _z_test("women", "men")

GENDER_DIFFERENCES = f"""
WITH {CRITICAL},
paired AS (
    SELECT w.survey, w.year, w.level, w.area_code, w.area_name, w.kommun_kod, w.lan_kod,
        w.verksamhet, w.verksamhet_name, w.question_id, w.question_text, w.kolada_short,
        w.n_valid AS women_n_valid, w.n_positive AS women_n_positive,
        w.pct_positive AS women_pct_positive,
        m.n_valid AS men_n_valid, m.n_positive AS men_n_positive,
        m.pct_positive AS men_pct_positive, k.z_critical
    FROM reporting.results AS w
        JOIN reporting.results AS m ON {SAME_PLACE.format(a="m", b="w")}
            AND m.year = w.year AND m.question_id = w.question_id AND m.gender = 'M'
        LEFT JOIN critical AS k ON k.survey = w.survey AND k.year = w.year
    WHERE w.gender = 'K'
)
SELECT paired.*, women_pct_positive - men_pct_positive AS difference_pp,
    {GENDER_Z} AS z_score, {GENDER_SIGNIFICANT} AS significant
FROM paired"""

NEW_VIEWS: dict[str, tuple[str, str]] = {
    "rankings": (
        "One row per kommun and published figure (a question cell''s share of positive "
        "answers, or its respondents): its rank among the kommuner with that figure published "
        "(ties share a rank), how many were ranked, and Kolada''s band: best_quartile, "
        "middle_half or lowest_quartile (none under four ranked).",
        RANKINGS,
    ),
    "verksamhet_means": (
        "One row per cell (without verksamhet) and question: the mean of the shares of positive "
        "answers of the survey''s verksamheter (IFO: EKB, MOB, BOU), a mean of shares, not a "
        "share of respondents; only where every verksamhet''s share is published.",
        VERKSAMHET_MEANS,
    ),
    "all_answers": (
        "One row per cell: positive answers among all valid answers to all its questions; only "
        "where every question of the cell is published.",
        ALL_ANSWERS,
    ),
    "gender_differences": (
        "One row per cell and question with women and men: the difference women − men in "
        "percentage points and whether it is significant (the two-proportion z-test of trends; "
        "NULL where either is suppressed).",
        GENDER_DIFFERENCES,
    ),
}

STATISTICS_VIEWS: dict[str, tuple[str, str]] = {
    "trends": (
        "One row per published cell and question: the same cell the year before, the change in "
        "percentage points, whether the two cells are the same population (comparable: the "
        "same kommuner of a län or riket, the same enkäter of a group), and whether the change "
        "is significant (two-proportion z-test); NULL where it cannot be tested.",
        TRENDS,
    ),
    "quality_areas": (
        "One row per cell and quality area (SKR''s area names): unweighted_mean_pct is this "
        "project''s unweighted mean of the area''s question shares, not an SKR measure; only "
        "where the verksamhet asks every question of the area (else not_applicable) and every "
        "one is published (suppressed: one is hidden).",
        QUALITY_AREAS,
    ),
    "kolada_comparison": (
        "One row per Kolada KPI, year, area and gender where we have the cell: Kolada''s "
        "published value, ours (a län''s or riket''s share of positive answers as Kolada "
        "computes it: the unweighted mean of the published kommun shares), the difference, "
        "and whether ours rounded half up differs.",
        KOLADA_COMPARISON,
    ),
}


def _create(views: dict[str, tuple[str, str]]) -> None:
    for name, (comment, select) in views.items():
        op.execute(f"CREATE VIEW reporting.{name} AS\n{select}")
        op.execute(f"COMMENT ON VIEW reporting.{name} IS '{comment}'")


# The respondents of the parts with a count of questionnaires handed out: the rate's numerator.
COVERED_IN = ("core", "staging")
BI_INDEX = "ix_fct_response_counts_area"


def _disclosed_cell_views() -> dict[str, tuple[str, str]]:
    """results and response_counts as 0004 left them: 0001's, its column appended."""
    disclosure = _revision(PREVIOUS_CELLS)
    views: dict[str, tuple[str, str]] = disclosure._views_of("0001_initial")
    appended = f",\n    f.{disclosure.COLUMN}\nFROM core."
    return {
        name: (comment, _changed(select, {"\nFROM core.": appended}))
        for name, (comment, select) in views.items()
        if name in ("results", "response_counts")
    }


def _cell_views() -> dict[str, tuple[str, str]]:
    """results and response_counts as the previous revision built them, with the new columns.

    Each wraps the previous view's query, so its columns stay as they were, in order, and the
    new ones follow.
    """
    previous = _disclosed_cell_views()
    results = f"""
WITH cells AS ({previous["results"][1]}
),
kommun_means AS (
    SELECT survey, year, 'lan' AS level, lan_kod AS area_code, verksamhet, gender,
        question_id, AVG(pct_positive) AS kommun_mean_pct,
        COUNT(*) AS n_kommuner_in_mean
    FROM core.fct_results
    WHERE level = 'kommun' AND pct_positive IS NOT NULL
    GROUP BY survey, year, lan_kod, verksamhet, gender, question_id
    UNION ALL
    SELECT survey, year, 'riket', '0000', verksamhet, gender, question_id,
        AVG(pct_positive), COUNT(*)
    FROM core.fct_results
    WHERE level = 'kommun' AND pct_positive IS NOT NULL
    GROUP BY survey, year, verksamhet, gender, question_id
)
SELECT c.*, 'pooled' AS aggregation, m.kommun_mean_pct, m.n_kommuner_in_mean
FROM cells AS c
    LEFT JOIN kommun_means AS m ON {SAME_CELL.format(a="m", b="c")} AND m.year = c.year
        AND m.question_id = c.question_id"""
    response_counts = f"""
SELECT c.*, f.n_covered AS n_respondents_with_distributed
FROM ({previous["response_counts"][1]}
) AS c
    JOIN core.fct_response_counts AS f ON {SAME_CELL.format(a="f", b="c")} AND f.year = c.year"""
    return {
        "results": (
            "One row per survey, year, level, area, verksamhet, gender and question: the share "
            "of positive answers; NULL figures where suppressed. aggregation: län and riket "
            "pool their respondents (pooled); kommun_mean_pct is Kolada''s group value instead, "
            "the unweighted mean over the n_kommuner_in_mean kommuner whose share is published.",
            results,
        ),
        "response_counts": (
            "One row per survey, year, level, area, verksamhet and gender: respondents (in FH "
            "questionnaires: one person may answer several enkäter), questionnaires handed out "
            "and the response rate in percent, 100 · n_respondents_with_distributed / "
            "n_distributed: the respondents of the kommuner and enkäter with a count handed "
            "out; NULL figures where suppressed.",
            response_counts,
        ),
    }


def upgrade() -> None:
    for name in [*reversed(STATISTICS_VIEWS), "results", "response_counts"]:
        op.execute(f"DROP VIEW reporting.{name}")
    for schema in COVERED_IN:
        op.add_column("fct_response_counts", sa.Column("n_covered", sa.BigInteger()), schema=schema)
    _create(_cell_views())
    _create(STATISTICS_VIEWS)
    _create(NEW_VIEWS)


def downgrade() -> None:
    for name in [*NEW_VIEWS, *STATISTICS_VIEWS, "results", "response_counts"]:
        op.execute(f"DROP VIEW reporting.{name}")
    # DuckDB alters no table that an index depends on: the BI index is rebuilt around the drop
    op.drop_index(BI_INDEX, table_name="fct_response_counts", schema="core")
    for schema in COVERED_IN:
        op.drop_column("fct_response_counts", "n_covered", schema=schema)
    op.create_index(
        BI_INDEX,
        "fct_response_counts",
        ["survey", "year", "level", "area_code"],
        schema="core",
    )
    _create(_disclosed_cell_views())
    _create(STATISTICS.VIEWS)
