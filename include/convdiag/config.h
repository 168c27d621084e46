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
 *   batch.max.events          CONVDIAG_BATCH_MAX_EVENTS  (default 5000)
 *   batch.max.wait.ms         CONVDIAG_BATCH_MAX_WAIT_MS (default 200)
 *   event.max.bytes           CONVDIAG_EVENT_MAX_BYTES   (default 65536)
 *   scenarios.strict          CONVDIAG_SCENARIOS_STRICT  (default false)
 *   shutdown.timeout.ms       CONVDIAG_SHUTDOWN_TIMEOUT_MS (default 10000)
 *   scenario.stale.after.ms   CONVDIAG_STALE_AFTER_MS    (default 1800000: 30 minutes)
 *   scenario.stale.after.ms.<Scenario>  the same for one canonical scenario
 *   log.level                 CONVDIAG_LOG_LEVEL         (default info)
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
    size_t batch_max_events;
    int batch_max_wait_ms;
    size_t event_max_bytes;
    bool scenarios_strict;
    int shutdown_timeout_ms;
    long long stale_after_ms;
    cd_stale_override_t *stale_overrides; /* per scenario */
    size_t stale_overrides_count;
    cd_log_level_t log_level;
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
