/* baseline.c -- bench/latency's reference consumer: what a plain Kafka to
 * PostgreSQL loader does, and nothing more.
 *
 * A member of a consumer group with enable.auto.offset.store=false polls up to
 * MAX messages or WAIT_MS milliseconds, parses each message as a JSON event
 * (cJSON), COPYs one row per event into events_copy (one COPY statement, so
 * one transaction), and once it has committed stores the batch's offsets,
 * which librdkafka's auto commit then sends to the broker.  No validation
 * beyond the required fields, no tagging, no state, no dead letters: a
 * message that is not an event is counted and skipped.  SIGTERM or SIGINT:
 * the batch in hand is finished, the consumer leaves the group (committing
 * the stored offsets), exit 0.  A failed COPY is fatal (exit 1).
 *
 * Usage: baseline BROKERS TOPIC GROUP [MAX [WAIT_MS]]   (5000, 200)
 * PostgreSQL from the PG* environment variables.
 */
#include <cjson/cJSON.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* A growing buffer for the COPY data of one batch. */
static char *buf;
static size_t len, cap;

static void put(const char *s, size_t n)
{
    if (len + n > cap) {
        cap = (len + n) * 2;
        if (!(buf = realloc(buf, cap))) {
            fprintf(stderr, "baseline: out of memory\n");
            exit(1);
        }
    }
    memcpy(buf + len, s, n);
    len += n;
}

/* One text-format field: NULL as \N, the delimiters escaped. */
static void field(const char *v, char sep)
{
    if (!v) {
        put("\\N", 2);
    } else {
        for (; *v; v++) {
            switch (*v) {
            case '\\': put("\\\\", 2); break;
            case '\t': put("\\t", 2); break;
            case '\n': put("\\n", 2); break;
            case '\r': put("\\r", 2); break;
            default: put(v, 1);
            }
        }
    }
    put(&sep, 1);
}

static const char *str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Appends the event's row; 0 if the message is not an event. */
static int add_row(const rd_kafka_message_t *m)
{
    cJSON *e = cJSON_ParseWithLength(m->payload, m->len);
    const char *req[] = {"eventId", "timestamp", "organizationId", "liveWorkItemId",
                         "scenario", "status", "channelType"};
    const char *v[7];
    char num[32], *attrs = NULL;

    for (int i = 0; i < 7; i++) {
        if (!(v[i] = str(e, req[i]))) {
            cJSON_Delete(e);
            return 0;
        }
    }
    /* event_id .. channel_type; the scenario twice (canonical, received), and
     * the category, which is the catalogue's business, empty. */
    field(v[0], '\t'); field(v[1], '\t'); field(v[2], '\t'); field(v[3], '\t');
    field(v[4], '\t'); field(v[4], '\t'); field("", '\t'); field(v[5], '\t');
    field(v[6], '\t');
    field(str(e, "participantType"), '\t');
    field(str(e, "userId"), '\t');
    field(str(e, "sessionId"), '\t');
    field(str(e, "transactionId"), '\t');
    field(str(e, "traceparent"), '\t');
    field(str(e, "tracestate"), '\t');
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(e, "durationMs");
    if (cJSON_IsNumber(d))
        snprintf(num, sizeof(num), "%.0f", d->valuedouble);
    field(cJSON_IsNumber(d) ? num : NULL, '\t');
    field(str(e, "failureReason"), '\t');
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(e, "attributes");
    if (cJSON_IsObject(a))
        attrs = cJSON_PrintUnformatted(a);
    field(attrs, '\t');
    free(attrs);
    field(rd_kafka_topic_name(m->rkt), '\t');
    snprintf(num, sizeof(num), "%d", (int)m->partition);
    field(num, '\t');
    snprintf(num, sizeof(num), "%lld", (long long)m->offset);
    field(num, '\n');
    cJSON_Delete(e);
    return 1;
}

#define COLUMNS                                                                           \
    "event_id, event_time, organization_id, live_work_item_id, scenario, "                 \
    "scenario_received, category, status, channel_type, participant_type, user_id, "       \
    "session_id, transaction_id, traceparent, tracestate, duration_ms, failure_reason, "   \
    "attributes, kafka_topic, kafka_partition, kafka_offset"

/* One COPY, one transaction; 0 on failure. */
static int store(PGconn *db)
{
    PGresult *r = PQexec(db, "COPY events_copy (" COLUMNS ") FROM STDIN");
    int ok = PQresultStatus(r) == PGRES_COPY_IN;
    PQclear(r);
    if (ok)
        ok = PQputCopyData(db, buf, (int)len) == 1 && PQputCopyEnd(db, NULL) == 1;
    while ((r = PQgetResult(db))) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            ok = 0;
        PQclear(r);
    }
    if (!ok)
        fprintf(stderr, "baseline: COPY failed: %s", PQerrorMessage(db));
    return ok;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: baseline BROKERS TOPIC GROUP [MAX [WAIT_MS]]\n");
        return 2;
    }
    int max = argc > 4 ? atoi(argv[4]) : 5000, wait_ms = argc > 5 ? atoi(argv[5]) : 200;
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *settings[][2] = {{"bootstrap.servers", argv[1]},
                                 {"group.id", argv[3]},
                                 {"enable.auto.offset.store", "false"},
                                 {"auto.offset.reset", "earliest"}};
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
        if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1], err, sizeof(err))) {
            fprintf(stderr, "baseline: %s\n", err);
            return 2;
        }
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "baseline: %s\n", err);
        return 1;
    }
    PGconn *db = PQconnectdb("");
    if (PQstatus(db) != CONNECTION_OK) {
        fprintf(stderr, "baseline: %s", PQerrorMessage(db));
        return 1;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, argv[2], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e) {
        fprintf(stderr, "baseline: subscribe: %s\n", rd_kafka_err2str(e));
        return 1;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);

    rd_kafka_message_t **msgs = calloc((size_t)max, sizeof(*msgs));
    long long stored = 0, skipped = 0;
    int rc = 0;
    while (!stop) {
        int n = 0;
        long long deadline = now_ms() + wait_ms;
        for (long long left = wait_ms; n < max && left > 0; left = deadline - now_ms()) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, (int)left);
            if (!m)
                continue;
            if (m->err) {
                fprintf(stderr, "baseline: %s\n", rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
                continue;
            }
            msgs[n++] = m;
        }
        if (n == 0)
            continue;

        len = 0;
        int rows = 0;
        for (int i = 0; i < n; i++)
            rows += add_row(msgs[i]);
        skipped += n - rows;
        if (rows > 0 && !store(db)) {
            rc = 1;
            stop = 1;
        } else {
            stored += rows;
            /* Committed: the batch's offsets (the next to read, per partition). */
            rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new(4);
            for (int i = 0; i < n; i++) {
                rd_kafka_topic_partition_t *p = rd_kafka_topic_partition_list_find(
                    offs, rd_kafka_topic_name(msgs[i]->rkt), msgs[i]->partition);
                if (!p)
                    p = rd_kafka_topic_partition_list_add(
                        offs, rd_kafka_topic_name(msgs[i]->rkt), msgs[i]->partition);
                if (msgs[i]->offset + 1 > p->offset)
                    p->offset = msgs[i]->offset + 1;
            }
            rd_kafka_offsets_store(rk, offs);
            rd_kafka_topic_partition_list_destroy(offs);
        }
        for (int i = 0; i < n; i++)
            rd_kafka_message_destroy(msgs[i]);
    }

    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    PQfinish(db);
    free(msgs);
    free(buf);
    fprintf(stderr, "baseline: %lld events stored, %lld messages skipped\n", stored, skipped);
    return rc;
}
