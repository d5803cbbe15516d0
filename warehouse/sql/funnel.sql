-- A row is one lifecycle stage of one cohort: how many kits reached it (or went further along the path), and the
-- conversion from the previous stage and from the cohort's start. Filter on cohort_dimension (see kit_cohorts).
CREATE OR REPLACE VIEW funnel AS
WITH path AS (
    SELECT stage, stage_rank FROM lifecycle_stages WHERE on_path
),
reached AS (
    SELECT
        c.cohort_dimension,
        c.cohort_value,
        p.stage,
        p.stage_rank,
        count(*) FILTER (WHERE l.furthest_path_rank >= p.stage_rank) AS kits_reached,
        count(*) AS kits_in_cohort
    FROM kit_cohorts AS c
    JOIN kit_lifecycle AS l ON l.provider = c.provider AND l.kit_id = c.kit_id
    CROSS JOIN path AS p
    GROUP BY ALL
)
SELECT
    cohort_dimension,
    cohort_value,
    stage,
    stage_rank,
    kits_in_cohort,
    kits_reached,
    kits_reached / nullif(lag(kits_reached) OVER w, 0) AS conversion_from_previous,
    kits_reached / nullif(first_value(kits_reached) OVER w, 0) AS conversion_from_start
FROM reached
WINDOW w AS (PARTITION BY cohort_dimension, cohort_value ORDER BY stage_rank);
