-- A row is one kit in one cohort: every kit belongs to one cohort per dimension (all, provider, purchase_month,
-- country, sample_type, bristol_scale, bm_frequency), so any cohort view can be filtered on one dimension.
-- A kit with no value for a dimension (e.g. a Gencove sample has no bristol scale) is left out of that one.
-- trait_risk is the exception: a kit (of either partner) whose customer has Gencove risk classes belongs to one
-- cohort per risk trait, 'trait: risk' (e.g. 'lactose_intolerance: high_risk'); filter on one trait's values.
CREATE OR REPLACE VIEW kit_cohorts AS
-- kit_lifecycle is costly and read twice below: computed once.
WITH lifecycle AS MATERIALIZED (
    SELECT provider, kit_id, customer_key, purchase_month, country_code, sample_type, bristol_scale, bm_frequency
    FROM kit_lifecycle
)
SELECT provider, kit_id, cohort_dimension, cohort_value
FROM (
    SELECT
        provider,
        kit_id,
        'all' AS "all",
        provider AS provider_cohort,
        purchase_month,
        country_code AS country,
        sample_type,
        CAST(bristol_scale AS VARCHAR) AS bristol_scale,
        bm_frequency
    FROM lifecycle
) UNPIVOT (
    cohort_value FOR cohort_dimension IN (
        "all" AS 'all',
        provider_cohort AS 'provider',
        purchase_month AS 'purchase_month',
        country AS 'country',
        sample_type AS 'sample_type',
        bristol_scale AS 'bristol_scale',
        bm_frequency AS 'bm_frequency'
    )
)
UNION ALL
SELECT l.provider, l.kit_id, 'trait_risk' AS cohort_dimension, t.trait_key || ': ' || t.risk AS cohort_value
FROM lifecycle AS l
JOIN customer_traits AS t ON t.customer_key = l.customer_key
WHERE t.risk IS NOT NULL;
