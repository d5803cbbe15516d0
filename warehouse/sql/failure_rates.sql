-- A row is one failure reason (or final off-path stage: cancelled, replaced, lost) in one cohort: how many kits
-- ended that way and the rate among the cohort's kits that reached any final stage and among all its kits.
CREATE OR REPLACE VIEW failure_rates AS
WITH ended AS (
    SELECT
        c.cohort_dimension,
        c.cohort_value,
        l.is_final,
        l.current_stage,
        coalesce(l.failure_reason, l.current_stage) AS reason
    FROM kit_cohorts AS c
    JOIN kit_lifecycle AS l ON l.provider = c.provider AND l.kit_id = c.kit_id
),
totals AS (
    SELECT cohort_dimension, cohort_value, count(*) AS kits, count(*) FILTER (WHERE is_final) AS kits_final
    FROM ended
    GROUP BY ALL
)
SELECT
    e.cohort_dimension,
    e.cohort_value,
    e.reason,
    count(*) AS kits_failed,
    t.kits_final,
    t.kits,
    count(*) / nullif(t.kits_final, 0) AS rate_of_final,
    count(*) / t.kits AS rate_of_all
FROM ended AS e
JOIN totals AS t USING (cohort_dimension, cohort_value)
JOIN lifecycle_stages AS s ON s.stage = e.current_stage
WHERE e.is_final AND NOT s.on_path
GROUP BY e.cohort_dimension, e.cohort_value, e.reason, t.kits_final, t.kits;
