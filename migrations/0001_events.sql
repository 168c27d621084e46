-- Events as received and validated, one row per eventId, and the messages
-- that were not valid events.

CREATE TABLE events (
    event_id          text        NOT NULL PRIMARY KEY,
    event_time        timestamptz NOT NULL,
    organization_id   uuid        NOT NULL,
    live_work_item_id text        NOT NULL,
    scenario          text        NOT NULL,
    scenario_received text        NOT NULL,
    category          text        NOT NULL,
    status            text        NOT NULL CHECK (status IN ('Started', 'Completed', 'Failed')),
    channel_type      text        NOT NULL,
    participant_type  text,
    user_id           uuid,
    session_id        text,
    transaction_id    text,
    traceparent       text,
    tracestate        text,
    duration_ms       bigint      CHECK (duration_ms >= 0),
    failure_reason    text,
    attributes        jsonb,
    kafka_topic       text        NOT NULL,
    kafka_partition   integer     NOT NULL,
    kafka_offset      bigint      NOT NULL,
    ingested_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX events_conversation_idx ON events (live_work_item_id, event_time);

COMMENT ON TABLE events IS 'Conversation lifecycle events, validated, one row per eventId (the idempotency key).';
COMMENT ON COLUMN events.event_id IS 'eventId as sent by the producer; a replayed event is stored once.';
COMMENT ON COLUMN events.event_time IS 'timestamp of the event as sent, normalized to UTC.';
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

CREATE TABLE dead_letters (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kafka_topic     text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    message_key     bytea,
    payload         bytea       NOT NULL,
    reason          text        NOT NULL,
    kafka_timestamp timestamptz,
    received_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kafka_topic, kafka_partition, kafka_offset)
);

COMMENT ON TABLE dead_letters IS 'Kafka messages that were not valid events, kept byte for byte with the reason.';
COMMENT ON COLUMN dead_letters.id IS 'Surrogate key, in arrival order.';
COMMENT ON COLUMN dead_letters.kafka_topic IS 'Kafka topic of the message.';
COMMENT ON COLUMN dead_letters.kafka_partition IS 'Kafka partition of the message.';
COMMENT ON COLUMN dead_letters.kafka_offset IS 'Kafka offset of the message; a message is dead-lettered once.';
COMMENT ON COLUMN dead_letters.message_key IS 'Kafka message key, raw bytes.';
COMMENT ON COLUMN dead_letters.payload IS 'Kafka message value, raw bytes, as received.';
COMMENT ON COLUMN dead_letters.reason IS 'Why the message is not a valid event: the field, the value and the rule.';
COMMENT ON COLUMN dead_letters.kafka_timestamp IS 'Kafka message timestamp.';
COMMENT ON COLUMN dead_letters.received_at IS 'When convdiag stored the dead letter.';
