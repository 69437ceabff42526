WITH figures AS (
    SELECT survey, year, area_code AS kommun_kod, area_name, verksamhet, verksamhet_name,
        gender, gender_label, 'pct_positive' AS measure, question_id, kolada_short,
        question_order, pct_positive AS value
    FROM reporting.results WHERE level = 'kommun' AND pct_positive IS NOT NULL
    UNION ALL
    SELECT survey, year, area_code, area_name, verksamhet, verksamhet_name, gender,
        gender_label, 'n_respondents', '', '', NULL, CAST(n_respondents AS DOUBLE PRECISION)
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
    -- Kolada's bands: the best quarter of the ranked kommuner, the middle half, the lowest
    -- quarter (ties share a rank, so they share a band); none under four ranked
    CASE
        WHEN n_ranked < 4 THEN NULL
        WHEN 4 * rank <= n_ranked THEN 'best_quartile'
        WHEN 4 * rank_from_lowest <= n_ranked THEN 'lowest_quartile'
        ELSE 'middle_half'
    END AS band,
    gender_label, question_order
FROM ranked
