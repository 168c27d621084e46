/*
 * test_config.c -- settings: defaults, cd_config_set for every kind of key,
 * Kafka passthrough properties, the properties file, the environment, and
 * the masking of database passwords for logs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convdiag/common.h"
#include "convdiag/config.h"
#include "convdiag/log.h"

static const char *const env_names[] = {
    "CONVDIAG_KAFKA_BROKERS",    "CONVDIAG_KAFKA_TOPIC",         "CONVDIAG_KAFKA_GROUP_ID",
    "CONVDIAG_DATABASE_URL",     "CONVDIAG_BATCH_MAX_EVENTS",    "CONVDIAG_BATCH_MAX_WAIT_MS",
    "CONVDIAG_EVENT_MAX_BYTES",  "CONVDIAG_SCENARIOS_STRICT",    "CONVDIAG_SHUTDOWN_TIMEOUT_MS",
    "CONVDIAG_LOG_LEVEL",
};

static void clear_env(void)
{
    for (size_t i = 0; i < CD_ARRAY_LEN(env_names); i++)
        unsetenv(env_names[i]);
}

static int clear_env_fixture(void **state)
{
    (void)state;
    clear_env();
    return 0;
}

static const char *level_name(cd_log_level_t l)
{
    switch (l) {
    case CD_LOG_ERROR: return "error";
    case CD_LOG_WARN: return "warn";
    case CD_LOG_INFO: return "info";
    case CD_LOG_DEBUG: return "debug";
    }
    return "?";
}

/* The current value of a documented key, as text. */
static const char *get(const cd_config_t *cfg, const char *key, char *buf, size_t size)
{
    if (strcmp(key, "kafka.bootstrap.servers") == 0) return cfg->kafka_brokers;
    if (strcmp(key, "kafka.topic") == 0) return cfg->kafka_topic;
    if (strcmp(key, "kafka.group.id") == 0) return cfg->kafka_group;
    if (strcmp(key, "database.url") == 0) return cfg->database_url;
    if (strcmp(key, "batch.max.events") == 0)
        snprintf(buf, size, "%zu", cfg->batch_max_events);
    else if (strcmp(key, "batch.max.wait.ms") == 0)
        snprintf(buf, size, "%d", cfg->batch_max_wait_ms);
    else if (strcmp(key, "event.max.bytes") == 0)
        snprintf(buf, size, "%zu", cfg->event_max_bytes);
    else if (strcmp(key, "scenarios.strict") == 0)
        snprintf(buf, size, "%s", cfg->scenarios_strict ? "true" : "false");
    else if (strcmp(key, "shutdown.timeout.ms") == 0)
        snprintf(buf, size, "%d", cfg->shutdown_timeout_ms);
    else if (strcmp(key, "log.level") == 0)
        snprintf(buf, size, "%s", level_name(cfg->log_level));
    else
        fail_msg("no such key in the test: %s", key);
    return buf;
}

/* ---- Defaults ---- */

static void test_defaults(void **state)
{
    (void)state;
    cd_config_t cfg;
    memset(&cfg, 0x5A, sizeof(cfg));
    cd_config_init(&cfg);
    assert_string_equal(cfg.kafka_brokers, "127.0.0.1:9092");
    assert_string_equal(cfg.kafka_topic, "conversation-events");
    assert_string_equal(cfg.kafka_group, "convdiag");
    assert_non_null(cfg.database_url);
    assert_string_equal(cfg.database_url, "");
    assert_null(cfg.kafka_props);
    assert_int_equal(cfg.kafka_props_count, 0);
    assert_int_equal(cfg.batch_max_events, 5000);
    assert_int_equal(cfg.batch_max_wait_ms, 200);
    assert_int_equal(cfg.event_max_bytes, 65536);
    assert_false(cfg.scenarios_strict);
    assert_int_equal(cfg.shutdown_timeout_ms, 10000);
    assert_int_equal(cfg.log_level, CD_LOG_INFO);
    cd_config_fini(&cfg);
    assert_null(cfg.kafka_brokers);
    assert_null(cfg.kafka_props);
    assert_int_equal(cfg.kafka_props_count, 0);
}

/* ---- cd_config_set, one row per key and value ---- */

typedef struct set_case {
    const char *key;
    const char *value;
    const char *want;   /* the value read back; NULL: refused */
    const char *reason; /* when refused: the whole reason */
} set_case_t;

#define OKV(k, v, w) {k, v, w, NULL}
#define ERR(k, v, r) {k, v, NULL, r}

static const set_case_t set_cases[] = {
    /* strings */
    OKV("kafka.bootstrap.servers", "b1:9093,b2:9093", "b1:9093,b2:9093"),
    OKV("kafka.topic", "events-v1", "events-v1"),
    OKV("kafka.group.id", "convdiag-eu", "convdiag-eu"),
    OKV("database.url", "postgres://u:p@db:5432/cd", "postgres://u:p@db:5432/cd"),
    OKV("database.url", "host=db dbname=cd", "host=db dbname=cd"),
    OKV("database.url", "", ""),
    /* sizes, with their ranges */
    OKV("batch.max.events", "1", "1"),
    OKV("batch.max.events", "250", "250"),
    OKV("batch.max.events", "1000000", "1000000"),
    ERR("batch.max.events", "0", "batch.max.events: '0' is not a whole number between 1 and 1000000"),
    ERR("batch.max.events", "1000001",
        "batch.max.events: '1000001' is not a whole number between 1 and 1000000"),
    ERR("batch.max.events", "-5", "batch.max.events: '-5' is not a whole number between 1 and 1000000"),
    ERR("batch.max.events", "12abc",
        "batch.max.events: '12abc' is not a whole number between 1 and 1000000"),
    ERR("batch.max.events", "1.5", "batch.max.events: '1.5' is not a whole number between 1 and 1000000"),
    ERR("batch.max.events", "", "batch.max.events: '' is not a whole number between 1 and 1000000"),
    ERR("batch.max.events", "99999999999999999999",
        "batch.max.events: '99999999999999999999' is not a whole number between 1 and 1000000"),
    ERR("batch.max.events", "-18446744073709551615",
        "batch.max.events: '-18446744073709551615' is not a whole number between 1 and 1000000"),
    OKV("event.max.bytes", "256", "256"),
    OKV("event.max.bytes", "16777216", "16777216"),
    ERR("event.max.bytes", "255", "event.max.bytes: '255' is not a whole number between 256 and 16777216"),
    ERR("event.max.bytes", "16777217",
        "event.max.bytes: '16777217' is not a whole number between 256 and 16777216"),
    /* ints, with their ranges */
    OKV("batch.max.wait.ms", "1", "1"),
    OKV("batch.max.wait.ms", "60000", "60000"),
    ERR("batch.max.wait.ms", "0", "batch.max.wait.ms: '0' is not a whole number between 1 and 60000"),
    ERR("batch.max.wait.ms", "60001", "batch.max.wait.ms: '60001' is not a whole number between 1 and 60000"),
    ERR("batch.max.wait.ms", "fast", "batch.max.wait.ms: 'fast' is not a whole number between 1 and 60000"),
    OKV("shutdown.timeout.ms", "0", "0"),
    OKV("shutdown.timeout.ms", "600000", "600000"),
    ERR("shutdown.timeout.ms", "600001",
        "shutdown.timeout.ms: '600001' is not a whole number between 0 and 600000"),
    ERR("shutdown.timeout.ms", "-1", "shutdown.timeout.ms: '-1' is not a whole number between 0 and 600000"),
    ERR("shutdown.timeout.ms", "4294967296",
        "shutdown.timeout.ms: '4294967296' is not a whole number between 0 and 600000"),
    /* bools */
    OKV("scenarios.strict", "true", "true"),
    OKV("scenarios.strict", "TRUE", "true"),
    OKV("scenarios.strict", "True", "true"),
    OKV("scenarios.strict", "1", "true"),
    OKV("scenarios.strict", "false", "false"),
    OKV("scenarios.strict", "FALSE", "false"),
    OKV("scenarios.strict", "0", "false"),
    ERR("scenarios.strict", "maybe", "scenarios.strict: 'maybe' is not true or false"),
    ERR("scenarios.strict", "", "scenarios.strict: '' is not true or false"),
    ERR("scenarios.strict", "2", "scenarios.strict: '2' is not true or false"),
    ERR("scenarios.strict", "truex", "scenarios.strict: 'truex' is not true or false"),
    /* log levels */
    OKV("log.level", "error", "error"),
    OKV("log.level", "warn", "warn"),
    OKV("log.level", "info", "info"),
    OKV("log.level", "debug", "debug"),
    ERR("log.level", "verbose", "log.level: 'verbose' is not one of error, warn, info, debug"),
    ERR("log.level", "", "log.level: '' is not one of error, warn, info, debug"),
    /* unknown keys */
    ERR("batch.size", "10", "unknown setting 'batch.size'"),
    ERR("KAFKA.TOPIC", "x", "unknown setting 'KAFKA.TOPIC'"),
    ERR("kafka.", "x", "unknown setting 'kafka.'"),
    ERR("kafka", "x", "unknown setting 'kafka'"),
    ERR("", "x", "unknown setting ''"),
};

static void test_set(void **state)
{
    (void)state;
    for (size_t i = 0; i < CD_ARRAY_LEN(set_cases); i++) {
        const set_case_t *c = &set_cases[i];
        cd_config_t cfg, def;
        cd_err_t err = {"(no reason set)"};
        char buf[64], defbuf[64];

        cd_config_init(&cfg);
        cd_config_init(&def);
        cd_status_t st = cd_config_set(&cfg, c->key, c->value, &err);
        if (c->want) {
            if (st != CD_OK)
                print_message("%s = '%s' refused: %s\n", c->key, c->value, err.msg);
            assert_int_equal(st, CD_OK);
            assert_string_equal(get(&cfg, c->key, buf, sizeof(buf)), c->want);
            assert_int_equal(cfg.kafka_props_count, 0);
        } else {
            if (st != CD_ERROR || strcmp(err.msg, c->reason) != 0)
                print_message("%s = '%s': status %d\n  expected: %s\n  actual:   %s\n", c->key,
                              c->value, (int)st, c->reason, err.msg);
            assert_int_equal(st, CD_ERROR);
            assert_string_equal(err.msg, c->reason);
            /* A refused value leaves the setting as it was. */
            if (strncmp(c->reason, "unknown", 7) != 0)
                assert_string_equal(get(&cfg, c->key, buf, sizeof(buf)),
                                    get(&def, c->key, defbuf, sizeof(defbuf)));
            assert_int_equal(cfg.kafka_props_count, 0);
        }
        cd_config_fini(&cfg);
        cd_config_fini(&def);
    }
}

/* Setting a string twice frees the first value (checked by the leak sanitizer). */
static void test_set_twice(void **state)
{
    (void)state;
    cd_config_t cfg;
    cd_err_t err;
    cd_config_init(&cfg);
    assert_int_equal(cd_config_set(&cfg, "database.url", "host=a", &err), CD_OK);
    assert_int_equal(cd_config_set(&cfg, "database.url", "host=b", &err), CD_OK);
    assert_string_equal(cfg.database_url, "host=b");
    assert_int_equal(cd_config_set(&cfg, "batch.max.events", "10", &err), CD_OK);
    assert_int_equal(cd_config_set(&cfg, "batch.max.events", "0", &err), CD_ERROR);
    assert_int_equal(cfg.batch_max_events, 10);
    /* The value is copied, not borrowed. */
    char topic[] = "mutable";
    assert_int_equal(cd_config_set(&cfg, "kafka.topic", topic, &err), CD_OK);
    topic[0] = 'X';
    assert_string_equal(cfg.kafka_topic, "mutable");
    cd_config_fini(&cfg);
}

/* ---- Kafka passthrough ---- */

static void test_kafka_passthrough(void **state)
{
    (void)state;
    cd_config_t cfg;
    cd_err_t err;
    cd_config_init(&cfg);

    assert_int_equal(cd_config_set(&cfg, "kafka.security.protocol", "SASL_SSL", &err), CD_OK);
    assert_int_equal(cd_config_set(&cfg, "kafka.sasl.mechanisms", "SCRAM-SHA-512", &err), CD_OK);
    assert_int_equal(cd_config_set(&cfg, "kafka.ssl.ca.location", "/etc/ssl/ca.pem", &err), CD_OK);
    assert_int_equal(cfg.kafka_props_count, 3);
    assert_string_equal(cfg.kafka_props[0].key, "security.protocol");
    assert_string_equal(cfg.kafka_props[0].value, "SASL_SSL");
    assert_string_equal(cfg.kafka_props[1].key, "sasl.mechanisms");
    assert_string_equal(cfg.kafka_props[1].value, "SCRAM-SHA-512");
    assert_string_equal(cfg.kafka_props[2].key, "ssl.ca.location");

    /* The same key again replaces the value in place. */
    assert_int_equal(cd_config_set(&cfg, "kafka.security.protocol", "SSL", &err), CD_OK);
    assert_int_equal(cfg.kafka_props_count, 3);
    assert_string_equal(cfg.kafka_props[0].key, "security.protocol");
    assert_string_equal(cfg.kafka_props[0].value, "SSL");
    assert_string_equal(cfg.kafka_props[1].value, "SCRAM-SHA-512");

    /* Keys with a setting of their own are not passed through. */
    assert_int_equal(cd_config_set(&cfg, "kafka.topic", "t", &err), CD_OK);
    assert_int_equal(cd_config_set(&cfg, "kafka.group.id", "g", &err), CD_OK);
    assert_int_equal(cd_config_set(&cfg, "kafka.bootstrap.servers", "k:9092", &err), CD_OK);
    assert_int_equal(cfg.kafka_props_count, 3);
    assert_string_equal(cfg.kafka_topic, "t");
    assert_string_equal(cfg.kafka_group, "g");
    assert_string_equal(cfg.kafka_brokers, "k:9092");

    /* Many properties: the array grows. */
    for (int i = 0; i < 40; i++) {
        char key[32], value[32];
        snprintf(key, sizeof(key), "kafka.x.prop%d", i);
        snprintf(value, sizeof(value), "v%d", i);
        assert_int_equal(cd_config_set(&cfg, key, value, &err), CD_OK);
    }
    assert_int_equal(cfg.kafka_props_count, 43);
    assert_string_equal(cfg.kafka_props[42].key, "x.prop39");
    assert_string_equal(cfg.kafka_props[42].value, "v39");
    assert_string_equal(cfg.kafka_props[0].value, "SSL");
    cd_config_fini(&cfg);
    assert_int_equal(cfg.kafka_props_count, 0);
    assert_null(cfg.kafka_props);
}

/* ---- Properties file ---- */

static char *write_temp(const char *content)
{
    const char *dir = getenv("TMPDIR");
    char *path = NULL;
    assert_true(asprintf(&path, "%s/cd_config_XXXXXX", dir && *dir ? dir : "/tmp") > 0);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t n = strlen(content);
    assert_int_equal(write(fd, content, n), (ssize_t)n);
    close(fd);
    return path;
}

static void remove_temp(char *path)
{
    unlink(path);
    free(path);
}

static void test_load_file(void **state)
{
    (void)state;
    char *path = write_temp("# convdiag settings\n"
                            "\n"
                            "   \n"
                            "  # an indented comment\n"
                            "kafka.bootstrap.servers = broker-1:9092,broker-2:9092\n"
                            "kafka.topic=events\n"
                            "\tkafka.group.id\t=\tgroup-a\t\n"
                            "database.url = host=db port=5432 dbname=cd sslmode=require\n"
                            "batch.max.events = 1000\r\n"
                            "batch.max.wait.ms = 50\n"
                            "event.max.bytes = 1048576\n"
                            "scenarios.strict = true\n"
                            "shutdown.timeout.ms = 30000\n"
                            "log.level = debug\n"
                            "kafka.security.protocol = SASL_SSL\n"
                            "kafka.sasl.jaas.config = user=a password=b\n"
                            "kafka.security.protocol = SSL\n"
                            "# done");
    cd_config_t cfg;
    cd_err_t err = {"(no reason set)"};
    cd_config_init(&cfg);
    cd_status_t st = cd_config_load_file(&cfg, path, &err);
    if (st != CD_OK)
        print_message("reason: %s\n", err.msg);
    assert_int_equal(st, CD_OK);
    assert_string_equal(cfg.kafka_brokers, "broker-1:9092,broker-2:9092");
    assert_string_equal(cfg.kafka_topic, "events");
    assert_string_equal(cfg.kafka_group, "group-a");
    assert_string_equal(cfg.database_url, "host=db port=5432 dbname=cd sslmode=require");
    assert_int_equal(cfg.batch_max_events, 1000);
    assert_int_equal(cfg.batch_max_wait_ms, 50);
    assert_int_equal(cfg.event_max_bytes, 1048576);
    assert_true(cfg.scenarios_strict);
    assert_int_equal(cfg.shutdown_timeout_ms, 30000);
    assert_int_equal(cfg.log_level, CD_LOG_DEBUG);
    assert_int_equal(cfg.kafka_props_count, 2);
    assert_string_equal(cfg.kafka_props[0].key, "security.protocol");
    assert_string_equal(cfg.kafka_props[0].value, "SSL");
    assert_string_equal(cfg.kafka_props[1].key, "sasl.jaas.config");
    assert_string_equal(cfg.kafka_props[1].value, "user=a password=b");
    cd_config_fini(&cfg);
    remove_temp(path);

    /* An empty file changes nothing. */
    path = write_temp("");
    cd_config_init(&cfg);
    assert_int_equal(cd_config_load_file(&cfg, path, &err), CD_OK);
    assert_string_equal(cfg.kafka_topic, "conversation-events");
    cd_config_fini(&cfg);
    remove_temp(path);
}

typedef struct file_bad_case {
    const char *content;
    int line;
    const char *reason; /* after "<path>:<line>: " */
} file_bad_case_t;

static const file_bad_case_t file_bad_cases[] = {
    {"# settings\nkafka.topic = t\n\nthis line has no equals sign\nkafka.group.id = g\n", 4,
     "expected 'key = value', got 'this line has no equals sign'"},
    {"kafka.topic = t\nbatch.max.events = many\n", 2,
     "batch.max.events: 'many' is not a whole number between 1 and 1000000"},
    {"\n\n\nno.such.key = 1\n", 4, "unknown setting 'no.such.key'"},
    {"scenarios.strict = yes\n", 1, "scenarios.strict: 'yes' is not true or false"},
    {"# a\r\n# b\r\nlog.level = loud\r\n", 3,
     "log.level: 'loud' is not one of error, warn, info, debug"},
    {"kafka.topic = t\n= value without key\n", 2, "unknown setting ''"},
};

static void test_load_file_bad_line(void **state)
{
    (void)state;
    for (size_t i = 0; i < CD_ARRAY_LEN(file_bad_cases); i++) {
        const file_bad_case_t *c = &file_bad_cases[i];
        char *path = write_temp(c->content);
        char want[CD_ERR_MAX];
        snprintf(want, sizeof(want), "%s:%d: %s", path, c->line, c->reason);
        cd_config_t cfg;
        cd_err_t err = {"(no reason set)"};
        cd_config_init(&cfg);
        cd_status_t st = cd_config_load_file(&cfg, path, &err);
        if (st != CD_ERROR || strcmp(err.msg, want) != 0)
            print_message("case %zu: status %d\n  expected: %s\n  actual:   %s\n", i, (int)st,
                          want, err.msg);
        assert_int_equal(st, CD_ERROR);
        assert_string_equal(err.msg, want);
        cd_config_fini(&cfg);
        remove_temp(path);
    }
}

static void test_load_file_missing(void **state)
{
    (void)state;
    cd_config_t cfg;
    cd_err_t err = {"(no reason set)"};
    cd_config_init(&cfg);
    assert_int_equal(cd_config_load_file(&cfg, "/nonexistent/convdiag.properties", &err),
                     CD_ERROR);
    assert_non_null(strstr(err.msg, "cannot open config file '/nonexistent/convdiag.properties'"));
    assert_non_null(strstr(err.msg, "No such file or directory"));
    cd_config_fini(&cfg);
}

/* ---- Environment ---- */

static void test_load_env(void **state)
{
    (void)state;
    cd_config_t cfg;
    cd_err_t err = {"(no reason set)"};

    /* Nothing set: nothing changes. */
    cd_config_init(&cfg);
    assert_int_equal(cd_config_load_env(&cfg, &err), CD_OK);
    assert_string_equal(cfg.kafka_brokers, "127.0.0.1:9092");
    assert_int_equal(cfg.batch_max_events, 5000);
    cd_config_fini(&cfg);

    setenv("CONVDIAG_KAFKA_BROKERS", "kafka-0:9092", 1);
    setenv("CONVDIAG_KAFKA_TOPIC", "env-topic", 1);
    setenv("CONVDIAG_KAFKA_GROUP_ID", "env-group", 1);
    setenv("CONVDIAG_DATABASE_URL", "postgres://u:p@pg/cd", 1);
    setenv("CONVDIAG_BATCH_MAX_EVENTS", "77", 1);
    setenv("CONVDIAG_BATCH_MAX_WAIT_MS", "15", 1);
    setenv("CONVDIAG_EVENT_MAX_BYTES", "4096", 1);
    setenv("CONVDIAG_SCENARIOS_STRICT", "1", 1);
    setenv("CONVDIAG_SHUTDOWN_TIMEOUT_MS", "2500", 1);
    setenv("CONVDIAG_LOG_LEVEL", "warn", 1);
    cd_config_init(&cfg);
    cd_status_t st = cd_config_load_env(&cfg, &err);
    if (st != CD_OK)
        print_message("reason: %s\n", err.msg);
    assert_int_equal(st, CD_OK);
    assert_string_equal(cfg.kafka_brokers, "kafka-0:9092");
    assert_string_equal(cfg.kafka_topic, "env-topic");
    assert_string_equal(cfg.kafka_group, "env-group");
    assert_string_equal(cfg.database_url, "postgres://u:p@pg/cd");
    assert_int_equal(cfg.batch_max_events, 77);
    assert_int_equal(cfg.batch_max_wait_ms, 15);
    assert_int_equal(cfg.event_max_bytes, 4096);
    assert_true(cfg.scenarios_strict);
    assert_int_equal(cfg.shutdown_timeout_ms, 2500);
    assert_int_equal(cfg.log_level, CD_LOG_WARN);
    cd_config_fini(&cfg);
    clear_env();

    /* An empty variable is a value, not an absence. */
    setenv("CONVDIAG_DATABASE_URL", "", 1);
    cd_config_init(&cfg);
    assert_int_equal(cd_config_set(&cfg, "database.url", "host=file", &err), CD_OK);
    assert_int_equal(cd_config_load_env(&cfg, &err), CD_OK);
    assert_string_equal(cfg.database_url, "");
    cd_config_fini(&cfg);
    clear_env();
}

static void test_load_env_bad_value(void **state)
{
    (void)state;
    cd_config_t cfg;
    cd_err_t err = {"(no reason set)"};

    setenv("CONVDIAG_BATCH_MAX_EVENTS", "lots", 1);
    cd_config_init(&cfg);
    assert_int_equal(cd_config_load_env(&cfg, &err), CD_ERROR);
    assert_string_equal(err.msg, "environment CONVDIAG_BATCH_MAX_EVENTS: batch.max.events: 'lots' "
                                 "is not a whole number between 1 and 1000000");
    assert_int_equal(cfg.batch_max_events, 5000);
    cd_config_fini(&cfg);
    clear_env();

    setenv("CONVDIAG_LOG_LEVEL", "trace", 1);
    cd_config_init(&cfg);
    assert_int_equal(cd_config_load_env(&cfg, &err), CD_ERROR);
    assert_string_equal(err.msg, "environment CONVDIAG_LOG_LEVEL: log.level: 'trace' is not one "
                                 "of error, warn, info, debug");
    cd_config_fini(&cfg);
    clear_env();
}

/* File first, then the environment: the environment wins. */
static void test_env_overrides_file(void **state)
{
    (void)state;
    char *path = write_temp("kafka.topic = from-file\nbatch.max.events = 10\n");
    cd_config_t cfg;
    cd_err_t err;
    setenv("CONVDIAG_KAFKA_TOPIC", "from-env", 1);
    cd_config_init(&cfg);
    assert_int_equal(cd_config_load_file(&cfg, path, &err), CD_OK);
    assert_int_equal(cd_config_load_env(&cfg, &err), CD_OK);
    assert_string_equal(cfg.kafka_topic, "from-env");
    assert_int_equal(cfg.batch_max_events, 10);
    cd_config_fini(&cfg);
    clear_env();
    remove_temp(path);
}

/* ---- Masking database passwords ---- */

typedef struct mask_case {
    const char *url;
    const char *want;   /* exact output; NULL: see secret */
    const char *secret; /* must not appear in the output */
    const char *keep;   /* must appear in the output (when want is NULL) */
} mask_case_t;

/* Output is libpq's reading of the string as keyword=value pairs, in libpq's
 * keyword order, with password and sslpassword masked. */
static const mask_case_t mask_cases[] = {
    /* URLs */
    {"postgres://user:secret@host/db", "user=user password=**** dbname=db host=host", "secret",
     NULL},
    {"postgresql://cd_user:s3cr3t!@db.example.com:5432/convdiag?sslmode=verify-full", NULL,
     "s3cr3t", "sslmode=verify-full"},
    {"postgres://user:p%40ss@host/db", NULL, "p@ss", "user=user"},
    {"postgres://user:secret@h1:5432,h2:5433/db", NULL, "secret", "host=h1,h2"},
    {"postgres://host/db?password=secret&sslmode=require", NULL, "secret", "sslmode=require"},
    {"postgres://u:secret1@host/db?password=secret2", NULL, "secret", "password=****"},
    /* conninfo */
    {"host=x password=secret dbname=y", "password=**** dbname=y host=x", "secret", NULL},
    {"password=secret", "password=****", "secret", NULL},
    {"host=x password='secret' dbname=y", NULL, "secret", "dbname=y"},
    {"host=x sslpassword=keypass dbname=y", NULL, "keypass", "dbname=y"},
    /* libpq allows spaces around '=' and quoted values with spaces */
    {"host=x password = secret dbname=y", NULL, "secret", "dbname=y"},
    {"host=x password= secret dbname=y", NULL, "secret", "dbname=y"},
    {"host=x password='my secret' dbname=y", NULL, "secret", "dbname=y"},
    /* what libpq cannot parse is not shown */
    {"host=x password='unterminated secret", "(unparsable connection string)", "secret", NULL},
    {"?password=secret&sslmode=require", "(unparsable connection string)", "secret", NULL},
    /* nothing to mask */
    {"", "", NULL, NULL},
    {"host=x dbname=y user=z", "user=z dbname=y host=x", NULL, NULL},
    {"postgres://host:5432/db", "dbname=db host=host port=5432", NULL, NULL},
};

static void test_masked_url(void **state)
{
    (void)state;
    int bad = 0;
    for (size_t i = 0; i < CD_ARRAY_LEN(mask_cases); i++) {
        const mask_case_t *c = &mask_cases[i];
        char buf[256];
        memset(buf, '#', sizeof(buf));
        const char *out = cd_config_masked_url(c->url, buf, sizeof(buf));
        bool ok = out == buf;
        if (ok && c->want)
            ok = strcmp(out, c->want) == 0;
        if (ok && c->secret)
            ok = strstr(out, c->secret) == NULL;
        if (ok && c->keep)
            ok = strstr(out, c->keep) != NULL;
        if (!ok) {
            print_message("masking '%s'\n  expected: %s%s%s\n  actual:   %s\n", c->url,
                          c->want ? c->want : "no '", c->want ? "" : c->secret,
                          c->want ? "" : "' in the output", out);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

/* A small buffer: truncated, terminated, nothing written past it, nothing revealed. */
static void test_masked_url_small_buffer(void **state)
{
    (void)state;
    static const char *const urls[] = {
        "postgres://user:secret@host/db",
        "host=x password=secret dbname=y",
        "postgres://host/db?password=secret&sslmode=require",
    };
    for (size_t u = 0; u < CD_ARRAY_LEN(urls); u++) {
        for (size_t size = 1; size <= strlen(urls[u]) + 1; size++) {
            char buf[128];
            memset(buf, '#', sizeof(buf));
            cd_config_masked_url(urls[u], buf, size);
            assert_true(strlen(buf) < size);
            for (size_t i = size; i < sizeof(buf); i++)
                assert_int_equal(buf[i], '#');
            /* no prefix of the secret longer than 2 characters */
            assert_null(strstr(buf, "sec"));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_set),
        cmocka_unit_test(test_set_twice),
        cmocka_unit_test(test_kafka_passthrough),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_load_file_bad_line),
        cmocka_unit_test(test_load_file_missing),
        cmocka_unit_test(test_load_env),
        cmocka_unit_test(test_load_env_bad_value),
        cmocka_unit_test(test_env_overrides_file),
        cmocka_unit_test(test_masked_url),
        cmocka_unit_test(test_masked_url_small_buffer),
    };
    return cmocka_run_group_tests_name("config", tests, clear_env_fixture, clear_env_fixture);
}
