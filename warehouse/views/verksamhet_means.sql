-- The parts of a survey as a whole: every composite group but the whole ('*'), and every
-- enkät in no such group (IFO: EKB, MOB and BOU).
WITH parts AS (
    SELECT v.survey, v.verksamhet
    FROM core.dim_verksamhet AS v
    WHERE (v.kind = 'composite' AND v.members <> '*')
        OR (v.kind = 'enkat' AND NOT EXISTS (
            SELECT 1 FROM core.dim_verksamhet AS g
            WHERE g.survey = v.survey AND g.kind = 'composite' AND g.members <> '*'
                AND ';' || g.members || ';' LIKE '%;' || v.verksamhet || ';%'))
)
SELECT r.survey, r.year, r.level, r.area_code, MAX(r.area_name) AS area_name,
    MAX(r.kommun_kod) AS kommun_kod, MAX(r.lan_kod) AS lan_kod, r.gender, r.question_id,
    MAX(r.kolada_short) AS kolada_short, COUNT(*) AS n_verksamheter,
    COUNT(r.pct_positive) AS n_published,
    CASE WHEN COUNT(r.pct_positive) = COUNT(*) THEN AVG(r.pct_positive) END
        AS mean_of_pct_positive,
    COUNT(r.pct_positive) < COUNT(*) AS suppressed,
    MAX(r.lan_name) AS lan_name, MAX(r.gender_label) AS gender_label,
    MAX(r.question_order) AS question_order
FROM reporting.results AS r
    JOIN parts AS p ON p.survey = r.survey AND p.verksamhet = r.verksamhet
GROUP BY r.survey, r.year, r.level, r.area_code, r.gender, r.question_id
