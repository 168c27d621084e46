-- events partitioned by the UTC day of event_time, so that retention drops
-- whole days (DROP TABLE of a partition: no DELETE, no bloat, no vacuum)
-- and queries over a time range read only the days in it.
--
-- One partition per UTC day, named events_YYYYMMDD.  convdiag creates them
-- ahead of time (`migrate`, and `run` every hour: yesterday to
-- events.partition.ahead.days ahead) and on demand for a late or early
-- event, before the batch transaction that stores it.  There is no DEFAULT
-- partition: creating a partition would then have to scan it, and a row in
-- it would stop its day's partition from being created.
--
-- A unique constraint of a partitioned table must include the partition
-- key, so the key is (event_id, event_time).  A replay is the same message
-- byte for byte, so it carries the same timestamp and is still stored once;
-- the same eventId sent again with another timestamp is another row.
--
-- The table is rebuilt: the old one is renamed, the new one created with a
-- partition for each day that has rows, the rows moved, the old one
-- dropped.  The two functions that use its row type are dropped first and
-- created again: event_custom_dimensions unchanged, conversation_timeline
-- returning the same rows with a query that reads indexes instead of every
-- partition (see below).

DROP FUNCTION conversation_timeline(text);
DROP FUNCTION event_custom_dimensions(events, bigint);

ALTER TABLE events RENAME TO events_unpartitioned;

-- Columns in the order 0001 and 0002 gave them, so the row type is the same.
-- Check constraints keep their names; the key and indexes are made once the
-- rows are in, which is faster than maintaining them row by row.
CREATE TABLE events (
    event_id            text        NOT NULL,
    event_time          timestamptz NOT NULL,
    organization_id     uuid        NOT NULL,
    live_work_item_id   text        NOT NULL,
    scenario            text        NOT NULL,
    scenario_received   text        NOT NULL,
    category            text        NOT NULL,
    status              text        NOT NULL
        CONSTRAINT events_status_check CHECK (status IN ('Started', 'Completed', 'Failed')),
    channel_type        text        NOT NULL,
    participant_type    text,
    user_id             uuid,
    session_id          text,
    transaction_id      text,
    traceparent         text,
    tracestate          text,
    duration_ms         bigint
        CONSTRAINT events_duration_ms_check CHECK (duration_ms >= 0),
    failure_reason      text,
    attributes          jsonb,
    kafka_topic         text        NOT NULL,
    kafka_partition     integer     NOT NULL,
    kafka_offset        bigint      NOT NULL,
    ingested_at         timestamptz NOT NULL DEFAULT now(),
    operation_id        text,
    operation_id_source text
        CONSTRAINT events_operation_id_source_check CHECK (operation_id_source IN
            ('traceparent-header', 'traceparent-body', 'inherited', 'transactionId', 'liveWorkItemId')),
    kafka_traceparent   text,
    kafka_tracestate    text
) PARTITION BY RANGE (event_time);

-- A partition for every day that holds events; the days around today come
-- from `migrate` itself once the migrations are applied.
DO $$
DECLARE
    d date;
    name text;
BEGIN
    FOR d IN SELECT DISTINCT (event_time AT TIME ZONE 'UTC')::date FROM events_unpartitioned ORDER BY 1
    LOOP
        name := 'events_' || to_char(d, 'YYYYMMDD');
        EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)', name,
                       to_char(d, 'YYYY-MM-DD') || 'T00:00:00Z',
                       to_char(d + 1, 'YYYY-MM-DD') || 'T00:00:00Z');
        EXECUTE format('COMMENT ON TABLE %I IS %L', name,
                       'Events of ' || to_char(d, 'YYYY-MM-DD')
                       || ' (UTC): a partition of events, dropped whole by retention (events.retention.days).');
    END LOOP;
END
$$;

INSERT INTO events SELECT * FROM events_unpartitioned;
DROP TABLE events_unpartitioned;

ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (event_id, event_time);
CREATE INDEX events_conversation_idx ON events (live_work_item_id, event_time);
CREATE INDEX events_operation_idx ON events (operation_id);
ANALYZE events;

COMMENT ON TABLE events IS 'Conversation lifecycle events, validated, one row per event; partitioned by the UTC day of event_time (one partition per day, events_YYYYMMDD, created ahead and on demand, dropped whole after events.retention.days). Key: (event_id, event_time), as a partitioned table''s key must hold the partition key: a replayed event is the same message, same timestamp, and is stored once; the same eventId sent again with a different timestamp is stored as a second row.';
COMMENT ON CONSTRAINT events_pkey ON events IS 'eventId with its time: replays (same message, same timestamp) are stored once.';
COMMENT ON COLUMN events.event_id IS 'eventId as sent by the producer; a replayed event is stored once.';
COMMENT ON COLUMN events.event_time IS 'timestamp of the event as sent, normalized to UTC; its UTC day is the partition.';
COMMENT ON COLUMN events.organization_id IS 'organizationId: the contact-center organization.';
COMMENT ON COLUMN events.live_work_item_id IS 'liveWorkItemId: the conversation (LiveWorkItem) ID.';
COMMENT ON COLUMN events.scenario IS 'Canonical scenario name (operation_Name); the received name when the catalogue does not know it.';
COMMENT ON COLUMN events.scenario_received IS 'The scenario name exactly as received (may be an alias).';
COMMENT ON COLUMN events.category IS 'Scenario category from the catalogue, or Other for unknown names.';
COMMENT ON COLUMN events.status IS 'Started, Completed or Failed.';
COMMENT ON COLUMN events.channel_type IS 'channelType: livechat, voice, sms, whatsapp, ...';
COMMENT ON COLUMN events.participant_type IS 'participantType: HumanAgent, VirtualAgent, Customer, Supervisor or System.';
COMMENT ON COLUMN events.user_id IS 'userId: Entra object ID of the agent or bot, where applicable.';
COMMENT ON COLUMN events.session_id IS 'sessionId: the instance of the user''s interaction with the app.';
COMMENT ON COLUMN events.transaction_id IS 'transactionId: the contact center''s root transaction ID.';
COMMENT ON COLUMN events.traceparent IS 'W3C traceparent as received in the body (a Kafka header of the same name wins).';
COMMENT ON COLUMN events.tracestate IS 'W3C tracestate as received in the body.';
COMMENT ON COLUMN events.duration_ms IS 'durationMs measured by the source, on Completed/Failed.';
COMMENT ON COLUMN events.failure_reason IS 'failureReason, on Failed.';
COMMENT ON COLUMN events.attributes IS 'Extra flat dimensions, passed through.';
COMMENT ON COLUMN events.kafka_topic IS 'Kafka topic the event was read from.';
COMMENT ON COLUMN events.kafka_partition IS 'Kafka partition the event was read from.';
COMMENT ON COLUMN events.kafka_offset IS 'Kafka offset of the message (of its first copy, for replayed events).';
COMMENT ON COLUMN events.ingested_at IS 'When convdiag stored the event.';
COMMENT ON COLUMN events.operation_id IS 'operation_Id: trace-id of a valid traceparent (Kafka header, else body); else the conversation''s (inherited); else transactionId; else derived from the liveWorkItemId.';
COMMENT ON COLUMN events.operation_id_source IS 'Where operation_id came from: traceparent-header, traceparent-body, inherited, transactionId or liveWorkItemId.';
COMMENT ON COLUMN events.kafka_traceparent IS 'traceparent Kafka header of the message, as received.';
COMMENT ON COLUMN events.kafka_tracestate IS 'tracestate Kafka header of the message, as received.';

GRANT SELECT ON events TO convdiag_analyst;

-- As 0003 created it.
CREATE FUNCTION event_custom_dimensions(e events, run_duration_ms bigint) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    -- An attribute named like a standard property is renamed "attributes.<name>",
    -- as the exporter does, so that none overwrites one.
    SELECT coalesce((SELECT jsonb_object_agg(
                                CASE WHEN key IN ('organizationId', 'LiveWorkItemID',
                                    'ChannelType', 'Duration', 'ParticipantType', 'Category',
                                    'powerplatform.analytics.scenario',
                                    'powerplatform.analytics.subscenario',
                                    'powerplatform.analytics.resource.id',
                                    'powerplatform.analytics.resource.organization.id',
                                    'omnichannel.channel.type', 'failureReason',
                                    'convdiag.truncated')
                                     THEN 'attributes.' || key ELSE key END,
                                value #>> '{}')
                       FROM jsonb_each(e.attributes)), '{}'::jsonb)
        || jsonb_strip_nulls(jsonb_build_object(
        'organizationId', e.organization_id::text,
        'LiveWorkItemID', e.live_work_item_id,
        'ChannelType', e.channel_type,
        'Duration', CASE WHEN e.status <> 'Started'
                         THEN coalesce(e.duration_ms, run_duration_ms)::text END,
        'ParticipantType', e.participant_type,
        'Category', e.category,
        'powerplatform.analytics.scenario', 'ConversationDiagnosticsScenario',
        'powerplatform.analytics.subscenario', e.scenario,
        'powerplatform.analytics.resource.id', e.live_work_item_id,
        'powerplatform.analytics.resource.organization.id', e.organization_id::text,
        'omnichannel.channel.type', e.channel_type,
        'failureReason', e.failure_reason))
$$;

COMMENT ON FUNCTION event_custom_dimensions(events, bigint) IS 'The customDimensions (properties) of the Traces entry exported for an event; run_duration_ms is the duration of the scenario run a Completed/Failed event closed, used when the event has no durationMs.';

-- The same rows as 0003's, found another way.  0003 asked for
-- "live_work_item_id = $1 OR operation_id IN (...)": an OR with a subquery
-- is a filter on every row, so every partition was read whole (about a
-- second per million events).  Here each part is an index probe per
-- partition: the conversation's own events, then, through a LATERAL
-- subquery that keeps the probe per operation ID, the other conversations'
-- events that share one of its operation IDs; scenario_runs is probed per
-- row the same way.  PL/pgSQL, so that a session keeps the plan: planning
-- over every partition costs more than running it.  jit is off: the
-- statistics of a partition created or filled moments ago can make the
-- estimate large enough to compile the query, which takes seconds, for a
-- query that reads a few index pages.
CREATE FUNCTION conversation_timeline(p_live_work_item_id text)
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
                         OFFSET 0) AS r ON true
     ORDER BY (x.e).event_time, (x.e).kafka_partition, (x.e).kafka_offset;
END
$$;

COMMENT ON FUNCTION conversation_timeline(text) IS 'A conversation''s traces, columns as the Application Insights Traces table shows them: entries whose operation_ParentId is the LiveWorkItem or whose operation_Id is one of its operation IDs, by time.';

GRANT EXECUTE ON FUNCTION event_custom_dimensions(events, bigint), conversation_timeline(text)
    TO convdiag_analyst;
