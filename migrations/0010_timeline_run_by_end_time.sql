-- The same eventId sent again with another timestamp is a second event
-- (the key of events is eventId and timestamp), and an end event's second
-- copy closes a run of its own.  The timeline found a row's run by eventId
-- alone, so each copy met both runs and was listed twice.  A run's end_time
-- is its end event's timestamp: matched on it too, each copy finds its own.
-- Replacing the function keeps its comment and grants.
CREATE OR REPLACE FUNCTION conversation_timeline(p_live_work_item_id text)
RETURNS TABLE (
    "timestamp"          timestamptz,
    message              text,
    "customDimensions"   jsonb,
    "operation_Name"     text,
    "operation_Id"       text,
    "operation_ParentId" text,
    "session_Id"         text,
    "user_Id"            text,
    "severityLevel"      integer,
    "itemType"           text
)
LANGUAGE plpgsql STABLE SET jit = off AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH own AS MATERIALIZED (
        SELECT e FROM events AS e WHERE e.live_work_item_id = p_live_work_item_id
    ), entries AS (
        SELECT own.e FROM own
        UNION ALL
        SELECT other.e
          FROM (SELECT DISTINCT (own.e).operation_id FROM own) AS ops
         CROSS JOIN LATERAL (SELECT e FROM events AS e
                              WHERE e.operation_id = ops.operation_id
                                AND e.live_work_item_id <> p_live_work_item_id
                             OFFSET 0) AS other
    )
    SELECT (x.e).event_time,
           'Scenario' || (x.e).status,
           event_custom_dimensions(x.e, r.duration_ms),
           (x.e).scenario,
           (x.e).operation_id,
           (x.e).live_work_item_id,
           (x.e).session_id,
           coalesce((x.e).user_id::text, '0'),
           0,
           'trace'::text
      FROM entries AS x
      LEFT JOIN LATERAL (SELECT r.duration_ms FROM scenario_runs AS r
                          WHERE r.end_event_id = (x.e).event_id
                            AND r.live_work_item_id = (x.e).live_work_item_id
                            AND r.end_time = (x.e).event_time
                         OFFSET 0) AS r ON true
     ORDER BY (x.e).event_time, (x.e).kafka_partition, (x.e).kafka_offset;
END
$$;
