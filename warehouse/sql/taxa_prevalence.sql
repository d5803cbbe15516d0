-- A row is one taxon at one rank in one cohort: its prevalence (share of the cohort's kits with taxonomy in which
-- it was found), its mean relative abundance over all those kits (absent = 0) and its mean and median abundance
-- among the kits where it is present.
CREATE OR REPLACE VIEW taxa_prevalence AS
WITH profiled AS (
    SELECT c.cohort_dimension, c.cohort_value, count(DISTINCT (t.provider, t.kit_id)) AS kits_profiled
    FROM kit_cohorts AS c
    JOIN (SELECT DISTINCT provider, kit_id FROM taxonomy) AS t ON t.provider = c.provider AND t.kit_id = c.kit_id
    GROUP BY ALL
)
SELECT
    c.cohort_dimension,
    c.cohort_value,
    t.rank,
    t.taxon,
    count(*) AS kits_present,
    p.kits_profiled,
    count(*) / p.kits_profiled AS prevalence,
    sum(t.relative_abundance) / p.kits_profiled AS mean_abundance,
    avg(t.relative_abundance) AS mean_abundance_present,
    median(t.relative_abundance) AS median_abundance_present
FROM taxonomy AS t
JOIN kit_cohorts AS c ON c.provider = t.provider AND c.kit_id = t.kit_id
JOIN profiled AS p ON p.cohort_dimension = c.cohort_dimension AND p.cohort_value = c.cohort_value
WHERE t.relative_abundance > 0
GROUP BY c.cohort_dimension, c.cohort_value, t.rank, t.taxon, p.kits_profiled;
