-- A row is one pseudonymous customer (one key for the platform's one customer id, at both partners): their
-- first and latest purchase, the tests they bought per partner, which partners, and their country where known
-- (Biomesight orders carry it; Gencove samples do not).
CREATE OR REPLACE VIEW customers AS
SELECT
    customer_key,
    min(purchased_at) AS first_purchase_at,
    max(purchased_at) AS last_purchase_at,
    arg_min(provider, (purchased_at, provider)) AS first_provider,
    count(*) AS tests_bought,
    count(*) FILTER (WHERE provider = 'biomesight') AS biomesight_orders,
    count(*) FILTER (WHERE provider = 'gencove') AS gencove_samples,
    list(DISTINCT provider ORDER BY provider) AS providers,
    count(DISTINCT provider) = 2 AS bought_both,
    arg_max(country_code, purchased_at) FILTER (WHERE country_code IS NOT NULL) AS country_code
FROM customer_purchases
GROUP BY customer_key;
