-- A row is one purchase of a test by a pseudonymous customer: a Biomesight order (its kits listed) or a Gencove
-- sample (one kit order is one sample), with when it was bought. Purchases with no customer key are left out
-- (count them in kits: customer_key IS NULL); the customer views below are built on this one.
CREATE OR REPLACE VIEW customer_purchases AS
WITH biomesight_kits AS (
    SELECT order_id, list(kit_id ORDER BY kit_id) AS kit_ids, any_value(customer_key) AS customer_key
    FROM kits
    WHERE provider = 'biomesight' AND order_id IS NOT NULL
    GROUP BY order_id
)
SELECT
    coalesce(o.customer_key, b.customer_key) AS customer_key,
    o.provider,
    o.order_id,
    coalesce(b.kit_ids, []) AS kit_ids,
    o.purchased_at,
    o.country_code
FROM orders AS o
LEFT JOIN biomesight_kits AS b ON o.provider = 'biomesight' AND b.order_id = o.order_id
WHERE o.provider = 'biomesight' AND coalesce(o.customer_key, b.customer_key) IS NOT NULL
UNION ALL
SELECT
    k.customer_key,
    k.provider,
    NULL AS order_id,
    [k.kit_id] AS kit_ids,
    k.created_at AS purchased_at,
    k.country_code
FROM kits AS k
WHERE k.provider = 'gencove' AND k.customer_key IS NOT NULL;
