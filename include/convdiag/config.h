/*
 * config.h -- settings of the service, named the way the ecosystem names them.
 *
 * Precedence, lowest first: built-in defaults, a properties file
 * (--config FILE: "key = value" lines, '#' comments), the environment,
 * then command-line options.  Keys:
 *
 *   kafka.bootstrap.servers   CONVDIAG_KAFKA_BROKERS     (default 127.0.0.1:9092)
 *   kafka.topic               CONVDIAG_KAFKA_TOPIC       (default conversation-events)
 *   kafka.group.id            CONVDIAG_KAFKA_GROUP_ID    (default convdiag)
 *   kafka.<property>          any other librdkafka property, passed through
 *                             (security.protocol, sasl.*, ssl.*, ...)
 *   database.url              CONVDIAG_DATABASE_URL      (libpq conninfo or URL; empty:
 *                             libpq's PG* variables)
 *   database.connect.timeout.ms    CONVDIAG_DATABASE_CONNECT_TIMEOUT_MS (default 10000)
 *   database.statement.timeout.ms  CONVDIAG_DATABASE_STATEMENT_TIMEOUT_MS (default 60000)
 *   database.lock.timeout.ms       CONVDIAG_DATABASE_LOCK_TIMEOUT_MS (default 10000)
 *   database.tcp.user.timeout.ms   CONVDIAG_DATABASE_TCP_USER_TIMEOUT_MS (default 30000)
 *   database.keepalives.idle.ms    CONVDIAG_DATABASE_KEEPALIVES_IDLE_MS (default 30000)
 *                             the bounds of every PostgreSQL connection (pg.h); 0 leaves
 *                             libpq's or the server's value
 *   ingest.writers            CONVDIAG_INGEST_WRITERS    (default 2: threads, each with its
 *                             own connection, writing the batches of its own partitions)
 *   ingest.state.cache.bytes  CONVDIAG_INGEST_STATE_CACHE_BYTES (default 8 MiB, shared by
 *                             the writers: conversation state kept between batches; 0: none)
 *   batch.max.events          CONVDIAG_BATCH_MAX_EVENTS  (default 5000)
 *   batch.max.bytes           CONVDIAG_BATCH_MAX_BYTES   (default 1 MiB of messages)
 *   batch.max.wait.ms         CONVDIAG_BATCH_MAX_WAIT_MS (default 200: the longest a
 *                             message waits for its batch to close; a batch goes out at
 *                             once when its writer is free and nothing more is waiting)
 *   event.max.bytes           CONVDIAG_EVENT_MAX_BYTES   (default 65536)
 *   scenarios.strict          CONVDIAG_SCENARIOS_STRICT  (default false)
 *   shutdown.timeout.ms       CONVDIAG_SHUTDOWN_TIMEOUT_MS (default 10000)
 *   scenario.stale.after.ms   CONVDIAG_STALE_AFTER_MS    (default 1800000: 30 minutes)
 *   scenario.stale.after.ms.<Scenario>  the same for one canonical scenario
 *   log.level                 CONVDIAG_LOG_LEVEL         (default info)
 *
 * Export to Application Insights (export.h):
 *   export.enabled            CONVDIAG_EXPORT_ENABLED    (default true: the outbox is
 *                             written and `run` sends it)
 *   export.connection.string  APPLICATIONINSIGHTS_CONNECTION_STRING (default: the
 *                             local ingestion emulator, CD_EXPORT_LOCAL_CONNECTION_STRING)
 *   export.workers            CONVDIAG_EXPORT_WORKERS    (default 1: senders in `run`;
 *                             0 leaves sending to `convdiag export` processes)
 *   export.batch.max.items    CONVDIAG_EXPORT_BATCH_MAX_ITEMS (default 1000)
 *   export.batch.max.bytes    CONVDIAG_EXPORT_BATCH_MAX_BYTES (default 4194304, before gzip)
 *   export.gzip.level         CONVDIAG_EXPORT_GZIP_LEVEL (default 1)
 *   export.timeout.ms         CONVDIAG_EXPORT_TIMEOUT_MS (default 30000, per request)
 *   export.backoff.max.ms     CONVDIAG_EXPORT_BACKOFF_MAX_MS (default 60000)
 *   export.poll.ms            CONVDIAG_EXPORT_POLL_MS    (default 500: idle outbox check)
 *   export.lease.ms           CONVDIAG_EXPORT_LEASE_MS   (default 60000: how long an outbox
 *                             row is a sender's without renewal; a killed sender's rows
 *                             are taken over after it)
 *   export.throttle.floor.ms  CONVDIAG_EXPORT_THROTTLE_FLOOR_MS (default 10000: every
 *                             sender's pause after a 429/439 without Retry-After, and the
 *                             first after a wrong key or token, doubled up to
 *                             export.backoff.max.ms)
 *   export.token.timeout.ms   CONVDIAG_EXPORT_TOKEN_TIMEOUT_MS (default 30000: the token
 *                             command is killed past it)
 *   export.cloud.role         CONVDIAG_EXPORT_CLOUD_ROLE (default convdiag)
 *   export.token.file         CONVDIAG_EXPORT_TOKEN_FILE (Entra bearer token, re-read
 *                             when it changes)
 *   export.token.command      CONVDIAG_EXPORT_TOKEN_COMMAND (prints a bearer token;
 *                             run again before the token expires)
 *
 * Partitions of events, one per UTC day (store.h):
 *   events.partition.ahead.days CONVDIAG_EVENTS_PARTITION_AHEAD_DAYS (default 7: `migrate`
 *                             and `run`, hourly, create yesterday's to today + 7's)
 *   events.retention.days     CONVDIAG_EVENTS_RETENTION_DAYS (default 30: partitions whose
 *                             day ended more than 30 days ago are dropped, and events that
 *                             old are dead-lettered; 0 keeps everything)
 *   events.future.max.days    CONVDIAG_EVENTS_FUTURE_MAX_DAYS (default 7: events of a day
 *                             more than 7 days after today are dead-lettered, so that a
 *                             wrong clock makes no partitions of far days; 0: no limit)
 *
 * Metrics and probes (metrics.h), for `run` and `export`:
 *   metrics.listen            CONVDIAG_METRICS_LISTEN (HOST:PORT serving /metrics, /healthz,
 *                             /readyz; default empty: none)
 *   metrics.live.timeout.ms   CONVDIAG_METRICS_LIVE_TIMEOUT_MS (default 60000: /healthz fails
 *                             once the main loop has been stuck that long)
 */
#ifndef CONVDIAG_CONFIG_H
#define CONVDIAG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "convdiag/common.h"
#include "convdiag/log.h"

/* A scenario's own stale time (scenario.stale.after.ms.<Scenario>). */
typedef struct cd_stale_override {
    char *scenario;
    long long after_ms;
} cd_stale_override_t;

typedef struct cd_config_prop {
    char *key; /* librdkafka property name, without the "kafka." prefix */
    char *value;
} cd_config_prop_t;

typedef struct cd_config {
    char *kafka_brokers;
    char *kafka_topic;
    char *kafka_group;
    cd_config_prop_t *kafka_props; /* passthrough, in the order given */
    size_t kafka_props_count;
    char *database_url;
    int database_connect_timeout_ms;
    int database_statement_timeout_ms;
    int database_lock_timeout_ms;
    int database_tcp_user_timeout_ms;
    int database_keepalives_idle_ms;
    int ingest_writers;
    size_t ingest_state_cache_bytes;
    size_t batch_max_events;
    size_t batch_max_bytes;
    int batch_max_wait_ms;
    size_t event_max_bytes;
    bool scenarios_strict;
    int shutdown_timeout_ms;
    long long stale_after_ms;
    cd_stale_override_t *stale_overrides; /* per scenario */
    size_t stale_overrides_count;
    cd_log_level_t log_level;
    bool export_enabled;
    char *export_connection_string; /* secret: holds the instrumentation key */
    int export_workers;
    size_t export_batch_max_items;
    size_t export_batch_max_bytes;
    int export_gzip_level;
    int export_timeout_ms;
    int export_backoff_max_ms;
    int export_poll_ms;
    int export_lease_ms;
    int export_throttle_floor_ms;
    int export_token_timeout_ms;
    char *export_cloud_role;
    char *export_token_file;
    char *export_token_command;
    int events_partition_ahead_days;
    int events_retention_days; /* 0: keep forever */
    int events_future_max_days; /* 0: no limit */
    char *metrics_listen; /* "": no metrics server */
    int metrics_live_timeout_ms;
} cd_config_t;

void cd_config_init(cd_config_t *cfg);
void cd_config_fini(cd_config_t *cfg);

/* Sets one key; err names the key and value when either is not acceptable. */
cd_status_t cd_config_set(cd_config_t *cfg, const char *key, const char *value, cd_err_t *err);
/* Reads a properties file; err names the file and line of the first bad entry. */
cd_status_t cd_config_load_file(cd_config_t *cfg, const char *path, cd_err_t *err);
/* Applies the CONVDIAG_* environment variables listed above. */
cd_status_t cd_config_load_env(cd_config_t *cfg, cd_err_t *err);

/* database.url with any password replaced by "****", for logs. buf gets the result. */
const char *cd_config_masked_url(const char *url, char *buf, size_t size);

#endif
