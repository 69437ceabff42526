SELECT f.survey, f.year, f.level, f.area_code,
    CASE f.level
        WHEN 'riket' THEN 'Riket'
        WHEN 'lan' THEN l.lan_namn
        WHEN 'kommun' THEN k.kommun_namn
        WHEN 'enhet' THEN
            k.kommun_namn || ' ' || SUBSTRING(f.area_code FROM LENGTH(f.kommun_kod) + 2)
    END AS area_name,
    f.kommun_kod, f.lan_kod, f.verksamhet, v.name_sv AS verksamhet_name, f.gender,
    f.n_respondents, f.n_distributed, f.response_rate, f.suppressed, f.suppression_reason,
    f.n_covered AS n_respondents_with_distributed, l.lan_namn AS lan_name,
    g.label_sv AS gender_label
FROM core.fct_response_counts AS f
    LEFT JOIN core.dim_kommun AS k ON k.kommun_kod = f.kommun_kod
    LEFT JOIN core.dim_lan AS l ON l.lan_kod = f.lan_kod
    LEFT JOIN core.dim_verksamhet AS v ON v.survey = f.survey AND v.verksamhet = f.verksamhet
    LEFT JOIN core.dim_gender AS g ON g.gender = f.gender
