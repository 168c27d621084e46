-- Export is at least once (a request in flight when its sender dies goes out
-- again): each Traces entry carries its eventId as convdiag.eventId, so that a
-- copy can be told downstream.  The timeline shows what the exporter sends.
CREATE OR REPLACE FUNCTION event_custom_dimensions(e events, run_duration_ms bigint) RETURNS jsonb
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
                                    'convdiag.eventId', 'convdiag.truncated')
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
        'failureReason', e.failure_reason,
        'convdiag.eventId', e.event_id))
$$;
