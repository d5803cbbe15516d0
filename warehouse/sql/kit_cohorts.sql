-- A row is one kit in one cohort: every kit belongs to one cohort per dimension (all, provider, purchase_month,
-- country, sample_type, bristol_scale, bm_frequency), so any cohort view can be filtered on one dimension.
-- A kit with no value for a dimension (e.g. a Gencove sample has no bristol scale) is left out of that one.
CREATE OR REPLACE VIEW kit_cohorts AS
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
    FROM kit_lifecycle
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
);
