SELECT survey, year, level, area_code, MAX(area_name) AS area_name,
    MAX(kommun_kod) AS kommun_kod, MAX(lan_kod) AS lan_kod, verksamhet,
    MAX(verksamhet_name) AS verksamhet_name, gender, COUNT(*) AS n_questions,
    CASE WHEN COUNT(n_valid) = COUNT(*) THEN SUM(n_valid) END AS n_valid,
    CASE WHEN COUNT(n_valid) = COUNT(*) THEN SUM(n_positive) END AS n_positive,
    CASE WHEN COUNT(n_valid) = COUNT(*)
        THEN 100.0 * SUM(n_positive) / NULLIF(SUM(n_valid), 0) END AS pct_positive,
    COUNT(n_valid) < COUNT(*) AS suppressed,
    MAX(lan_name) AS lan_name, MAX(gender_label) AS gender_label
FROM reporting.results
GROUP BY survey, year, level, area_code, verksamhet, gender
