-- Export to Application Insights: the outbox the ingest transaction fills
-- and the exporters drain, and the items the service refused for good.

-- One row names up to export.batch.max.items events stored by one batch: a
-- row per event would double the rows the ingest transaction writes.  Rows
-- are claimed FOR UPDATE SKIP LOCKED, so exporters share them without
-- coordination; a row is deleted once every event it names has been
-- accepted or refused for good.
CREATE TABLE export_outbox (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_ids        text[]      NOT NULL CHECK (cardinality(event_ids) > 0),
    first_event_time timestamptz NOT NULL,
    last_event_time  timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text
);

COMMENT ON TABLE export_outbox IS 'Events waiting to be exported to Application Insights, in groups written by the transaction that stored them; a row goes once all its events are accepted or refused for good.';
COMMENT ON COLUMN export_outbox.id IS 'Surrogate key, in the order the groups were stored; exporters take the oldest first.';
COMMENT ON COLUMN export_outbox.event_ids IS 'eventIds still to send (events.event_id); shrinks as the service accepts some of them.';
COMMENT ON COLUMN export_outbox.first_event_time IS 'Earliest event_time of the group, so that reading its events only visits the partitions that hold them.';
COMMENT ON COLUMN export_outbox.last_event_time IS 'Latest event_time of the group.';
COMMENT ON COLUMN export_outbox.created_at IS 'When the group was stored.';
COMMENT ON COLUMN export_outbox.attempts IS 'Sends that left some of its events to be sent again.';
COMMENT ON COLUMN export_outbox.next_attempt_at IS 'Not sent again before this time: the back-off after a throttled or failed send, or the Retry-After the service asked for.';
COMMENT ON COLUMN export_outbox.last_error IS 'Why the last send left events to be sent again, NULL before any.';

CREATE TABLE export_failures (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id    text        NOT NULL,
    event_time  timestamptz,
    status_code integer,
    reason      text        NOT NULL,
    failed_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX export_failures_event_idx ON export_failures (event_id);

COMMENT ON TABLE export_failures IS 'Events Application Insights refused for good (400, 402, older than it accepts) or that could not be made into an envelope; never sent again.';
COMMENT ON COLUMN export_failures.id IS 'Surrogate key, in the order of the refusals.';
COMMENT ON COLUMN export_failures.event_id IS 'The refused event (events.event_id).';
COMMENT ON COLUMN export_failures.event_time IS 'Its event_time; NULL when the event was no longer stored when its turn came (dropped by retention).';
COMMENT ON COLUMN export_failures.status_code IS 'The status the service gave the item (its own code inside a 206, else the response''s); NULL when it was never sent.';
COMMENT ON COLUMN export_failures.reason IS 'The service''s message for the item, or why convdiag did not send it.';
COMMENT ON COLUMN export_failures.failed_at IS 'When the refusal was recorded.';

CREATE VIEW export_backlog AS
SELECT count(*)                                  AS groups,
       coalesce(sum(cardinality(event_ids)), 0)  AS events,
       min(created_at)                           AS oldest_stored_at,
       count(*) FILTER (WHERE attempts > 0)      AS groups_retrying,
       max(next_attempt_at)                      AS last_retry_at
  FROM export_outbox;

COMMENT ON VIEW export_backlog IS 'How much is waiting to be exported: groups and events in the outbox, the oldest, and how many are being retried.';
COMMENT ON COLUMN export_backlog.groups IS 'Outbox rows.';
COMMENT ON COLUMN export_backlog.events IS 'Events waiting to be sent.';
COMMENT ON COLUMN export_backlog.oldest_stored_at IS 'When the oldest waiting group was stored: how far export lags.';
COMMENT ON COLUMN export_backlog.groups_retrying IS 'Rows whose earlier send was throttled or failed.';
COMMENT ON COLUMN export_backlog.last_retry_at IS 'The latest time a waiting row is due.';

GRANT SELECT ON export_outbox, export_failures, export_backlog TO convdiag_analyst;
