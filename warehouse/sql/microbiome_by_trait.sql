-- A row is one Gencove trait group against one Biomesight measure, over the customers with both results: the
-- trait's risk class or percentile band (grouping = 'risk' | 'percentile_band') against a score or the relative
-- abundance of one of the 15 most abundant genera (absent = 0), with n customers, mean, median, stddev.
-- Each customer counts once: their latest trait scores and their latest Biomesight kit with results.
CREATE OR REPLACE VIEW microbiome_by_trait AS
WITH latest_kit AS (
    SELECT coalesce(k.customer_key, o.customer_key) AS customer_key,
           arg_max(r.kit_id, (r.export_date, r.kit_id)) AS kit_id
    FROM results AS r
    JOIN kits AS k ON k.provider = r.provider AND k.kit_id = r.kit_id
    LEFT JOIN orders AS o ON o.provider = k.provider AND o.order_id = k.order_id
    WHERE r.provider = 'biomesight' AND coalesce(k.customer_key, o.customer_key) IS NOT NULL
    GROUP BY ALL
),
both_tests AS (
    SELECT l.customer_key, l.kit_id
    FROM latest_kit AS l
    WHERE EXISTS (SELECT 1 FROM customer_traits AS c WHERE c.customer_key = l.customer_key)
),
profiled AS (
    SELECT DISTINCT kit_id FROM taxonomy WHERE provider = 'biomesight' AND rank = 'genus'
),
top_genera AS (
    SELECT t.taxon, sum(t.relative_abundance) / (SELECT count(*) FROM profiled) AS mean_abundance
    FROM taxonomy AS t
    WHERE t.provider = 'biomesight' AND t.rank = 'genus'
    GROUP BY t.taxon
    ORDER BY mean_abundance DESC, t.taxon
    LIMIT 15
),
measures AS (
    SELECT b.customer_key, 'score' AS measure_kind, s.score_key AS measure, s.value
    FROM both_tests AS b
    JOIN scores AS s ON s.provider = 'biomesight' AND s.kit_id = b.kit_id
    UNION ALL
    SELECT b.customer_key, 'genus', g.taxon, coalesce(t.relative_abundance, 0.0)
    FROM both_tests AS b
    JOIN profiled AS p ON p.kit_id = b.kit_id
    CROSS JOIN top_genera AS g
    LEFT JOIN taxonomy AS t
        ON t.provider = 'biomesight' AND t.kit_id = b.kit_id AND t.rank = 'genus' AND t.taxon = g.taxon
),
groups AS (
    SELECT customer_key, trait_key, 'risk' AS grouping, risk AS trait_group
    FROM customer_traits WHERE risk IS NOT NULL
    UNION ALL
    SELECT customer_key, trait_key, 'percentile_band', percentile_band
    FROM customer_traits WHERE percentile_band IS NOT NULL
)
SELECT
    g.trait_key,
    g.grouping,
    g.trait_group,
    m.measure_kind,
    m.measure,
    count(m.value) AS n,
    avg(m.value) AS mean,
    median(m.value) AS median,
    stddev_samp(m.value) AS stddev
FROM groups AS g
JOIN measures AS m ON m.customer_key = g.customer_key
GROUP BY ALL;
