-- The critical value of the z-test: the one the load that published the year recorded.
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
    SELECT w.survey, w.year, w.level, w.area_code, w.area_name, w.kommun_kod, w.lan_kod,
        w.verksamhet, w.verksamhet_name, w.question_id, w.question_text, w.kolada_short,
        w.n_valid AS women_n_valid, w.n_positive AS women_n_positive,
        w.pct_positive AS women_pct_positive,
        m.n_valid AS men_n_valid, m.n_positive AS men_n_positive,
        m.pct_positive AS men_pct_positive, k.z_critical, w.lan_name, w.question_order,
        CAST(w.n_positive + m.n_positive AS DOUBLE PRECISION)
            / NULLIF(w.n_valid + m.n_valid, 0) AS pooled_share
    FROM reporting.results AS w
        JOIN reporting.results AS m ON m.survey = w.survey AND m.year = w.year
            AND m.level = w.level AND m.area_code = w.area_code
            AND m.verksamhet = w.verksamhet AND m.question_id = w.question_id
            AND m.gender = 'M'
        LEFT JOIN critical AS k ON k.survey = w.survey AND k.year = w.year
    WHERE w.gender = 'K'
),
-- The two-proportion z-test of trends, women against men.
tested AS (
    SELECT paired.*,
        women_pct_positive - men_pct_positive AS difference_pp,
        (women_pct_positive - men_pct_positive) / 100 / NULLIF(SQRT(
            pooled_share * (1 - pooled_share)
            * (1.0 / NULLIF(women_n_valid, 0) + 1.0 / NULLIF(men_n_valid, 0))), 0) AS z_score
    FROM paired
)
SELECT survey, year, level, area_code, area_name, kommun_kod, lan_kod, verksamhet,
    verksamhet_name, question_id, question_text, kolada_short, women_n_valid,
    women_n_positive, women_pct_positive, men_n_valid, men_n_positive, men_pct_positive,
    z_critical, difference_pp, z_score,
    CASE WHEN women_pct_positive IS NOT NULL AND men_pct_positive IS NOT NULL
        AND z_critical IS NOT NULL THEN COALESCE(ABS(z_score) > z_critical, FALSE)
    END AS significant,
    lan_name, question_order
FROM tested
