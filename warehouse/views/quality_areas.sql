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
)
-- Every cell with the quality areas its verksamhet asks about, and each such area's questions
-- in the cell's results: found by the cell's own keys (the BI index on PostgreSQL).
SELECT c.survey, c.year, c.level, c.area_code, c.area_name, c.kommun_kod, c.lan_kod,
    c.verksamhet, c.verksamhet_name, c.gender, e.quality_area, q.n_area_questions,
    e.n_questions, COUNT(r.pct_positive) AS n_published,
    CASE WHEN e.n_questions = q.n_area_questions AND COUNT(r.pct_positive) = e.n_questions
        THEN AVG(r.pct_positive) END AS unweighted_mean_pct,
    e.n_questions < q.n_area_questions AS not_applicable,
    COALESCE(SUM(CASE WHEN r.suppressed THEN 1 ELSE 0 END), 0) > 0 AS suppressed,
    c.lan_name, c.gender_label
FROM cells AS c
    JOIN expected AS e
        ON e.survey = c.survey AND e.year = c.year AND e.verksamhet = c.verksamhet
    JOIN area_questions AS q
        ON q.survey = c.survey AND q.year = c.year AND q.quality_area = e.quality_area
    LEFT JOIN asked AS a ON a.survey = c.survey AND a.year = c.year
        AND a.verksamhet = c.verksamhet AND a.quality_area = e.quality_area
    LEFT JOIN core.fct_results AS r ON r.survey = c.survey AND r.year = c.year
        AND r.level = c.level AND r.area_code = c.area_code AND r.verksamhet = c.verksamhet
        AND r.gender = c.gender AND r.question_id = a.question_id
GROUP BY c.survey, c.year, c.level, c.area_code, c.area_name, c.kommun_kod, c.lan_kod,
    c.verksamhet, c.verksamhet_name, c.gender, e.quality_area, q.n_area_questions,
    e.n_questions, c.lan_name, c.gender_label
