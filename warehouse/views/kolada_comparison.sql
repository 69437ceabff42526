-- Kolada's areas: a kommun by its code, a län (region) as "00" + län code, riket as "0000".
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
        -- Kolada's län and riket shares are unweighted means of their kommuner's shares
        'positive' AS measure,
        CASE WHEN level IN ('lan', 'riket') THEN kommun_mean_pct ELSE pct_positive END
            AS value
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
        -- ours rounded half up, as Kolada publishes: 90.5 differs from 90
        ELSE o.value < p.value - 0.5 OR o.value >= p.value + 0.5
    END AS differs,
    g.label_sv AS gender_label
FROM published AS p
    JOIN ours AS o ON o.survey = p.survey AND o.year = p.year AND o.level = p.level
        AND o.area_code = p.area_code AND o.verksamhet = p.verksamhet
        AND o.gender = p.gender AND o.question_id = p.question_id AND o.measure = p.measure
    LEFT JOIN core.dim_gender AS g ON g.gender = p.gender
