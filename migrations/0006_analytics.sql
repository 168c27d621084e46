-- What analysts ask of the scenario history, as functions over a time range
-- (the same objects `convdiag stats` reads) and a view of what is still open.
--
-- Days are UTC days.  The functions are LANGUAGE sql with a string body: the
-- planner inlines them into the calling query, so the range and channel
-- given reach the scans as constants, and the tables are looked up by name
-- when called, not bound at creation (events can be rebuilt under them).
-- Percentiles are percentile_disc: a duration that actually occurred, in
-- whole milliseconds, the smallest whose share of the group reaches the
-- fraction.

-- The table migrate creates before any migration runs.
COMMENT ON TABLE schema_migrations IS 'Migrations applied to this database (migrations/ in the source), one row each.';
COMMENT ON COLUMN schema_migrations.version IS 'The migration''s number, e.g. 0003.';
COMMENT ON COLUMN schema_migrations.name IS 'The migration''s file name.';
COMMENT ON COLUMN schema_migrations.checksum IS 'CRC-32 of the file as applied; migrate warns when a file has changed since (applied migrations are never re-run).';
COMMENT ON COLUMN schema_migrations.applied_at IS 'When the migration was applied.';

CREATE FUNCTION scenario_run_stats(since timestamptz, until timestamptz, channel text DEFAULT NULL)
RETURNS TABLE (
    day          date,
    channel_type text,
    scenario     text,
    ended        bigint,
    completed    bigint,
    failed       bigint,
    failure_rate numeric,
    p50_ms       bigint,
    p90_ms       bigint,
    p99_ms       bigint
)
LANGUAGE sql STABLE AS $$
    SELECT (r.end_time AT TIME ZONE 'UTC')::date,
           c.channel_type,
           r.scenario,
           count(*),
           count(*) FILTER (WHERE r.end_status = 'Completed'),
           count(*) FILTER (WHERE r.end_status = 'Failed'),
           round((count(*) FILTER (WHERE r.end_status = 'Failed'))::numeric / count(*), 4),
           percentile_disc(0.5) WITHIN GROUP (ORDER BY r.duration_ms),
           percentile_disc(0.9) WITHIN GROUP (ORDER BY r.duration_ms),
           percentile_disc(0.99) WITHIN GROUP (ORDER BY r.duration_ms)
      FROM scenario_runs AS r
      JOIN conversations AS c USING (live_work_item_id)
     WHERE r.end_time >= since AND r.end_time < until
       AND (channel IS NULL OR c.channel_type = channel)
     GROUP BY 1, 2, 3
     ORDER BY 1, 2, 3
$$;

COMMENT ON FUNCTION scenario_run_stats(timestamptz, timestamptz, text) IS 'Scenario runs that ended (Completed or Failed, paired or not) in [since, until), per UTC day of the end, channel and scenario: how many, how many failed, the failure rate (failed / ended, 4 decimals) and duration percentiles in ms (percentile_disc over the runs with a duration: the source''s durationMs, else end - start). channel: only that channelType; NULL for all.';

CREATE FUNCTION abandonment_stats(since timestamptz, until timestamptz, channel text DEFAULT NULL)
RETURNS TABLE (
    day              date,
    channel_type     text,
    conversations    bigint,
    ended            bigint,
    abandoned        bigint,
    abandonment_rate numeric
)
LANGUAGE sql STABLE AS $$
    SELECT (first_event_time AT TIME ZONE 'UTC')::date,
           channel_type,
           count(*),
           count(outcome),
           count(*) FILTER (WHERE outcome = 'ConversationAbandonedByCustomer'),
           round((count(*) FILTER (WHERE outcome = 'ConversationAbandonedByCustomer'))::numeric
                 / nullif(count(outcome), 0), 4)
      FROM conversations
     WHERE first_event_time >= since AND first_event_time < until
       AND (channel IS NULL OR channel_type = channel)
     GROUP BY 1, 2
     ORDER BY 1, 2
$$;

COMMENT ON FUNCTION abandonment_stats(timestamptz, timestamptz, text) IS 'Conversations whose first event is in [since, until), per UTC day of that event and channel: how many, how many have ended (have an outcome), how many the customer abandoned (outcome ConversationAbandonedByCustomer) and the abandonment rate, abandoned / ended (4 decimals; NULL while none has ended). Conversations still in progress count in conversations, not in the rate. channel: only that channelType; NULL for all.';

CREATE FUNCTION agent_offer_stats(since timestamptz, until timestamptz, channel text DEFAULT NULL)
RETURNS TABLE (
    day            date,
    channel_type   text,
    offers         bigint,
    accepted       bigint,
    rejected       bigint,
    timed_out      bigint,
    rejection_rate numeric,
    timeout_rate   numeric
)
LANGUAGE sql STABLE AS $$
    SELECT (r.end_time AT TIME ZONE 'UTC')::date,
           c.channel_type,
           count(*),
           count(*) FILTER (WHERE r.scenario = 'AgentAccepted'),
           count(*) FILTER (WHERE r.scenario = 'AgentRejected'),
           count(*) FILTER (WHERE r.scenario = 'AgentAcceptanceTimedOut'),
           round((count(*) FILTER (WHERE r.scenario = 'AgentRejected'))::numeric / count(*), 4),
           round((count(*) FILTER (WHERE r.scenario = 'AgentAcceptanceTimedOut'))::numeric / count(*), 4)
      FROM scenario_runs AS r
      JOIN conversations AS c USING (live_work_item_id)
     WHERE r.scenario IN ('AgentAccepted', 'AgentRejected', 'AgentAcceptanceTimedOut')
       AND r.end_status = 'Completed'
       AND r.end_time >= since AND r.end_time < until
       AND (channel IS NULL OR c.channel_type = channel)
     GROUP BY 1, 2
     ORDER BY 1, 2
$$;

COMMENT ON FUNCTION agent_offer_stats(timestamptz, timestamptz, text) IS 'Conversations offered to agents, per UTC day and channel: an offer is answered when its AgentAccepted, AgentRejected or AgentAcceptanceTimedOut run completes in [since, until) (a Failed end, the step itself failing, is not an answer; see scenario_run_stats). offers = accepted + rejected + timed_out; rejection_rate and timeout_rate are shares of offers (4 decimals). channel: only that channelType; NULL for all.';

CREATE FUNCTION time_to_accept(since timestamptz, until timestamptz, channel text DEFAULT NULL)
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
           AND r.end_time >= i.initialized_at
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

COMMENT ON FUNCTION time_to_accept(timestamptz, timestamptz, text) IS 'Conversations initialized in [since, until) that an agent accepted: the time of the ConversationInitialized Started event, that of the first AgentAccepted Completed event after it, and the time between them in ms. Conversations not (yet) accepted are left out; rows come in no particular order. channel: only that channelType; NULL for all.';

CREATE FUNCTION time_to_accept_stats(since timestamptz, until timestamptz, channel text DEFAULT NULL)
RETURNS TABLE (
    day          date,
    channel_type text,
    accepted     bigint,
    p50_ms       bigint,
    p90_ms       bigint,
    p99_ms       bigint
)
LANGUAGE sql STABLE AS $$
    SELECT (initialized_at AT TIME ZONE 'UTC')::date,
           channel_type,
           count(*),
           percentile_disc(0.5) WITHIN GROUP (ORDER BY time_to_accept_ms),
           percentile_disc(0.9) WITHIN GROUP (ORDER BY time_to_accept_ms),
           percentile_disc(0.99) WITHIN GROUP (ORDER BY time_to_accept_ms)
      FROM time_to_accept(since, until, channel)
     GROUP BY 1, 2
     ORDER BY 1, 2
$$;

COMMENT ON FUNCTION time_to_accept_stats(timestamptz, timestamptz, text) IS 'Time from ConversationInitialized to AgentAccepted (see time_to_accept), per UTC day of the initialization and channel: accepted conversations and percentiles in ms (percentile_disc). channel: only that channelType; NULL for all.';

CREATE FUNCTION stale_runs_by_scenario(since timestamptz DEFAULT '-infinity',
                                       until timestamptz DEFAULT 'infinity',
                                       channel text DEFAULT NULL)
RETURNS TABLE (
    scenario          text,
    category          text,
    stale_runs        bigint,
    conversations     bigint,
    oldest_start_time timestamptz,
    newest_start_time timestamptz
)
LANGUAGE sql STABLE AS $$
    SELECT r.scenario,
           r.category,
           count(*),
           count(DISTINCT r.live_work_item_id),
           min(r.start_time),
           max(r.start_time)
      FROM scenario_runs AS r
      JOIN conversations AS c USING (live_work_item_id)
     WHERE r.stale
       AND r.start_time >= since AND r.start_time < until
       AND (channel IS NULL OR c.channel_type = channel)
     GROUP BY 1, 2
     ORDER BY 3 DESC, 1
$$;

-- Stale runs are few among millions: without this every look at them reads
-- the whole table.  Only stale rows are in it, so ingest pays next to nothing.
CREATE INDEX scenario_runs_stale_idx ON scenario_runs (start_time) WHERE stale;

COMMENT ON FUNCTION stale_runs_by_scenario(timestamptz, timestamptz, text) IS 'Scenario runs started in [since, until) that are still open and flagged stale (their end never came within scenario.stale.after.ms), per scenario: how many, in how many conversations, the oldest and newest start. Without arguments: all of them. channel: only that channelType; NULL for all.';

-- Reasons name the value that was refused, so no two are alike; the class
-- keeps the field and the rule and drops what varies (the value, sizes,
-- offsets, attribute names), following the phrasing of src/event/event.c,
-- src/common/timeutil.c and src/store/store.c.  Derived at query time rather
-- than stored: the ingest path stays as it is, and a change of phrasing
-- needs only this function, for old rows and new alike.
CREATE FUNCTION dead_letter_reason_class(reason text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN reason LIKE 'PostgreSQL refused the event: %' THEN
            'PostgreSQL refused the event'
            || coalesce(' (SQLSTATE ' || substring(reason FROM '\(SQLSTATE ([0-9A-Z]{5})\)$') || ')', '')
        -- The field is whatever the producer sent: only the rule is a class.
        WHEN reason LIKE '%: unknown field (contract v1 has no such field)' THEN
            'unknown field (contract v1 has no such field)'
        ELSE
            regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(reason,
                -- where in the message it went wrong
                '( at offset [0-9]+| \((error near )?byte offset [0-9]+\))$', ''),
                '^attributes\.[^:]*:', 'attributes.*:'),
                -- the quoted value after the field (or after "key "): it ends at
                -- the first quote followed by a space or the end
                '^([A-Za-z]+: (key )?)''([^'']|''(?! ))*''( |$)', '\1''...''\4'),
                '^durationMs: [^ ]+ is not', 'durationMs: N is not'),
                '\mis [0-9]+ (bytes|characters)', 'is N \1')
    END
$$;

COMMENT ON FUNCTION dead_letter_reason_class(text) IS 'The class of a dead letter''s reason: the reason without what varies from message to message (the refused value becomes ''...'', sizes N, offsets and attribute names dropped; an unknown field is one class whatever its name; PostgreSQL refusals by SQLSTATE). E.g. status: ''...'' is not one of Started, Completed, Failed.';

CREATE FUNCTION dead_letters_by_reason(since timestamptz DEFAULT '-infinity',
                                       until timestamptz DEFAULT 'infinity')
RETURNS TABLE (
    reason_class      text,
    dead_letters      bigint,
    first_received_at timestamptz,
    last_received_at  timestamptz,
    example_reason    text
)
LANGUAGE sql STABLE AS $$
    SELECT dead_letter_reason_class(reason),
           count(*),
           min(received_at),
           max(received_at),
           min(reason)
      FROM dead_letters
     WHERE received_at >= since AND received_at < until
     GROUP BY 1
     ORDER BY 2 DESC, 1
$$;

COMMENT ON FUNCTION dead_letters_by_reason(timestamptz, timestamptz) IS 'Dead letters stored in [since, until) (by received_at: a message that is not an event has no event time, nor a channel), per reason class (dead_letter_reason_class): how many, the first and last, and one full reason of the class. Without arguments: all of them.';

CREATE VIEW open_conversations AS
SELECT c.live_work_item_id,
       c.organization_id,
       c.channel_type,
       c.first_event_time,
       c.last_event_time,
       c.outcome,
       (SELECT count(*) FROM scenario_runs AS r
         WHERE r.live_work_item_id = c.live_work_item_id AND r.state = 'open')       AS open_runs,
       (SELECT count(*) FROM scenario_runs AS r
         WHERE r.live_work_item_id = c.live_work_item_id AND r.state = 'open' AND r.stale) AS stale_runs
  FROM conversations AS c
 WHERE c.closed_time IS NULL;

COMMENT ON VIEW open_conversations IS 'Conversations not closed yet (no ConversationClosed has completed or failed), with their runs still open.';
COMMENT ON COLUMN open_conversations.live_work_item_id IS 'The conversation (LiveWorkItem) ID.';
COMMENT ON COLUMN open_conversations.organization_id IS 'organizationId of its first stored event.';
COMMENT ON COLUMN open_conversations.channel_type IS 'channelType of its first stored event.';
COMMENT ON COLUMN open_conversations.first_event_time IS 'Earliest event time seen.';
COMMENT ON COLUMN open_conversations.last_event_time IS 'Latest event time seen: how long it has been silent.';
COMMENT ON COLUMN open_conversations.outcome IS 'How it ended if an ending scenario has completed (closing follows), else NULL.';
COMMENT ON COLUMN open_conversations.open_runs IS 'Its scenario runs started and not ended.';
COMMENT ON COLUMN open_conversations.stale_runs IS 'Of those, the runs flagged stale.';

GRANT SELECT ON open_conversations TO convdiag_analyst;
GRANT EXECUTE ON FUNCTION
    scenario_run_stats(timestamptz, timestamptz, text),
    abandonment_stats(timestamptz, timestamptz, text),
    agent_offer_stats(timestamptz, timestamptz, text),
    time_to_accept(timestamptz, timestamptz, text),
    time_to_accept_stats(timestamptz, timestamptz, text),
    stale_runs_by_scenario(timestamptz, timestamptz, text),
    dead_letter_reason_class(text),
    dead_letters_by_reason(timestamptz, timestamptz)
    TO convdiag_analyst;
