-- bench/history: the dataset, built in PostgreSQL itself (see README.md).
-- psql variables: conversations, days, first_day (YYYY-MM-DD, UTC).
-- Every conversation has 10 events: five scenarios started and ended, or, for
-- 1 in 100, four and two started that never end (open runs, flagged stale).
\set ON_ERROR_STOP on
SET maintenance_work_mem = '1GB';
SET work_mem = '256MB';
SET synchronous_commit = off;
\timing on

-- A repeatable number in [0, 1) for n and a salt: the same dataset every time.
-- (PostgreSQL's own 64-bit hash, seeded: independent from one salt to the next.)
CREATE FUNCTION pg_temp.r(n bigint, salt int) RETURNS float8 LANGUAGE sql IMMUTABLE AS
$$ SELECT (hashint8extended(n, salt) & 9007199254740991)::float8 / 9007199254740992 $$;

CREATE TEMP TABLE flow_steps (flow int, k int, scenario text, category text, participant text,
                              ends boolean, base_ms int);
INSERT INTO flow_steps VALUES
    -- routed to a queue, accepted, ended by the customer (or the agent), closed
    (1, 0, 'ConversationInitialized', 'ConversationInitiation', 'System', true, 300),
    (1, 1, 'QueueAssignment', 'Routing', 'System', true, 20000),
    (1, 2, 'AgentAccepted', 'HumanAgentInteraction', 'HumanAgent', true, 15000),
    (1, 3, 'ConversationEndedByCustomer', 'ConversationCompletion', 'Customer', true, 500),
    (1, 4, 'ConversationClosed', 'ConversationCompletion', 'System', true, 400),
    -- handled by a bot
    (2, 0, 'ConversationInitialized', 'ConversationInitiation', 'System', true, 300),
    (2, 1, 'VirtualAgentAssigned', 'VirtualAgentInteraction', 'VirtualAgent', true, 800),
    (2, 2, 'CustomerIdentified', 'ConversationInitiation', 'VirtualAgent', true, 1500),
    (2, 3, 'ConversationEndedByVirtualAgent', 'VirtualAgentInteraction', 'VirtualAgent', true, 500),
    (2, 4, 'ConversationClosed', 'ConversationCompletion', 'System', true, 400),
    -- rejected, then accepted
    (3, 0, 'ConversationInitialized', 'ConversationInitiation', 'System', true, 300),
    (3, 1, 'AgentRejected', 'HumanAgentInteraction', 'HumanAgent', true, 8000),
    (3, 2, 'AgentAccepted', 'HumanAgentInteraction', 'HumanAgent', true, 15000),
    (3, 3, 'ConversationEndedByAgent', 'ConversationCompletion', 'HumanAgent', true, 500),
    (3, 4, 'ConversationClosed', 'ConversationCompletion', 'System', true, 400),
    -- acceptance timed out, abandoned
    (4, 0, 'ConversationInitialized', 'ConversationInitiation', 'System', true, 300),
    (4, 1, 'QueueAssignment', 'Routing', 'System', true, 20000),
    (4, 2, 'AgentAcceptanceTimedOut', 'HumanAgentInteraction', 'HumanAgent', true, 60000),
    (4, 3, 'ConversationAbandonedByCustomer', 'ConversationCompletion', 'Customer', true, 300),
    (4, 4, 'ConversationClosed', 'ConversationCompletion', 'System', true, 400),
    -- escalated from a bot to an agent
    (5, 0, 'ConversationInitialized', 'ConversationInitiation', 'System', true, 300),
    (5, 1, 'VirtualAgentEscalatedToHumanAgent', 'VirtualAgentInteraction', 'VirtualAgent', true, 600),
    (5, 2, 'AgentAccepted', 'HumanAgentInteraction', 'HumanAgent', true, 15000),
    (5, 3, 'ConversationEndedByCustomer', 'ConversationCompletion', 'Customer', true, 500),
    (5, 4, 'ConversationClosed', 'ConversationCompletion', 'System', true, 400),
    -- the agent rejoined and the conversation was never closed: two open runs
    (6, 0, 'ConversationInitialized', 'ConversationInitiation', 'System', true, 300),
    (6, 1, 'QueueAssignment', 'Routing', 'System', true, 20000),
    (6, 2, 'AgentAccepted', 'HumanAgentInteraction', 'HumanAgent', true, 15000),
    (6, 3, 'ConversationEndedByCustomer', 'ConversationCompletion', 'Customer', true, 500),
    (6, 4, 'AgentRejoined', 'HumanAgentInteraction', 'HumanAgent', false, 0),
    (6, 5, 'ConversationClosed', 'ConversationCompletion', 'System', false, 0);

-- One row per scenario run, with what its conversation and its events need.
-- Conversations arrive evenly over the days (the last ones of a day end after
-- midnight), each step two minutes after the one before.
CREATE UNLOGGED TABLE bench_steps AS
WITH conv AS (
    SELECT n,
           md5('lwi-' || n)::uuid::text AS lwi,
           md5('org-' || (n % 20))::uuid AS org,
           CASE WHEN c < 0.35 THEN 'livechat' WHEN c < 0.60 THEN 'voice'
                WHEN c < 0.72 THEN 'whatsapp' WHEN c < 0.80 THEN 'sms'
                WHEN c < 0.85 THEN 'facebook' WHEN c < 0.90 THEN 'teams'
                WHEN c < 0.95 THEN 'email' ELSE 'custom' END AS channel,
           CASE WHEN f < 0.50 THEN 1 WHEN f < 0.70 THEN 2 WHEN f < 0.80 THEN 3
                WHEN f < 0.90 THEN 4 WHEN f < 0.99 THEN 5 ELSE 6 END AS flow,
           (:'first_day' || 'T00:00:00Z')::timestamptz
               + make_interval(secs => n * (:days * 86400.0 / :conversations) + 30 * pg_temp.r(n, 5)) AS t0,
           CASE WHEN o < 0.3 THEN md5('trace-' || n) END AS trace_id,
           CASE WHEN o >= 0.3 AND o < 0.6 THEN 'txn-' || n END AS txn,
           'sess-' || substr(md5('sess-' || n), 1, 12) AS session
      FROM (SELECT n, pg_temp.r(n, 1) AS c, pg_temp.r(n, 2) AS f, pg_temp.r(n, 4) AS o
              FROM generate_series(0, :conversations - 1) AS n) AS x
)
SELECT c.n, c.lwi, c.org, c.channel, c.trace_id, c.txn, c.session, s.k,
       CASE WHEN c.flow = 1 AND s.k = 3 AND pg_temp.r(c.n, 3) < 0.4 THEN 'ConversationEndedByAgent'
            ELSE s.scenario END AS scenario,
       s.category,
       CASE WHEN c.flow = 1 AND s.k = 3 AND pg_temp.r(c.n, 3) < 0.4 THEN 'HumanAgent'
            ELSE s.participant END AS participant,
       s.ends,
       s.ends AND pg_temp.r(c.n, 10 + s.k) < 0.02 AS failed,
       c.t0 + make_interval(secs => s.k * 120 + 5 * pg_temp.r(c.n, 20 + s.k)) AS start_time,
       greatest(1, (s.base_ms * (0.2 + 1.6 * pg_temp.r(c.n, 30 + s.k)))::bigint) AS dur_ms,
       pg_temp.r(c.n, 40 + s.k) < 0.5 AS source_duration
  FROM conv AS c JOIN flow_steps AS s USING (flow);

-- events: into a partitioned copy without indexes first, then each day is
-- indexed on its own and attached to events (faster than index upkeep row by row).
CREATE TABLE events_load (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (event_time);
SELECT format('CREATE TABLE %I PARTITION OF events_load FOR VALUES FROM (%L) TO (%L)',
              'events_' || to_char(d, 'YYYYMMDD'), to_char(d, 'YYYY-MM-DD') || 'T00:00:00Z',
              to_char(d + 1, 'YYYY-MM-DD') || 'T00:00:00Z')
  FROM generate_series(0, :days) AS i, LATERAL (SELECT :'first_day'::date + i AS d) AS x
\gexec

INSERT INTO events_load
SELECT md5(s.lwi || '/' || s.k || '/' || e.st)::uuid::text,
       t.at,
       s.org, s.lwi, s.scenario, s.scenario, s.category,
       CASE WHEN e.st = 'S' THEN 'Started' WHEN s.failed THEN 'Failed' ELSE 'Completed' END,
       s.channel, s.participant,
       CASE s.participant WHEN 'HumanAgent' THEN md5('agent-' || ((s.n * 7 + s.k) % 3000))::uuid
                          WHEN 'VirtualAgent' THEN md5('bot-' || (s.n % 50))::uuid END,
       CASE WHEN s.participant IN ('HumanAgent', 'Customer') THEN s.session END,
       s.txn,
       CASE WHEN s.trace_id IS NOT NULL
            THEN '00-' || s.trace_id || '-' || substr(md5('span-' || s.n || '/' || s.k), 1, 16) || '-01' END,
       NULL,
       CASE WHEN e.st = 'E' AND s.source_duration THEN s.dur_ms END,
       CASE WHEN e.st = 'E' AND s.failed
            THEN (ARRAY['AgentUnavailable', 'Timeout', 'ChannelError'])[1 + s.n % 3] END,
       CASE WHEN s.scenario = 'QueueAssignment'
            THEN jsonb_build_object('queue', 'q' || (s.n % 25), 'priority', s.n % 3) END,
       'conversation-events', (s.n % 12)::int, s.n * 12 + s.k * 2 + (e.st = 'E')::int,
       t.at + interval '2 s',
       coalesce(s.trace_id, s.txn, replace(s.lwi, '-', '')),
       CASE WHEN s.trace_id IS NOT NULL THEN 'traceparent-body'
            WHEN s.txn IS NOT NULL THEN 'transactionId' ELSE 'liveWorkItemId' END,
       NULL, NULL
  FROM bench_steps AS s
 CROSS JOIN (VALUES ('S'), ('E')) AS e(st)
 CROSS JOIN LATERAL (SELECT CASE WHEN e.st = 'S' THEN s.start_time
                                 ELSE s.start_time + s.dur_ms * interval '1 ms' END) AS t(at)
 WHERE e.st = 'S' OR s.ends;

DO $$
DECLARE
    p record;
BEGIN
    FOR p IN SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound
               FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
              WHERE i.inhparent = 'events_load'::regclass ORDER BY 1
    LOOP
        EXECUTE format('ALTER TABLE events_load DETACH PARTITION %I', p.relname);
        -- The indexes of events (0005); ATTACH makes any other that events has.
        EXECUTE format('ALTER TABLE %I ADD PRIMARY KEY (event_id, event_time)', p.relname);
        EXECUTE format('CREATE INDEX ON %I (live_work_item_id, event_time)', p.relname);
        EXECUTE format('CREATE INDEX ON %I (operation_id)', p.relname);
        EXECUTE format('ALTER TABLE events ATTACH PARTITION %I %s', p.relname, p.bound);
        EXECUTE format('COMMENT ON TABLE %I IS %L', p.relname,
                       'Events of ' || to_date(substr(p.relname, 8), 'YYYYMMDD')
                       || ' (UTC): a partition of events, dropped whole by retention (events.retention.days).');
    END LOOP;
END
$$;
DROP TABLE events_load;

-- scenario_runs and conversations, their secondary indexes made after the rows.
CREATE TEMP TABLE saved_indexes AS
SELECT indexrelid::regclass::text AS name, pg_get_indexdef(indexrelid) AS def
  FROM pg_index
 WHERE indrelid IN ('scenario_runs'::regclass, 'conversations'::regclass)
   AND NOT indisprimary;
SELECT format('DROP INDEX %s', name) FROM saved_indexes
\gexec

INSERT INTO scenario_runs (live_work_item_id, scenario, category, state, start_event_id, start_time,
                           end_event_id, end_time, end_status, duration_ms, duration_source, stale,
                           updated_at)
SELECT lwi, scenario, category,
       CASE WHEN NOT ends THEN 'open' WHEN failed THEN 'failed' ELSE 'completed' END,
       md5(lwi || '/' || k || '/S')::uuid::text, start_time,
       CASE WHEN ends THEN md5(lwi || '/' || k || '/E')::uuid::text END,
       CASE WHEN ends THEN start_time + dur_ms * interval '1 ms' END,
       CASE WHEN ends THEN CASE WHEN failed THEN 'Failed' ELSE 'Completed' END END,
       CASE WHEN ends THEN dur_ms END,
       CASE WHEN ends THEN CASE WHEN source_duration THEN 'source' ELSE 'pair' END END,
       NOT ends,
       start_time + dur_ms * interval '1 ms' + interval '2 s'
  FROM bench_steps;

INSERT INTO conversations (live_work_item_id, organization_id, channel_type, operation_id,
                           first_event_time, last_event_time, outcome, outcome_time, closed_time,
                           event_count, started_count, completed_count, failed_count,
                           unknown_scenario_count, updated_at)
SELECT lwi, org, channel, coalesce(trace_id, txn, replace(lwi, '-', '')),
       min(start_time),
       max(CASE WHEN ends THEN start_time + dur_ms * interval '1 ms' ELSE start_time END),
       (array_agg(scenario ORDER BY k) FILTER (WHERE ends AND scenario IN (
           'ConversationEndedByCustomer', 'ConversationEndedByAgent', 'ConversationEndedByVirtualAgent',
           'ConversationAbandonedByCustomer', 'ConversationForceClosedBySupervisor')))[1],
       min(start_time + dur_ms * interval '1 ms') FILTER (WHERE ends AND scenario IN (
           'ConversationEndedByCustomer', 'ConversationEndedByAgent', 'ConversationEndedByVirtualAgent',
           'ConversationAbandonedByCustomer', 'ConversationForceClosedBySupervisor')),
       min(start_time + dur_ms * interval '1 ms') FILTER (WHERE ends AND scenario = 'ConversationClosed'),
       count(*) + count(*) FILTER (WHERE ends),
       count(*),
       count(*) FILTER (WHERE ends AND NOT failed),
       count(*) FILTER (WHERE failed),
       0,
       max(start_time) + interval '10 min'
  FROM bench_steps
 GROUP BY n, lwi, org, channel, trace_id, txn
 ORDER BY n;

SELECT def FROM saved_indexes
\gexec
DROP TABLE bench_steps;

VACUUM (ANALYZE) events, scenario_runs, conversations;
