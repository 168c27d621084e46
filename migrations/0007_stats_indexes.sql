-- Indexes for the stats functions of 0006 over a short range (a day, a
-- week), which otherwise read every scenario run and conversation ever kept.
--
-- Each index is paid for at ingest, so they are partial where the rows the
-- functions look for are a subset: a run enters the end-time index once, when
-- its end arrives (open runs have no end_time), and only the
-- ConversationInitialized runs, one per conversation, enter the start-time
-- index.

CREATE INDEX scenario_runs_end_time_idx ON scenario_runs (end_time)
    WHERE end_time IS NOT NULL;
CREATE INDEX scenario_runs_initialized_idx ON scenario_runs (start_time)
    WHERE scenario = 'ConversationInitialized';
CREATE INDEX conversations_first_event_time_idx ON conversations (first_event_time);

-- The same answers as before; the accepted runs are now looked for only from
-- `since` on (an acceptance follows its initialization, which is at or after
-- since), so the end-time index serves them instead of a scan of every run.
CREATE OR REPLACE FUNCTION time_to_accept(since timestamptz, until timestamptz,
                                          channel text DEFAULT NULL)
RETURNS TABLE (
    live_work_item_id text,
    channel_type      text,
    initialized_at    timestamptz,
    accepted_at       timestamptz,
    time_to_accept_ms bigint
)
LANGUAGE sql STABLE AS $$
    WITH initialized AS (
        SELECT live_work_item_id, min(start_time) AS initialized_at
          FROM scenario_runs
         WHERE scenario = 'ConversationInitialized'
           AND start_time >= since AND start_time < until
         GROUP BY live_work_item_id
    ), accepted AS (
        SELECT r.live_work_item_id, min(r.end_time) AS accepted_at
          FROM scenario_runs AS r
          JOIN initialized AS i USING (live_work_item_id)
         WHERE r.scenario = 'AgentAccepted' AND r.end_status = 'Completed'
           AND r.end_time >= since AND r.end_time >= i.initialized_at
         GROUP BY r.live_work_item_id
    )
    SELECT i.live_work_item_id,
           c.channel_type,
           i.initialized_at,
           a.accepted_at,
           (extract(epoch FROM a.accepted_at - i.initialized_at) * 1000)::bigint
      FROM initialized AS i
      JOIN accepted AS a USING (live_work_item_id)
      JOIN conversations AS c USING (live_work_item_id)
     WHERE channel IS NULL OR c.channel_type = channel
$$;
