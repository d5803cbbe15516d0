-- A row is one status event of one kit, including the events of the order the kit belongs to (a Biomesight
-- order's shipping and delivery are stages of each of its kits), with the stage's funnel rank and whether the
-- stage ends a kit's lifecycle (from lifecycle_stages, the one copy of transform/status.py's vocabulary).
CREATE OR REPLACE VIEW kit_events AS
WITH kit_own AS (
    SELECT provider, entity_id AS kit_id, partner_status, stage, failure_reason, partner_date, source
    FROM status_events
    WHERE entity = 'kit'
),
kit_order AS (
    SELECT k.provider, k.kit_id, e.partner_status, e.stage, e.failure_reason, e.partner_date, e.source
    FROM kits AS k
    JOIN status_events AS e
      ON e.provider = k.provider AND e.entity = 'order' AND e.entity_id = k.order_id
)
SELECT
    ev.provider,
    ev.kit_id,
    ev.partner_status,
    ev.stage,
    coalesce(r.stage_rank, 0) AS stage_rank,
    coalesce(r.is_final, false) AS is_final,
    coalesce(r.on_path, false) AS on_path,
    ev.failure_reason,
    ev.partner_date,
    ev.source
FROM (SELECT * FROM kit_own UNION ALL SELECT * FROM kit_order) AS ev
LEFT JOIN lifecycle_stages AS r ON r.stage = ev.stage;
