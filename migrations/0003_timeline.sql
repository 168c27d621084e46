-- A conversation's timeline as the Traces table shows it, and a read-only
-- role for analysts.

-- customDimensions as the exporter sends them (the brief's "Export" section).
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

-- The SQL twin of the portal's conversation query: entries whose
-- operation_ParentId is the LiveWorkItem, or whose operation_Id is one of that
-- conversation's operation IDs, sorted by time.
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
LANGUAGE sql STABLE AS $$
    WITH ops AS (
        SELECT DISTINCT operation_id FROM events
         WHERE live_work_item_id = p_live_work_item_id AND operation_id IS NOT NULL
    )
    SELECT e.event_time,
           'Scenario' || e.status,
           event_custom_dimensions(e, r.duration_ms),
           e.scenario,
           e.operation_id,
           e.live_work_item_id,
           e.session_id,
           coalesce(e.user_id::text, '0'),
           0,
           'trace'
      FROM events AS e
      LEFT JOIN scenario_runs AS r
             ON r.end_event_id = e.event_id AND r.live_work_item_id = e.live_work_item_id
     WHERE e.live_work_item_id = p_live_work_item_id
        OR e.operation_id IN (SELECT operation_id FROM ops)
     ORDER BY e.event_time, e.kafka_partition, e.kafka_offset
$$;

COMMENT ON FUNCTION conversation_timeline(text) IS 'A conversation''s traces, columns as the Application Insights Traces table shows them: entries whose operation_ParentId is the LiveWorkItem or whose operation_Id is one of its operation IDs, by time.';

CREATE INDEX scenario_runs_end_event_idx ON scenario_runs (end_event_id) WHERE end_event_id IS NOT NULL;

-- Analysts read everything and change nothing.  A role of the cluster, so
-- created only once whichever database migrates first.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'convdiag_analyst') THEN
        CREATE ROLE convdiag_analyst NOLOGIN;
    END IF;
END
$$;
COMMENT ON ROLE convdiag_analyst IS 'Read-only access to convdiag''s tables, views and functions; grant it to analysts'' login roles.';
GRANT USAGE ON SCHEMA public TO convdiag_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO convdiag_analyst;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO convdiag_analyst;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO convdiag_analyst;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT EXECUTE ON FUNCTIONS TO convdiag_analyst;
