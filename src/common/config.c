/* config.c -- defaults, properties file, environment; see config.h. */
#include "convdiag/config.h"
#include "convdiag/scenario.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libpq-fe.h>

enum kind { K_STRING, K_SIZE, K_INT, K_LLONG, K_BOOL, K_LOGLEVEL };

#define STALE_PREFIX "scenario.stale.after.ms."
#define MAX_STALE_MS (7LL * 24 * 3600 * 1000)

static const struct setting {
    const char *key;
    const char *env;
    enum kind kind;
    size_t offset;
    long long min, max; /* for K_SIZE and K_INT */
} settings[] = {
    {"kafka.bootstrap.servers", "CONVDIAG_KAFKA_BROKERS", K_STRING,
     offsetof(cd_config_t, kafka_brokers), 0, 0},
    {"kafka.topic", "CONVDIAG_KAFKA_TOPIC", K_STRING, offsetof(cd_config_t, kafka_topic), 0, 0},
    {"kafka.group.id", "CONVDIAG_KAFKA_GROUP_ID", K_STRING, offsetof(cd_config_t, kafka_group),
     0, 0},
    {"database.url", "CONVDIAG_DATABASE_URL", K_STRING, offsetof(cd_config_t, database_url), 0,
     0},
    {"database.connect.timeout.ms", "CONVDIAG_DATABASE_CONNECT_TIMEOUT_MS", K_INT,
     offsetof(cd_config_t, database_connect_timeout_ms), 0, 600000},
    {"database.statement.timeout.ms", "CONVDIAG_DATABASE_STATEMENT_TIMEOUT_MS", K_INT,
     offsetof(cd_config_t, database_statement_timeout_ms), 0, 3600000},
    {"database.lock.timeout.ms", "CONVDIAG_DATABASE_LOCK_TIMEOUT_MS", K_INT,
     offsetof(cd_config_t, database_lock_timeout_ms), 0, 3600000},
    {"database.tcp.user.timeout.ms", "CONVDIAG_DATABASE_TCP_USER_TIMEOUT_MS", K_INT,
     offsetof(cd_config_t, database_tcp_user_timeout_ms), 0, 3600000},
    {"database.keepalives.idle.ms", "CONVDIAG_DATABASE_KEEPALIVES_IDLE_MS", K_INT,
     offsetof(cd_config_t, database_keepalives_idle_ms), 0, 3600000},
    {"ingest.writers", "CONVDIAG_INGEST_WRITERS", K_INT, offsetof(cd_config_t, ingest_writers),
     1, 16},
    {"ingest.state.cache.bytes", "CONVDIAG_INGEST_STATE_CACHE_BYTES", K_SIZE,
     offsetof(cd_config_t, ingest_state_cache_bytes), 0, 1024LL * 1024 * 1024},
    {"batch.max.events", "CONVDIAG_BATCH_MAX_EVENTS", K_SIZE,
     offsetof(cd_config_t, batch_max_events), 1, 1000000},
    {"batch.max.bytes", "CONVDIAG_BATCH_MAX_BYTES", K_SIZE, offsetof(cd_config_t, batch_max_bytes),
     65536, 256 * 1024 * 1024},
    {"batch.max.wait.ms", "CONVDIAG_BATCH_MAX_WAIT_MS", K_INT,
     offsetof(cd_config_t, batch_max_wait_ms), 1, 60000},
    {"event.max.bytes", "CONVDIAG_EVENT_MAX_BYTES", K_SIZE, offsetof(cd_config_t, event_max_bytes),
     256, 16 * 1024 * 1024},
    {"scenarios.strict", "CONVDIAG_SCENARIOS_STRICT", K_BOOL,
     offsetof(cd_config_t, scenarios_strict), 0, 0},
    {"shutdown.timeout.ms", "CONVDIAG_SHUTDOWN_TIMEOUT_MS", K_INT,
     offsetof(cd_config_t, shutdown_timeout_ms), 0, 600000},
    {"scenario.stale.after.ms", "CONVDIAG_STALE_AFTER_MS", K_LLONG,
     offsetof(cd_config_t, stale_after_ms), 1000, MAX_STALE_MS},
    {"log.level", "CONVDIAG_LOG_LEVEL", K_LOGLEVEL, offsetof(cd_config_t, log_level), 0, 0},
    {"export.enabled", "CONVDIAG_EXPORT_ENABLED", K_BOOL, offsetof(cd_config_t, export_enabled),
     0, 0},
    {"export.connection.string", "APPLICATIONINSIGHTS_CONNECTION_STRING", K_STRING,
     offsetof(cd_config_t, export_connection_string), 0, 0},
    {"export.workers", "CONVDIAG_EXPORT_WORKERS", K_INT, offsetof(cd_config_t, export_workers),
     0, 16},
    /* An item may take 64 KiB, so a batch must have room for one at least. */
    {"export.batch.max.items", "CONVDIAG_EXPORT_BATCH_MAX_ITEMS", K_SIZE,
     offsetof(cd_config_t, export_batch_max_items), 1, 32000},
    {"export.batch.max.bytes", "CONVDIAG_EXPORT_BATCH_MAX_BYTES", K_SIZE,
     offsetof(cd_config_t, export_batch_max_bytes), 65536, 64 * 1024 * 1024},
    {"export.gzip.level", "CONVDIAG_EXPORT_GZIP_LEVEL", K_INT,
     offsetof(cd_config_t, export_gzip_level), 1, 9},
    {"export.timeout.ms", "CONVDIAG_EXPORT_TIMEOUT_MS", K_INT,
     offsetof(cd_config_t, export_timeout_ms), 100, 600000},
    {"export.backoff.max.ms", "CONVDIAG_EXPORT_BACKOFF_MAX_MS", K_INT,
     offsetof(cd_config_t, export_backoff_max_ms), 100, 3600000},
    {"export.poll.ms", "CONVDIAG_EXPORT_POLL_MS", K_INT, offsetof(cd_config_t, export_poll_ms),
     10, 60000},
    {"export.lease.ms", "CONVDIAG_EXPORT_LEASE_MS", K_INT, offsetof(cd_config_t, export_lease_ms),
     1000, 3600000},
    {"export.throttle.floor.ms", "CONVDIAG_EXPORT_THROTTLE_FLOOR_MS", K_INT,
     offsetof(cd_config_t, export_throttle_floor_ms), 100, 3600000},
    {"export.token.timeout.ms", "CONVDIAG_EXPORT_TOKEN_TIMEOUT_MS", K_INT,
     offsetof(cd_config_t, export_token_timeout_ms), 100, 600000},
    {"export.cloud.role", "CONVDIAG_EXPORT_CLOUD_ROLE", K_STRING,
     offsetof(cd_config_t, export_cloud_role), 0, 0},
    {"export.token.file", "CONVDIAG_EXPORT_TOKEN_FILE", K_STRING,
     offsetof(cd_config_t, export_token_file), 0, 0},
    {"export.token.command", "CONVDIAG_EXPORT_TOKEN_COMMAND", K_STRING,
     offsetof(cd_config_t, export_token_command), 0, 0},
    {"events.partition.ahead.days", "CONVDIAG_EVENTS_PARTITION_AHEAD_DAYS", K_INT,
     offsetof(cd_config_t, events_partition_ahead_days), 0, 366},
    {"events.retention.days", "CONVDIAG_EVENTS_RETENTION_DAYS", K_INT,
     offsetof(cd_config_t, events_retention_days), 0, 36500},
    {"events.future.max.days", "CONVDIAG_EVENTS_FUTURE_MAX_DAYS", K_INT,
     offsetof(cd_config_t, events_future_max_days), 0, 36500},
    {"metrics.listen", "CONVDIAG_METRICS_LISTEN", K_STRING, offsetof(cd_config_t, metrics_listen),
     0, 0},
    {"metrics.live.timeout.ms", "CONVDIAG_METRICS_LIVE_TIMEOUT_MS", K_INT,
     offsetof(cd_config_t, metrics_live_timeout_ms), 1000, 3600000},
};

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d) {
        fprintf(stderr, "convdiag: out of memory\n");
        exit(1);
    }
    return d;
}

void cd_config_init(cd_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->kafka_brokers = xstrdup("127.0.0.1:9092");
    cfg->kafka_topic = xstrdup("conversation-events");
    cfg->kafka_group = xstrdup("convdiag");
    cfg->database_url = xstrdup("");
    cfg->database_connect_timeout_ms = 10000;
    cfg->database_statement_timeout_ms = 60000;
    cfg->database_lock_timeout_ms = 10000;
    cfg->database_tcp_user_timeout_ms = 30000;
    cfg->database_keepalives_idle_ms = 30000;
    cfg->ingest_writers = 2;
    cfg->ingest_state_cache_bytes = 8 * 1024 * 1024;
    cfg->batch_max_events = 5000;
    cfg->batch_max_bytes = 1024 * 1024;
    cfg->batch_max_wait_ms = 200;
    cfg->event_max_bytes = 64 * 1024;
    cfg->shutdown_timeout_ms = 10000;
    cfg->stale_after_ms = 30 * 60 * 1000;
    cfg->log_level = CD_LOG_INFO;
    cfg->export_enabled = true;
    cfg->export_connection_string = xstrdup("");
    cfg->export_workers = 1;
    cfg->export_batch_max_items = 1000;
    cfg->export_batch_max_bytes = 4 * 1024 * 1024;
    cfg->export_gzip_level = 1;
    cfg->export_timeout_ms = 30000;
    cfg->export_backoff_max_ms = 60000;
    cfg->export_poll_ms = 500;
    cfg->export_lease_ms = 60000;
    cfg->export_throttle_floor_ms = 10000;
    cfg->export_token_timeout_ms = 30000;
    cfg->export_cloud_role = xstrdup("convdiag");
    cfg->export_token_file = xstrdup("");
    cfg->export_token_command = xstrdup("");
    cfg->events_partition_ahead_days = 7;
    cfg->events_retention_days = 30;
    cfg->events_future_max_days = 7;
    cfg->metrics_listen = xstrdup("");
    cfg->metrics_live_timeout_ms = 60000;
}

void cd_config_fini(cd_config_t *cfg)
{
    free(cfg->kafka_brokers);
    free(cfg->kafka_topic);
    free(cfg->kafka_group);
    free(cfg->database_url);
    free(cfg->export_connection_string);
    free(cfg->export_cloud_role);
    free(cfg->export_token_file);
    free(cfg->export_token_command);
    free(cfg->metrics_listen);
    for (size_t i = 0; i < cfg->kafka_props_count; i++) {
        free(cfg->kafka_props[i].key);
        free(cfg->kafka_props[i].value);
    }
    free(cfg->kafka_props);
    for (size_t i = 0; i < cfg->stale_overrides_count; i++)
        free(cfg->stale_overrides[i].scenario);
    free(cfg->stale_overrides);
    memset(cfg, 0, sizeof(*cfg));
}

static cd_status_t parse_integer(const char *key, const char *value, long long min,
                                 long long max, long long *out, cd_err_t *err)
{
    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (errno || end == value || *end != '\0' || v < min || v > max)
        return cd_err_set(err, CD_ERROR, "%s: '%s' is not a whole number between %lld and %lld",
                          key, value, min, max);
    *out = v;
    return CD_OK;
}

static cd_status_t set_kafka_prop(cd_config_t *cfg, const char *prop, const char *value)
{
    for (size_t i = 0; i < cfg->kafka_props_count; i++) {
        if (strcmp(cfg->kafka_props[i].key, prop) == 0) {
            free(cfg->kafka_props[i].value);
            cfg->kafka_props[i].value = xstrdup(value);
            return CD_OK;
        }
    }
    cd_config_prop_t *p =
        realloc(cfg->kafka_props, (cfg->kafka_props_count + 1) * sizeof(*cfg->kafka_props));
    if (!p)
        return CD_ERROR;
    cfg->kafka_props = p;
    p[cfg->kafka_props_count].key = xstrdup(prop);
    p[cfg->kafka_props_count].value = xstrdup(value);
    cfg->kafka_props_count++;
    return CD_OK;
}

/* scenario.stale.after.ms.<Scenario>: only canonical names, so a typo is an error. */
static cd_status_t set_stale_override(cd_config_t *cfg, const char *key, const char *value,
                                      cd_err_t *err)
{
    const char *name = key + strlen(STALE_PREFIX);
    const cd_scenario_t *sc = cd_scenario_lookup(name);
    long long n = 0;

    if (!sc || strcmp(sc->name, name) != 0)
        return cd_err_set(err, CD_ERROR, "%s: '%s' is not a canonical scenario name", key, name);
    if (parse_integer(key, value, 1000, MAX_STALE_MS, &n, err) != CD_OK)
        return CD_ERROR;
    for (size_t i = 0; i < cfg->stale_overrides_count; i++) {
        if (strcmp(cfg->stale_overrides[i].scenario, name) == 0) {
            cfg->stale_overrides[i].after_ms = n;
            return CD_OK;
        }
    }
    cd_stale_override_t *o = realloc(cfg->stale_overrides,
                                     (cfg->stale_overrides_count + 1) * sizeof(*o));
    if (!o)
        return cd_err_set(err, CD_ERROR, "%s: out of memory", key);
    cfg->stale_overrides = o;
    o[cfg->stale_overrides_count].scenario = xstrdup(name);
    o[cfg->stale_overrides_count++].after_ms = n;
    return CD_OK;
}

cd_status_t cd_config_set(cd_config_t *cfg, const char *key, const char *value, cd_err_t *err)
{
    for (size_t i = 0; i < CD_ARRAY_LEN(settings); i++) {
        const struct setting *s = &settings[i];
        if (strcmp(s->key, key) != 0)
            continue;
        void *field = (char *)cfg + s->offset;
        long long n = 0;
        switch (s->kind) {
        case K_STRING:
            free(*(char **)field);
            *(char **)field = xstrdup(value);
            return CD_OK;
        case K_SIZE:
        case K_INT:
            if (parse_integer(key, value, s->min, s->max, &n, err) != CD_OK)
                return CD_ERROR;
            if (s->kind == K_SIZE)
                *(size_t *)field = (size_t)n;
            else
                *(int *)field = (int)n;
            return CD_OK;
        case K_LLONG:
            if (parse_integer(key, value, s->min, s->max, &n, err) != CD_OK)
                return CD_ERROR;
            *(long long *)field = n;
            return CD_OK;
        case K_BOOL:
            if (strcasecmp(value, "true") == 0 || strcmp(value, "1") == 0)
                *(bool *)field = true;
            else if (strcasecmp(value, "false") == 0 || strcmp(value, "0") == 0)
                *(bool *)field = false;
            else
                return cd_err_set(err, CD_ERROR, "%s: '%s' is not true or false", key, value);
            return CD_OK;
        case K_LOGLEVEL:
            if (cd_log_level_parse(value, (cd_log_level_t *)field) != 0)
                return cd_err_set(err, CD_ERROR,
                                  "%s: '%s' is not one of error, warn, info, debug", key, value);
            return CD_OK;
        }
    }
    if (strncmp(key, STALE_PREFIX, strlen(STALE_PREFIX)) == 0)
        return set_stale_override(cfg, key, value, err);
    if (strncmp(key, "kafka.", 6) == 0 && key[6] != '\0') {
        if (set_kafka_prop(cfg, key + 6, value) != CD_OK)
            return cd_err_set(err, CD_ERROR, "%s: out of memory", key);
        return CD_OK;
    }
    return cd_err_set(err, CD_ERROR, "unknown setting '%s'", key);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        *--e = '\0';
    return s;
}

cd_status_t cd_config_load_file(cd_config_t *cfg, const char *path, cd_err_t *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return cd_err_set(err, CD_ERROR, "cannot open config file '%s': %s", path,
                          strerror(errno));

    cd_status_t st = CD_OK;
    char line[4096];
    int lineno = 0;
    while (st == CD_OK && fgets(line, sizeof(line), f)) {
        lineno++;
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            st = cd_err_set(err, CD_ERROR, "%s:%d: expected 'key = value', got '%s'", path,
                            lineno, s);
            break;
        }
        *eq = '\0';
        cd_err_t e;
        if (cd_config_set(cfg, trim(s), trim(eq + 1), &e) != CD_OK)
            st = cd_err_set(err, CD_ERROR, "%s:%d: %s", path, lineno, e.msg);
    }
    fclose(f);
    return st;
}

cd_status_t cd_config_load_env(cd_config_t *cfg, cd_err_t *err)
{
    for (size_t i = 0; i < CD_ARRAY_LEN(settings); i++) {
        const char *v = getenv(settings[i].env);
        if (!v)
            continue;
        cd_err_t e;
        if (cd_config_set(cfg, settings[i].key, v, &e) != CD_OK)
            return cd_err_set(err, CD_ERROR, "environment %s: %s", settings[i].env, e.msg);
    }
    return CD_OK;
}

/*
 * libpq's own parser reads the conninfo or URL, so whatever form the password
 * takes (quoted, spaced, in a query string) it is found; the result is shown
 * as keyword=value pairs with the password masked.  What libpq cannot parse
 * is not shown at all, as it may hold a password in a form we cannot see.
 */
const char *cd_config_masked_url(const char *url, char *buf, size_t size)
{
    PQconninfoOption *opts = PQconninfoParse(url, NULL);
    size_t o = 0;

    if (size == 0)
        return buf;
    buf[0] = '\0';
    if (!opts) {
        snprintf(buf, size, "%s", "(unparsable connection string)");
        return buf;
    }
    for (PQconninfoOption *p = opts; p->keyword; p++) {
        if (!p->val || !p->val[0])
            continue;
        bool secret = strcmp(p->keyword, "password") == 0 || strcmp(p->keyword, "sslpassword") == 0;
        int n = snprintf(buf + o, size - o, "%s%s=%s", o ? " " : "", p->keyword,
                         secret ? "****" : p->val);
        if (n < 0 || (size_t)n >= size - o) {
            buf[o] = '\0'; /* a pair that does not fit is left out whole */
            break;
        }
        o += (size_t)n;
    }
    PQconninfoFree(opts);
    return buf;
}
