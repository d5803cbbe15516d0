-- A row is one kit that is not finished and has been in its current stage longer than the 95th percentile of the
-- time kits of the same provider spent in that stage before moving on (stages with fewer than 5 completed
-- passages are not judged).
CREATE OR REPLACE VIEW stuck_kits AS
WITH passages AS (
    -- how long each kit stayed in each stage it has left: from its first event in the stage to its first event
    -- in a later stage
    SELECT
        e.provider,
        e.kit_id,
        e.stage,
        min(e.partner_date) AS entered_at,
        (
            SELECT min(n.partner_date) FROM kit_events AS n
            WHERE n.provider = e.provider AND n.kit_id = e.kit_id AND n.stage_rank > e.stage_rank AND n.on_path
        ) AS left_at
    FROM kit_events AS e
    WHERE e.on_path
    GROUP BY e.provider, e.kit_id, e.stage, e.stage_rank
),
thresholds AS (
    SELECT
        provider,
        stage,
        quantile_cont(date_diff('second', entered_at, left_at) / 86400.0, 0.95) AS p95_days,
        count(*) AS passages
    FROM passages
    WHERE left_at IS NOT NULL
    GROUP BY provider, stage
    HAVING count(*) >= 5
)
SELECT
    l.provider,
    l.kit_id,
    l.order_id,
    l.current_stage,
    l.current_status,
    l.current_stage_since,
    l.days_in_current_stage,
    t.p95_days,
    l.days_in_current_stage - t.p95_days AS days_over_p95,
    l.country_code,
    l.purchase_month
FROM kit_lifecycle AS l
JOIN thresholds AS t ON t.provider = l.provider AND t.stage = l.current_stage
WHERE NOT l.is_final AND l.days_in_current_stage > t.p95_days;
