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
    f.answer_code, a.label_sv AS answer_label, a.role, f.n, f.pct, f.suppressed,
    f.suppression_reason, l.lan_namn AS lan_name, g.label_sv AS gender_label,
    q.question_order
FROM core.fct_answer_distribution AS f
    LEFT JOIN core.dim_kommun AS k ON k.kommun_kod = f.kommun_kod
    LEFT JOIN core.dim_lan AS l ON l.lan_kod = f.lan_kod
    LEFT JOIN core.dim_verksamhet AS v ON v.survey = f.survey AND v.verksamhet = f.verksamhet
    LEFT JOIN core.dim_gender AS g ON g.gender = f.gender
    LEFT JOIN core.dim_question AS q ON q.survey = f.survey AND q.question_id = f.question_id
    LEFT JOIN core.dim_answer_option AS a ON a.survey = f.survey
        AND a.question_id = f.question_id AND a.answer_code = f.answer_code
