-- Dead letters can be sent back to Kafka (`convdiag dead-letters replay`)
-- once what refused them is fixed: a longer retention, a wider future limit,
-- a producer's bug.  A replay must give the events convdiag would have made
-- of the original message, so the two headers it reads are kept with the
-- bytes; and it must not send the same letter twice by mistake, so a
-- replayed letter says when.
ALTER TABLE dead_letters
    ADD COLUMN kafka_traceparent text,
    ADD COLUMN kafka_tracestate  text,
    ADD COLUMN replayed_at       timestamptz;

COMMENT ON COLUMN dead_letters.kafka_traceparent IS 'traceparent Kafka header of the message, when it had one of printable ASCII (the only kind convdiag reads); sent again on replay. Other headers are not kept.';
COMMENT ON COLUMN dead_letters.kafka_tracestate IS 'tracestate Kafka header of the message, as kafka_traceparent.';
COMMENT ON COLUMN dead_letters.replayed_at IS 'When `convdiag dead-letters replay` sent the message back to its topic and the broker acknowledged it; NULL while it has not been. A replayed message that is still not a valid event comes back as a new dead letter.';

-- Replays pick pending letters in id order.
CREATE INDEX dead_letters_pending_idx ON dead_letters (id) WHERE replayed_at IS NULL;
COMMENT ON INDEX dead_letters_pending_idx IS 'Dead letters not replayed yet, for `convdiag dead-letters list` and `replay`.';
