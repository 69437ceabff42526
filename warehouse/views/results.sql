-- Kolada's län and riket value beside our pooled one: the unweighted mean of the published
-- kommun shares. Each level has its own join on all of its keys, its level among them, so
-- that a query of one level skips the other level's means and PostgreSQL joins by every key
-- (one join on a union of both levels made it compare every pair of cells of a survey-year).
-- Each reads core.fct_results itself: PostgreSQL computes a CTE read twice in full, filters
-- or not.
WITH lan_means AS (
    SELECT survey, year, 'lan' AS level, lan_kod, verksamhet, gender, question_id,
        AVG(pct_positive) AS kommun_mean_pct, COUNT(*) AS n_kommuner_in_mean
    FROM core.fct_results
    WHERE level = 'kommun' AND pct_positive IS NOT NULL
    GROUP BY survey, year, lan_kod, verksamhet, gender, question_id
),
riket_means AS (
    SELECT survey, year, 'riket' AS level, verksamhet, gender, question_id,
        AVG(pct_positive) AS kommun_mean_pct, COUNT(*) AS n_kommuner_in_mean
    FROM core.fct_results
    WHERE level = 'kommun' AND pct_positive IS NOT NULL
    GROUP BY survey, year, verksamhet, gender, question_id
)
SELECT f.survey, f.year, f.level, f.area_code,
    CASE f.level
        WHEN 'riket' THEN 'Riket'
        WHEN 'lan' THEN l.lan_namn
        WHEN 'kommun' THEN k.kommun_namn
        WHEN 'enhet' THEN
            k.kommun_namn || ' ' || SUBSTRING(f.area_code FROM LENGTH(f.kommun_kod) + 2)
    END AS area_name,
    f.kommun_kod, f.lan_kod, f.verksamhet, v.name_sv AS verksamhet_name, f.gender,
    f.question_id, q.text_sv AS question_text, q.kolada_short, q.quality_area,
    f.n_valid, f.n_positive, f.pct_positive, f.ci_low, f.ci_high, f.suppressed,
    f.suppression_reason, 'pooled' AS aggregation,
    COALESCE(ml.kommun_mean_pct, mr.kommun_mean_pct) AS kommun_mean_pct,
    COALESCE(ml.n_kommuner_in_mean, mr.n_kommuner_in_mean) AS n_kommuner_in_mean,
    l.lan_namn AS lan_name, g.label_sv AS gender_label, q.question_order
FROM core.fct_results AS f
    LEFT JOIN core.dim_kommun AS k ON k.kommun_kod = f.kommun_kod
    LEFT JOIN core.dim_lan AS l ON l.lan_kod = f.lan_kod
    LEFT JOIN core.dim_verksamhet AS v ON v.survey = f.survey AND v.verksamhet = f.verksamhet
    LEFT JOIN core.dim_gender AS g ON g.gender = f.gender
    LEFT JOIN core.dim_question AS q ON q.survey = f.survey AND q.question_id = f.question_id
    LEFT JOIN lan_means AS ml ON ml.level = f.level AND ml.survey = f.survey
        AND ml.year = f.year AND ml.lan_kod = f.area_code AND ml.verksamhet = f.verksamhet
        AND ml.gender = f.gender AND ml.question_id = f.question_id
    LEFT JOIN riket_means AS mr ON mr.level = f.level AND mr.survey = f.survey
        AND mr.year = f.year AND mr.verksamhet = f.verksamhet
        AND mr.gender = f.gender AND mr.question_id = f.question_id
