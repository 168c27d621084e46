-- Tagging: each event's operation_Id, the scenario runs that pair Started
-- with Completed/Failed, and one row per conversation.  All of it changes in
-- the same transaction as the events it derives from.

ALTER TABLE events
    ADD COLUMN operation_id        text,
    ADD COLUMN operation_id_source text CHECK (operation_id_source IN
        ('traceparent-header', 'traceparent-body', 'inherited', 'transactionId', 'liveWorkItemId')),
    ADD COLUMN kafka_traceparent   text,
    ADD COLUMN kafka_tracestate    text;

COMMENT ON COLUMN events.operation_id IS 'operation_Id: trace-id of a valid traceparent (Kafka header, else body); else the conversation''s (inherited); else transactionId; else derived from the liveWorkItemId.';
COMMENT ON COLUMN events.operation_id_source IS 'Where operation_id came from: traceparent-header, traceparent-body, inherited, transactionId or liveWorkItemId.';
COMMENT ON COLUMN events.kafka_traceparent IS 'traceparent Kafka header of the message, as received.';
COMMENT ON COLUMN events.kafka_tracestate IS 'tracestate Kafka header of the message, as received.';

CREATE INDEX events_operation_idx ON events (operation_id);

CREATE TABLE conversations (
    live_work_item_id      text        PRIMARY KEY,
    organization_id        uuid        NOT NULL,
    channel_type           text        NOT NULL,
    operation_id           text        NOT NULL,
    first_event_time       timestamptz NOT NULL,
    last_event_time        timestamptz NOT NULL,
    outcome                text,
    outcome_time           timestamptz,
    closed_time            timestamptz,
    event_count            bigint      NOT NULL,
    started_count          bigint      NOT NULL,
    completed_count        bigint      NOT NULL,
    failed_count           bigint      NOT NULL,
    unknown_scenario_count bigint      NOT NULL,
    updated_at             timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE conversations IS 'One row per conversation (LiveWorkItem), kept up to date as its events are stored.';
COMMENT ON COLUMN conversations.live_work_item_id IS 'The conversation (LiveWorkItem) ID.';
COMMENT ON COLUMN conversations.organization_id IS 'organizationId of its first stored event.';
COMMENT ON COLUMN conversations.channel_type IS 'channelType of its first stored event.';
COMMENT ON COLUMN conversations.operation_id IS 'The conversation''s operation_Id: that of its first stored event; later events without trace context inherit it.';
COMMENT ON COLUMN conversations.first_event_time IS 'Earliest event time seen.';
COMMENT ON COLUMN conversations.last_event_time IS 'Latest event time seen.';
COMMENT ON COLUMN conversations.outcome IS 'How it ended: the earliest ending scenario (ConversationEndedByCustomer, ConversationEndedByAgent, ConversationEndedByVirtualAgent, ConversationAbandonedByCustomer, ConversationForceClosedBySupervisor) that completed or failed; NULL while none has.';
COMMENT ON COLUMN conversations.outcome_time IS 'Time of the event that set outcome.';
COMMENT ON COLUMN conversations.closed_time IS 'Time of its earliest ConversationClosed end, NULL while not closed.';
COMMENT ON COLUMN conversations.event_count IS 'Events stored (duplicates not counted).';
COMMENT ON COLUMN conversations.started_count IS 'Events with status Started.';
COMMENT ON COLUMN conversations.completed_count IS 'Events with status Completed.';
COMMENT ON COLUMN conversations.failed_count IS 'Events with status Failed.';
COMMENT ON COLUMN conversations.unknown_scenario_count IS 'Events whose scenario the catalogue does not know (category Other).';
COMMENT ON COLUMN conversations.updated_at IS 'When convdiag last changed the row.';

CREATE TABLE scenario_runs (
    run_id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    live_work_item_id text        NOT NULL,
    scenario          text        NOT NULL,
    category          text        NOT NULL,
    state             text        NOT NULL CHECK (state IN ('open', 'completed', 'failed', 'unpaired')),
    start_event_id    text,
    start_time        timestamptz,
    end_event_id      text,
    end_time          timestamptz,
    end_status        text        CHECK (end_status IN ('Completed', 'Failed')),
    duration_ms       bigint,
    duration_source   text        CHECK (duration_source IN ('source', 'pair')),
    stale             boolean     NOT NULL DEFAULT false,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((state = 'open') = (end_event_id IS NULL)),
    CHECK ((state = 'unpaired') = (start_event_id IS NULL))
);

CREATE INDEX scenario_runs_pending_idx ON scenario_runs (live_work_item_id)
    WHERE state IN ('open', 'unpaired');

COMMENT ON TABLE scenario_runs IS 'One run of a scenario in a conversation: a Started paired with the Completed or Failed that closed it; open while not ended, unpaired for an end whose start was never seen.';
COMMENT ON COLUMN scenario_runs.run_id IS 'Surrogate key.';
COMMENT ON COLUMN scenario_runs.live_work_item_id IS 'The conversation (LiveWorkItem) ID.';
COMMENT ON COLUMN scenario_runs.scenario IS 'Canonical scenario name (operation_Name).';
COMMENT ON COLUMN scenario_runs.category IS 'Scenario category, or Other.';
COMMENT ON COLUMN scenario_runs.state IS 'open (started, not ended), completed, failed, or unpaired (an end with no start seen).';
COMMENT ON COLUMN scenario_runs.start_event_id IS 'eventId of the Started event; NULL when unpaired.';
COMMENT ON COLUMN scenario_runs.start_time IS 'Time of the Started event.';
COMMENT ON COLUMN scenario_runs.end_event_id IS 'eventId of the Completed or Failed event; NULL while open.';
COMMENT ON COLUMN scenario_runs.end_time IS 'Time of the Completed or Failed event.';
COMMENT ON COLUMN scenario_runs.end_status IS 'Completed or Failed: the status of the end event.';
COMMENT ON COLUMN scenario_runs.duration_ms IS 'durationMs of the end event when the source gave one, else end_time - start_time; NULL while open.';
COMMENT ON COLUMN scenario_runs.duration_source IS 'source (durationMs of the event) or pair (end_time - start_time).';
COMMENT ON COLUMN scenario_runs.stale IS 'Open longer than the scenario''s stale time (scenario.stale.after.ms, default 30 minutes) by the conversation''s latest event.';
COMMENT ON COLUMN scenario_runs.updated_at IS 'When convdiag last changed the row.';
