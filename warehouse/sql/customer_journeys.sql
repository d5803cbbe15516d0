-- A row is one purchase in a customer's journey, in the order they bought: the partner, the order and kits it
-- brought, the days since their previous and first purchase, and whether it crossed to the other partner.
CREATE OR REPLACE VIEW customer_journeys AS
WITH ordered AS (
    SELECT
        *,
        row_number() OVER journey AS purchase_number,
        lag(purchased_at) OVER journey AS previous_purchase_at,
        lag(provider) OVER journey AS previous_provider,
        first_value(purchased_at) OVER journey AS first_purchase_at
    FROM customer_purchases
    WINDOW journey AS (
        PARTITION BY customer_key ORDER BY purchased_at, provider, coalesce(order_id, kit_ids[1])
    )
)
SELECT
    customer_key,
    purchase_number,
    provider,
    order_id,
    kit_ids,
    purchased_at,
    previous_provider,
    date_diff('microsecond', previous_purchase_at, purchased_at) / 86400e6 AS days_since_previous,
    date_diff('microsecond', first_purchase_at, purchased_at) / 86400e6 AS days_since_first,
    coalesce(previous_provider <> provider, false) AS crossed_partner
FROM ordered;
