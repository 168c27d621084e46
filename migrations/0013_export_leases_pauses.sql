-- Export claims become committed leases, and a resource's pauses are shared.
--
-- A row used to be claimed by a transaction held open (FOR UPDATE) for the
-- whole HTTP request: vacuum's horizon waited on it, and a DBA's
-- idle_in_transaction_session_timeout could end it mid-send, after which the
-- row went out again.  Now a claim is an UPDATE that commits at once:
-- claimed_by names the sender, claimed_until is how long the row is its own.
-- The sender renews the lease while a request is in flight; once the lease has
-- run out (the sender was killed, or lost PostgreSQL for longer) any sender
-- may take the row over.
ALTER TABLE export_outbox
    ADD COLUMN claimed_by    text,
    ADD COLUMN claimed_until timestamptz;

COMMENT ON COLUMN export_outbox.claimed_by IS 'The sender (host:pid:worker) holding the row while it sends it, NULL when none has.';
COMMENT ON COLUMN export_outbox.claimed_until IS 'Until when the row is claimed_by''s: renewed while a request is in flight; past it, any sender may take the row over.';

-- The service throttles (429, 439) and refuses a wrong key or token per
-- resource, not per connection: every sender of every instance waits, and
-- one sender at a time probes whether the pause is over.
CREATE TABLE export_pauses (
    resource     text        PRIMARY KEY,
    kind         text        NOT NULL CHECK (kind IN ('throttled', 'credentials', 'key')),
    reason       text        NOT NULL,
    since        timestamptz NOT NULL DEFAULT now(),
    paused_until timestamptz NOT NULL,
    failures     integer     NOT NULL DEFAULT 1,
    probe_by     text,
    probe_until  timestamptz
);

COMMENT ON TABLE export_pauses IS 'Application Insights resources export to which is paused: throttled, or refusing the key or the token; a row goes when a probe is accepted.';
COMMENT ON COLUMN export_pauses.resource IS 'md5 of the instrumentation key in lower case: the resource, without its key.';
COMMENT ON COLUMN export_pauses.kind IS 'throttled (429, 439), credentials (401, 403: the token), key (an invalid instrumentation key, or a token where none is taken).';
COMMENT ON COLUMN export_pauses.reason IS 'The service''s answer that paused export.';
COMMENT ON COLUMN export_pauses.since IS 'When the pause began.';
COMMENT ON COLUMN export_pauses.paused_until IS 'No sender sends before this time: the Retry-After, or the back-off.';
COMMENT ON COLUMN export_pauses.failures IS 'Answers in a row that paused export: the back-off of a configuration error grows with it.';
COMMENT ON COLUMN export_pauses.probe_by IS 'The one sender trying the service once the pause is over, NULL before one does.';
COMMENT ON COLUMN export_pauses.probe_until IS 'Until when the probe is probe_by''s; past it another sender may probe.';

GRANT SELECT ON export_pauses TO convdiag_analyst;
