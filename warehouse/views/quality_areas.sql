WITH survey_years AS (
    SELECT DISTINCT survey, year FROM reporting.results
),
-- The questions of each quality area in a year, whatever enkät asks them.
area_questions AS (
    SELECT y.survey, y.year, q.quality_area, COUNT(*) AS n_area_questions
    FROM survey_years AS y
        JOIN core.dim_question AS q ON q.survey = y.survey
            AND (q.first_year IS NULL OR q.first_year <= y.year)
            AND (q.last_year IS NULL OR y.year <= q.last_year)
    GROUP BY y.survey, y.year, q.quality_area
),
-- The questions a verksamhet (an enkät, or a composite group's enkäter) asks in a year.
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
        verksamhet, verksamhet_name, gender, lan_name, gender_label
    FROM reporting.results
),
published AS (
    SELECT r.survey, r.year, r.level, r.area_code, r.verksamhet, r.gender, a.quality_area,
        COUNT(r.pct_positive) AS n_published, AVG(r.pct_positive) AS mean_pct,
        SUM(CASE WHEN r.suppressed THEN 1 ELSE 0 END) AS n_suppressed
    FROM reporting.results AS r
        JOIN asked AS a ON a.survey = r.survey AND a.year = r.year
            AND a.verksamhet = r.verksamhet AND a.question_id = r.question_id
    GROUP BY r.survey, r.year, r.level, r.area_code, r.verksamhet, r.gender, a.quality_area
)
SELECT c.survey, c.year, c.level, c.area_code, c.area_name, c.kommun_kod, c.lan_kod,
    c.verksamhet, c.verksamhet_name, c.gender, e.quality_area, q.n_area_questions,
    e.n_questions, COALESCE(p.n_published, 0) AS n_published,
    CASE WHEN e.n_questions = q.n_area_questions AND p.n_published = e.n_questions
        THEN p.mean_pct END AS unweighted_mean_pct,
    e.n_questions < q.n_area_questions AS not_applicable,
    COALESCE(p.n_suppressed, 0) > 0 AS suppressed, c.lan_name, c.gender_label
FROM cells AS c
    JOIN expected AS e
        ON e.survey = c.survey AND e.year = c.year AND e.verksamhet = c.verksamhet
    JOIN area_questions AS q
        ON q.survey = c.survey AND q.year = c.year AND q.quality_area = e.quality_area
    LEFT JOIN published AS p ON p.survey = c.survey AND p.year = c.year
        AND p.level = c.level AND p.area_code = c.area_code AND p.verksamhet = c.verksamhet
        AND p.gender = c.gender AND p.quality_area = e.quality_area
