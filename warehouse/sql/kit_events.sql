-- A row is one status event of one kit, including the events of the order the kit belongs to (a Biomesight
-- order's shipping and delivery are stages of each of its kits), with the stage's funnel rank, whether it ends
-- the kit's lifecycle and the furthest path stage it proves was reached. Stage and finality come from the
-- current status_map (the one copy of transform/status.py's vocabulary), so a mapping fixed later re-reads old
-- events; a status nobody documented keeps the stage it was stored with ('unknown').
CREATE OR REPLACE VIEW kit_events AS
WITH kit_own AS (
    SELECT provider, 'kit' AS entity, entity_id AS kit_id, partner_status, stage, failure_reason, partner_date,
        source
    FROM status_events
    WHERE entity = 'kit'
),
kit_order AS (
    SELECT k.provider, 'order' AS entity, k.kit_id, e.partner_status, e.stage, e.failure_reason, e.partner_date,
        e.source
    FROM kits AS k
    JOIN status_events AS e
      ON e.provider = k.provider AND e.entity = 'order' AND e.entity_id = k.order_id
),
mapped AS (
    SELECT
        ev.provider,
        ev.kit_id,
        ev.partner_status,
        coalesce(m.stage, ev.stage) AS stage,
        coalesce(m.failure_reason, ev.failure_reason) AS failure_reason,
        m.is_final AS status_is_final,
        m.reached_rank,
        ev.partner_date,
        ev.source
    FROM (SELECT * FROM kit_own UNION ALL SELECT * FROM kit_order) AS ev
    LEFT JOIN status_map AS m
      ON m.provider = ev.provider AND m.entity = ev.entity AND m.partner_status = ev.partner_status
)
SELECT
    ev.provider,
    ev.kit_id,
    ev.partner_status,
    ev.stage,
    coalesce(r.stage_rank, 0) AS stage_rank,
    coalesce(ev.status_is_final, r.is_final, false) AS is_final,
    coalesce(r.on_path, false) AS on_path,
    coalesce(ev.reached_rank, CASE WHEN r.on_path THEN r.stage_rank END) AS reached_rank,
    ev.failure_reason,
    ev.partner_date,
    ev.source
FROM mapped AS ev
LEFT JOIN lifecycle_stages AS r ON r.stage = ev.stage;
