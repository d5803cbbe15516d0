-- A row is one Gencove trait of one pseudonymous customer, from their latest sample with trait scores: value,
-- percentile, the partner's risk class (null for traits without one) and the percentile band (0-33, 33-67,
-- 67-100: percentiles below 33, below 67, the rest).
CREATE OR REPLACE VIEW customer_traits AS
WITH latest AS (
    SELECT k.customer_key, arg_max(k.kit_id, (k.created_at, k.kit_id)) AS kit_id
    FROM kits AS k
    WHERE k.provider = 'gencove' AND k.customer_key IS NOT NULL
      AND EXISTS (SELECT 1 FROM trait_scores AS t WHERE t.provider = 'gencove' AND t.kit_id = k.kit_id)
    GROUP BY k.customer_key
)
SELECT
    l.customer_key,
    t.kit_id,
    t.trait_key,
    t.value,
    t.percentile,
    t.risk,
    CASE
        WHEN t.percentile IS NULL THEN NULL
        WHEN t.percentile < 33 THEN '0-33'
        WHEN t.percentile < 67 THEN '33-67'
        ELSE '67-100'
    END AS percentile_band
FROM latest AS l
JOIN trait_scores AS t ON t.provider = 'gencove' AND t.kit_id = l.kit_id;
