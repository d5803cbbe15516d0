-- A row is one score in one cohort: n, mean, median and quartiles of the score over the cohort's kits with
-- results. Filter on cohort_dimension (all, provider, purchase_month, country, sample_type, bristol_scale, ...).
CREATE OR REPLACE VIEW cohort_scores AS
SELECT
    c.cohort_dimension,
    c.cohort_value,
    s.score_key,
    any_value(s.score_name) AS score_name,
    count(s.value) AS n,
    avg(s.value) AS mean,
    median(s.value) AS median,
    quantile_cont(s.value, 0.25) AS p25,
    quantile_cont(s.value, 0.75) AS p75,
    stddev_samp(s.value) AS stddev
FROM scores AS s
JOIN kit_cohorts AS c ON c.provider = s.provider AND c.kit_id = s.kit_id
GROUP BY c.cohort_dimension, c.cohort_value, s.score_key;
