-- A row is one kit (Biomesight kit or Gencove sample): its cohort attributes, when it first reached each stage,
-- the days spent between consecutive path stages, its current stage and how many days it has been in it.
-- "Now" is the latest partner date kitsync has seen (as_of), so the view reads the same on a replayed lake.
-- The stages are declared in transform/status.py and reach SQL as the lifecycle_stages table (ranks, path,
-- finality: see kit_events). This view alone names path stages, because its columns are one per stage and a
-- view's columns cannot come from data; tests/warehouse/test_lifecycle_stage_list.py keeps them in step with
-- the table, and the report reads the duration columns from the view rather than listing them again.
CREATE OR REPLACE VIEW kit_lifecycle AS
WITH as_of AS (
    SELECT max(partner_date) AS as_of FROM status_events
),
firsts AS (
    SELECT
        provider,
        kit_id,
        min(partner_date) FILTER (WHERE stage = 'ordered') AS ordered_at,
        min(partner_date) FILTER (WHERE stage = 'shipped') AS shipped_at,
        min(partner_date) FILTER (WHERE stage = 'delivered') AS delivered_at,
        min(partner_date) FILTER (WHERE stage = 'sample_collected') AS sample_collected_at,
        min(partner_date) FILTER (WHERE stage = 'in_transit_to_lab') AS in_transit_to_lab_at,
        min(partner_date) FILTER (WHERE stage = 'received') AS received_at,
        min(partner_date) FILTER (WHERE stage = 'processing') AS processing_at,
        min(partner_date) FILTER (WHERE stage = 'results_ready') AS results_ready_at,
        max(reached_rank) AS furthest_path_rank,
        count(*) FILTER (WHERE stage = 'unknown') AS unknown_events
    FROM kit_events
    GROUP BY provider, kit_id
),
latest AS (
    SELECT
        provider,
        kit_id,
        arg_max(stage, (partner_date, stage_rank)) AS current_stage,
        arg_max(partner_status, (partner_date, stage_rank)) AS current_status,
        arg_max(is_final, (partner_date, stage_rank)) AS is_final,
        max(partner_date) AS current_since
    FROM kit_events
    GROUP BY provider, kit_id
),
ending AS (
    -- An off-path final status ends a kit only if nothing on the path came after it: a Biomesight order's
    -- "Error" (failed, fulfilment_error) is followed by dispatch and delivery when fulfilment recovers, and
    -- such a kit neither ended there nor failed.
    SELECT
        e.provider,
        e.kit_id,
        min(e.partner_date) FILTER (WHERE e.is_final AND NOT e.on_path) AS ended_at,
        arg_max(e.failure_reason, e.partner_date) FILTER (WHERE e.failure_reason IS NOT NULL) AS failure_reason
    FROM kit_events AS e
    LEFT JOIN (
        SELECT provider, kit_id, max(partner_date) AS last_path_at
        FROM kit_events
        WHERE on_path
        GROUP BY provider, kit_id
    ) AS p ON p.provider = e.provider AND p.kit_id = e.kit_id
    WHERE p.last_path_at IS NULL OR e.partner_date >= p.last_path_at
    GROUP BY e.provider, e.kit_id
),
current_entry AS (
    -- when the kit entered its current stage: the first event of that stage after the last event of another
    SELECT e.provider, e.kit_id, min(e.partner_date) AS entered_at
    FROM kit_events AS e
    JOIN latest AS l ON l.provider = e.provider AND l.kit_id = e.kit_id AND e.stage = l.current_stage
    WHERE NOT EXISTS (
        SELECT 1 FROM kit_events AS o
        WHERE o.provider = e.provider AND o.kit_id = e.kit_id AND o.stage <> l.current_stage
          AND o.partner_date > e.partner_date
    )
    GROUP BY e.provider, e.kit_id
)
SELECT
    k.provider,
    k.kit_id,
    k.order_id,
    k.project_id,
    k.customer_key,
    coalesce(k.country_code, o.country_code) AS country_code,
    -- A Gencove sample's purchase date is its creation's UTC date, like the platform's purchase dates: a bare
    -- CAST(timestamptz AS DATE) would follow the reader's session time zone and move kits between cohorts.
    coalesce(k.purchase_date, o.purchase_date, CAST(timezone('UTC', k.created_at) AS DATE)) AS purchase_date,
    strftime(
        coalesce(k.purchase_date, o.purchase_date, CAST(timezone('UTC', k.created_at) AS DATE)), '%Y-%m'
    ) AS purchase_month,
    k.sample_date,
    k.sample_type,
    k.bristol_scale,
    k.bm_frequency,
    k.replaces_kit_id,
    f.ordered_at,
    f.shipped_at,
    f.delivered_at,
    f.sample_collected_at,
    f.in_transit_to_lab_at,
    f.received_at,
    f.processing_at,
    f.results_ready_at,
    en.ended_at,
    date_diff('second', f.ordered_at, f.shipped_at) / 86400.0 AS days_ordered_to_shipped,
    date_diff('second', f.shipped_at, f.delivered_at) / 86400.0 AS days_shipped_to_delivered,
    date_diff('second', f.delivered_at, f.sample_collected_at) / 86400.0 AS days_delivered_to_sample_collected,
    date_diff('second', f.sample_collected_at, f.in_transit_to_lab_at) / 86400.0
        AS days_sample_collected_to_in_transit,
    date_diff('second', f.in_transit_to_lab_at, f.received_at) / 86400.0 AS days_in_transit_to_received,
    date_diff('second', f.received_at, f.processing_at) / 86400.0 AS days_received_to_processing,
    date_diff('second', f.processing_at, f.results_ready_at) / 86400.0 AS days_processing_to_results_ready,
    date_diff('second', coalesce(f.ordered_at, k.created_at), f.results_ready_at) / 86400.0 AS days_total,
    l.current_stage,
    l.current_status,
    coalesce(ce.entered_at, l.current_since) AS current_stage_since,
    date_diff('second', coalesce(ce.entered_at, l.current_since), a.as_of) / 86400.0 AS days_in_current_stage,
    coalesce(l.is_final, false) AS is_final,
    en.failure_reason,
    f.furthest_path_rank,
    f.unknown_events
FROM kits AS k
LEFT JOIN orders AS o ON o.provider = k.provider AND o.order_id = k.order_id
LEFT JOIN firsts AS f ON f.provider = k.provider AND f.kit_id = k.kit_id
LEFT JOIN latest AS l ON l.provider = k.provider AND l.kit_id = k.kit_id
LEFT JOIN ending AS en ON en.provider = k.provider AND en.kit_id = k.kit_id
LEFT JOIN current_entry AS ce ON ce.provider = k.provider AND ce.kit_id = k.kit_id
CROSS JOIN as_of AS a;
