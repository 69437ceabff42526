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
-- A län's or riket's kommuner with published respondents, by year.
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
-- Areas whose set of kommuner differs from the year before: not the same population.
kommuner_changed AS (
    SELECT c.survey, c.year, c.level, c.area_code, c.verksamhet
    FROM kommuner_kept AS c
        LEFT JOIN kommuner_kept AS p ON p.survey = c.survey AND p.year = c.year - 1
            AND p.level = c.level AND p.area_code = c.area_code AND p.verksamhet = c.verksamhet
    WHERE c.n_kept < c.n_kommuner OR c.n_kept < COALESCE(p.n_kommuner, 0)
),
-- Composite groups one of whose enkäter began or ended with the year.
enkater_changed AS (
    SELECT DISTINCT g.survey, y.year, g.verksamhet
    FROM core.dim_verksamhet AS g
        JOIN (SELECT DISTINCT survey, year FROM reporting.results) AS y ON y.survey = g.survey
        JOIN core.dim_verksamhet AS e ON e.survey = g.survey AND e.kind = 'enkat'
            AND (g.members = '*' OR ';' || g.members || ';' LIKE '%;' || e.verksamhet || ';%')
    WHERE g.kind = 'composite' AND (e.first_year = y.year OR e.last_year = y.year - 1)
),
paired AS (
    SELECT c.*,
        p.n_valid AS prev_n_valid, p.n_positive AS prev_n_positive,
        p.pct_positive AS prev_pct_positive, p.ci_low AS prev_ci_low,
        p.ci_high AS prev_ci_high, p.suppressed AS prev_suppressed,
        CASE WHEN p.suppressed IS NOT NULL
            THEN kc.survey IS NULL AND ec.survey IS NULL END AS comparable,
        CAST(c.n_positive + p.n_positive AS DOUBLE PRECISION)
            / NULLIF(c.n_valid + p.n_valid, 0) AS pooled_share,
        k.z_critical
    FROM reporting.results AS c
        LEFT JOIN reporting.results AS p ON p.survey = c.survey AND p.year = c.year - 1
            AND p.level = c.level AND p.area_code = c.area_code
            AND p.verksamhet = c.verksamhet AND p.gender = c.gender
            AND p.question_id = c.question_id
        LEFT JOIN kommuner_changed AS kc ON kc.survey = c.survey AND kc.year = c.year
            AND kc.level = c.level AND kc.area_code = c.area_code
            AND kc.verksamhet = c.verksamhet
        LEFT JOIN enkater_changed AS ec ON ec.survey = c.survey AND ec.year = c.year
            AND ec.verksamhet = c.verksamhet
        LEFT JOIN critical AS k ON k.survey = c.survey AND k.year = c.year
),
-- The two-proportion z-test, with the shares pooled under the hypothesis of no change.
tested AS (
    SELECT paired.*,
        pct_positive - prev_pct_positive AS change_pp,
        (pct_positive - prev_pct_positive) / 100 / NULLIF(SQRT(pooled_share * (1 - pooled_share)
            * (1.0 / NULLIF(n_valid, 0) + 1.0 / NULLIF(prev_n_valid, 0))), 0) AS z_score
    FROM paired
)
SELECT survey, year, level, area_code, area_name, kommun_kod, lan_kod, verksamhet,
    verksamhet_name, gender, question_id, question_text, kolada_short, quality_area,
    n_valid, n_positive, pct_positive, suppressed,
    prev_n_valid, prev_n_positive, prev_pct_positive, prev_suppressed, change_pp, comparable,
    z_score, z_critical,
    CASE WHEN comparable AND pct_positive IS NOT NULL AND prev_pct_positive IS NOT NULL
        AND z_critical IS NOT NULL THEN COALESCE(ABS(z_score) > z_critical, FALSE)
    END AS significant,
    lan_name, gender_label, question_order, ci_low, ci_high, prev_ci_low, prev_ci_high,
    -- Newcombe's interval for a difference of two shares, from their Wilson intervals
    change_pp - SQRT(POWER(pct_positive - ci_low, 2) + POWER(prev_ci_high - prev_pct_positive, 2))
        AS change_ci_low_pp,
    change_pp + SQRT(POWER(ci_high - pct_positive, 2) + POWER(prev_pct_positive - prev_ci_low, 2))
        AS change_ci_high_pp
FROM tested
