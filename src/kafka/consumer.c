/*
 * consumer.c -- the consumer group member; see kafka.h.
 *
 * Offsets: enable.auto.offset.store=false, so librdkafka's periodic commit
 * only ever commits what cd_kafka_consumer_store_offsets() stored, i.e.
 * what PostgreSQL already holds.  A crash between the database commit and the
 * offset commit replays those messages; eventId deduplication absorbs them.
 *
 * The consumer queue signals a pipe when it goes from empty to not empty,
 * so the polling thread can wait on it beside its other work (poll(2)),
 * and takes what waits without blocking.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convdiag/kafka.h"
#include "convdiag/log.h"
#include "kafka_conf.h"

/* A broker that has sent nothing for this long is not answering: a member
 * in a group hears from its coordinator at every heartbeat (3 s), and a
 * fetch at the end of a partition returns within fetch.wait.max.ms. */
#define SILENCE_MS 10000

struct cd_kafka_consumer {
    rd_kafka_t *rk;
    int bound_ms; /* the longest a commit may take: shutdown.timeout.ms */
    bool close_timed_out;
    int64_t deadline_us; /* of the close and the destruction after it */
    int64_t heard_us; /* when a broker last sent something (statistics), on cd_mono_us */
    int64_t rebalance_us; /* when the member last began to wait for its assignment */
    rd_kafka_queue_t *queue; /* the consumer queue, signalling wake[1] */
    int wake[2];
    cd_kafka_rebalance_hooks_t hooks;
    /* Our view of the assignment, with "read to the end" per partition, for caught_up. */
    rd_kafka_topic_partition_list_t *assigned;
    bool *at_end;
    bool assignment_given; /* the group has given us our part since the last revocation */
};

static int find_partition(const cd_kafka_consumer_t *c, const char *topic, int32_t partition)
{
    for (int i = 0; i < c->assigned->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &c->assigned->elems[i];
        if (p->partition == partition && strcmp(p->topic, topic) == 0)
            return i;
    }
    return -1;
}

/* Rebuilds at_end for the current `assigned` list: nothing is known to be read yet. */
static void reset_at_end(cd_kafka_consumer_t *c)
{
    free(c->at_end);
    c->at_end = calloc((size_t)(c->assigned->cnt ? c->assigned->cnt : 1), sizeof(bool));
}

static void track_assign(cd_kafka_consumer_t *c, const rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++)
        if (find_partition(c, parts->elems[i].topic, parts->elems[i].partition) < 0)
            rd_kafka_topic_partition_list_add(c->assigned, parts->elems[i].topic,
                                              parts->elems[i].partition);
    reset_at_end(c);
    c->assignment_given = true;
    c->heard_us = cd_mono_us(); /* it just heard from the coordinator */
}

static void track_revoke(cd_kafka_consumer_t *c, const rd_kafka_topic_partition_list_t *parts,
                         bool all)
{
    if (all) {
        rd_kafka_topic_partition_list_destroy(c->assigned);
        c->assigned = rd_kafka_topic_partition_list_new(8);
    } else {
        for (int i = 0; i < parts->cnt; i++)
            rd_kafka_topic_partition_list_del(c->assigned, parts->elems[i].topic,
                                              parts->elems[i].partition);
    }
    reset_at_end(c);
    c->assignment_given = false; /* a rebalance is under way */
    c->rebalance_us = cd_mono_us();
}

/* The hooks' view of a partition list; NULL when out of memory (hooks skipped). */
static cd_kafka_partition_t *hook_list(const rd_kafka_topic_partition_list_t *parts)
{
    cd_kafka_partition_t *l = calloc((size_t)(parts->cnt ? parts->cnt : 1), sizeof(*l));
    for (int i = 0; l && i < parts->cnt; i++)
        l[i] = (cd_kafka_partition_t){parts->elems[i].topic, parts->elems[i].partition};
    return l;
}

/*
 * Commits the stored offsets, waiting at most bound_ms: a broker gone
 * silent would hold a synchronous commit for socket.timeout.ms, and
 * shutdown must keep its deadline.  A commit not answered in time goes on
 * in the background; the offsets are committed again at the next chance.
 */
static void commit_bounded(cd_kafka_consumer_t *c, const char *what, int bound_ms)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
    rd_kafka_resp_err_t e = rd_kafka_commit_queue(c->rk, NULL, q, NULL, NULL);
    if (!e) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, bound_ms > 0 ? bound_ms : 0);
        e = ev ? rd_kafka_event_error(ev) : RD_KAFKA_RESP_ERR__TIMED_OUT;
        if (ev)
            rd_kafka_event_destroy(ev);
    }
    if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
        cd_log_warn("kafka", "%s: %s", what, rd_kafka_err2str(e));
    rd_kafka_queue_destroy(q);
}

/* From the statistics: when a real broker (not the bootstrap address) last
 * sent anything. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    cd_kafka_consumer_t *c = opaque;
    cJSON *root = cJSON_ParseWithLength(json, len);
    const cJSON *brokers = cJSON_GetObjectItemCaseSensitive(root, "brokers"), *b;
    int64_t idle_us = -1;

    (void)rk;
    cJSON_ArrayForEach(b, brokers)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(b, "nodeid");
        const cJSON *rx = cJSON_GetObjectItemCaseSensitive(b, "rxidle");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || !cJSON_IsNumber(rx) ||
            rx->valuedouble < 0)
            continue;
        if (idle_us < 0 || rx->valuedouble < (double)idle_us)
            idle_us = (int64_t)rx->valuedouble;
    }
    if (idle_us >= 0)
        c->heard_us = cd_mono_us() - idle_us;
    cJSON_Delete(root);
    return 0; /* librdkafka frees json */
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    cd_kafka_consumer_t *c = opaque;
    bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    cd_kafka_partition_t *list = hook_list(parts);

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        cd_log_info("kafka", "assigned %d partition(s)", parts->cnt);
        if (cooperative) {
            rd_kafka_error_t *e = rd_kafka_incremental_assign(rk, parts);
            if (e) {
                cd_log_error("kafka", "incremental assign failed: %s", rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
            }
        } else {
            rd_kafka_assign(rk, parts);
        }
        track_assign(c, parts);
        if (c->hooks.assigned && list)
            c->hooks.assigned(c->hooks.arg, list, parts->cnt);
        free(list);
        return;
    }

    /* Revocation: what is in flight of these partitions settles first, then
     * the offsets stored so far (only ever those of committed batches) are
     * committed, so the next owner starts right after them. */
    cd_log_info("kafka", "revoked %d partition(s)", parts->cnt);
    if (c->hooks.revoking && list)
        c->hooks.revoking(c->hooks.arg, list, parts->cnt);
    free(list);
    commit_bounded(c, "commit on revoke", c->bound_ms);
    if (cooperative) {
        rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
        if (e)
            rd_kafka_error_destroy(e);
        track_revoke(c, parts, false);
    } else {
        rd_kafka_assign(rk, NULL);
        track_revoke(c, parts, true);
    }
}

/*
 * librdkafka's prefetch: two batches a writer, so memory stays bounded at any
 * backlog.  The queue is one for all partitions, in arrival order: while one
 * writer's next batch is full and waits, nothing behind it can be taken, so a
 * queue of one batch (as this was) left the other writer idle half the time
 * (a backlog of 300,000 events caught up in 16-23 s; with two batches a
 * writer, in 7-8 s, peak RSS 52 -> 60 MB).  A fetch brings up to max.partition.fetch.bytes
 * of every partition, a quarter of a batch each, so one response does not
 * overshoot the queue's bound several times over.
 */
static void prefetch_settings(const cd_config_t *cfg, char kbytes[24], char partition[24])
{
    size_t b = cfg->batch_max_bytes;
    size_t writers = cfg->ingest_writers > 0 ? (size_t)cfg->ingest_writers : 1;
    snprintf(kbytes, 24, "%zu", 2 * writers * b / 1024);
    snprintf(partition, 24, "%zu", b / 4);
}

cd_kafka_consumer_t *cd_kafka_consumer_new(const cd_config_t *cfg,
                                           const cd_kafka_rebalance_hooks_t *hooks,
                                           cd_err_t *err)
{
    char kbytes[24], partition[24];
    prefetch_settings(cfg, kbytes, partition);
    const char *const defaults[] = {
        "enable.auto.commit", "true",
        "auto.commit.interval.ms", "1000",
        "enable.auto.offset.store", "false",
        "enable.partition.eof", "true",
        "auto.offset.reset", "earliest",
        "queued.max.messages.kbytes", kbytes,
        "max.partition.fetch.bytes", partition,
        /* For cd_kafka_consumer_answering(). */
        "statistics.interval.ms", "1000",
        NULL,
    };
    cd_kafka_consumer_t *c = calloc(1, sizeof(*c));
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_topic_partition_list_t *topics = NULL;
    char errstr[512];

    if (!c) {
        cd_err_set(err, CD_ERROR, "out of memory");
        return NULL;
    }
    c->wake[0] = c->wake[1] = -1;
    c->bound_ms = cfg->shutdown_timeout_ms;
    c->heard_us = c->rebalance_us = cd_mono_us();
    if (hooks)
        c->hooks = *hooks;
    c->assigned = rd_kafka_topic_partition_list_new(8);
    reset_at_end(c);
    if (pipe2(c->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
        cd_err_set(err, CD_ERROR, "cannot create the consumer's pipe: %s", strerror(errno));
        goto fail;
    }

    if (!(conf = cd_kafka_conf_new(cfg, defaults, err)))
        goto fail;
    if (rd_kafka_conf_set(conf, "group.id", cfg->kafka_group, errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
        cd_err_set(err, CD_ERROR, "kafka.group.id = '%s': %s", cfg->kafka_group, errstr);
        goto fail;
    }
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_stats_cb(conf, stats_cb);
    rd_kafka_conf_set_opaque(conf, c);
    if (!(c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr)))) {
        cd_err_set(err, CD_ERROR, "cannot create the Kafka consumer: %s", errstr);
        goto fail;
    }
    conf = NULL; /* owned by rk now */
    rd_kafka_poll_set_consumer(c->rk);
    c->queue = rd_kafka_queue_get_consumer(c->rk);
    rd_kafka_queue_io_event_enable(c->queue, c->wake[1], "1", 1);

    topics = rd_kafka_topic_partition_list_new(1);
    char *list = strdup(cfg->kafka_topic), *save = NULL;
    for (char *t = list ? strtok_r(list, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save))
        rd_kafka_topic_partition_list_add(topics, t, RD_KAFKA_PARTITION_UA);
    free(list);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(c->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e) {
        cd_err_set(err, CD_ERROR, "cannot subscribe to '%s': %s", cfg->kafka_topic,
                   rd_kafka_err2str(e));
        goto fail;
    }
    return c;

fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    cd_kafka_consumer_free(c);
    return NULL;
}

int cd_kafka_consumer_fd(const cd_kafka_consumer_t *c) { return c->wake[0]; }

/*
 * A copy of the last header of that name into *out, if it is printable
 * ASCII of sane length (both W3C headers are); anything else cannot be
 * valid trace context and is treated as absent (*out NULL).  False only
 * when the copy cannot be made: the header must not silently go missing.
 */
static bool header_copy(cd_batch_t *batch, rd_kafka_message_t *m, const char *name,
                        const char **out)
{
    rd_kafka_headers_t *hdrs;
    const void *val;
    size_t size;

    *out = NULL;
    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(hdrs, name, &val, &size) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        !val || size > 1024)
        return true;
    for (size_t i = 0; i < size; i++)
        if (((const unsigned char *)val)[i] < 0x20 || ((const unsigned char *)val)[i] > 0x7e)
            return true;
    return (*out = cd_batch_copy(batch, val, size)) != NULL;
}

/*
 * Appends a record of m to the batch, with copies of its bytes, so that
 * librdkafka's buffer goes back at once: a fetch response is freed only
 * when the last message from it is, and messages held in batches would
 * keep many alive.  False when it cannot be held.
 */
static bool add_record(cd_batch_t *batch, const rd_kafka_message_t *m)
{
    cd_record_t *rec = cd_batch_push(batch);
    if (!rec)
        return false;
    rd_kafka_timestamp_type_t tstype;
    const char *topic = rd_kafka_topic_name(m->rkt);
    /* Consecutive records mostly share their topic: one copy for them. */
    const cd_record_t *prev = batch->count > 1 ? rec - 1 : NULL;
    rec->topic = prev && strcmp(prev->topic, topic) == 0
                     ? prev->topic
                     : cd_batch_copy(batch, topic, strlen(topic));
    rec->partition = m->partition;
    rec->offset = m->offset;
    rec->key_len = m->key ? m->key_len : 0;
    rec->key = m->key ? cd_batch_copy(batch, m->key, m->key_len) : NULL;
    rec->len = m->payload ? m->len : 0;
    rec->payload = cd_batch_copy(batch, m->payload, rec->len);
    rec->kafka_ts_ms = rd_kafka_message_timestamp(m, &tstype);
    batch->bytes += rec->len + rec->key_len;
    return rec->topic && (rec->key || !m->key) && rec->payload &&
           header_copy(batch, (rd_kafka_message_t *)m, "traceparent", &rec->header_traceparent) &&
           header_copy(batch, (rd_kafka_message_t *)m, "tracestate", &rec->header_tracestate);
}

static void drain_wake(cd_kafka_consumer_t *c)
{
    char buf[64];
    while (read(c->wake[0], buf, sizeof(buf)) > 0)
        ;
}

cd_status_t cd_kafka_consumer_drain(cd_kafka_consumer_t *c, cd_kafka_route_fn route, void *arg,
                                    size_t max, size_t *taken, cd_err_t *err)
{
    *taken = 0;
    drain_wake(c);
    while (*taken < max) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 0);
        if (!m)
            break;
        if (!m->err) {
            const char *topic = rd_kafka_topic_name(m->rkt);
            int i = find_partition(c, topic, m->partition);
            if (i >= 0)
                c->at_end[i] = false;
            cd_batch_t *batch = route(arg, topic, m->partition);
            int32_t partition = m->partition;
            int64_t offset = m->offset;
            bool held = batch && add_record(batch, m);
            rd_kafka_message_destroy(m);
            if (!held) {
                return cd_err_set(err, CD_ERROR,
                                  "cannot hold the message at %s[%d]@%lld (%s); stopping "
                                  "before any later offset of it is stored",
                                  topic, (int)partition, (long long)offset,
                                  batch ? "out of memory" : "no writer owns its partition");
            }
            (*taken)++;
            continue;
        }

        rd_kafka_resp_err_t e = m->err;
        if (e == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            int i = find_partition(c, rd_kafka_topic_name(m->rkt), m->partition);
            if (i >= 0)
                c->at_end[i] = true;
            rd_kafka_message_destroy(m);
            continue;
        }
        char fatal[512];
        if (e == RD_KAFKA_RESP_ERR__FATAL &&
            rd_kafka_fatal_error(c->rk, fatal, sizeof(fatal)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_message_destroy(m);
            return cd_err_set(err, CD_ERROR, "fatal Kafka consumer error: %s", fatal);
        }
        if (e == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC || e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
            e == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
            cd_err_set(err, CD_ERROR, "Kafka topic %s: %s",
                       m->rkt ? rd_kafka_topic_name(m->rkt) : "(unknown)",
                       rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            return CD_ERROR;
        }
        cd_log_warn("kafka", "consumer: %s", rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
    }
    return CD_OK;
}

void cd_kafka_consumer_store_offsets(cd_kafka_consumer_t *c, const cd_batch_t *batch)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(8);

    for (size_t i = 0; i < batch->count; i++) {
        const cd_record_t *r = &batch->records[i];
        rd_kafka_topic_partition_t *p =
            rd_kafka_topic_partition_list_find(list, r->topic, r->partition);
        if (!p)
            p = rd_kafka_topic_partition_list_add(list, r->topic, r->partition);
        if (r->offset + 1 > p->offset)
            p->offset = r->offset + 1;
    }
    if (list->cnt > 0 && rd_kafka_offsets_store(c->rk, list) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* Partitions revoked meanwhile: their new owner re-reads those messages. */
        for (int i = 0; i < list->cnt; i++)
            if (list->elems[i].err)
                cd_log_debug("kafka", "offset of %s[%d] not stored: %s", list->elems[i].topic,
                             (int)list->elems[i].partition,
                             rd_kafka_err2str(list->elems[i].err));
    }
    rd_kafka_topic_partition_list_destroy(list);
}

void cd_kafka_consumer_pause(cd_kafka_consumer_t *c, const cd_kafka_partition_t *parts, int n,
                             bool pause)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(n > 0 ? n : 1);
    for (int i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(list, parts[i].topic, parts[i].partition);
    rd_kafka_resp_err_t e = pause ? rd_kafka_pause_partitions(c->rk, list)
                                  : rd_kafka_resume_partitions(c->rk, list);
    if (e)
        cd_log_warn("kafka", "%s %d partition(s) failed: %s", pause ? "pausing" : "resuming", n,
                    rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_destroy(list);
}

void cd_kafka_consumer_wake_fetcher(cd_kafka_consumer_t *c)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_copy(c->assigned);
    rd_kafka_topic_partition_list_t *seek = rd_kafka_topic_partition_list_new(list->cnt);

    if (rd_kafka_position(c->rk, list) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* Only partitions consumption has a position in: the others are
         * starting (their committed offset is being fetched) anyway. */
        for (int i = 0; i < list->cnt; i++)
            if (list->elems[i].offset >= 0)
                rd_kafka_topic_partition_list_add(seek, list->elems[i].topic,
                                                  list->elems[i].partition)
                    ->offset = list->elems[i].offset;
        rd_kafka_error_t *e = seek->cnt ? rd_kafka_seek_partitions(c->rk, seek, 0) : NULL;
        if (e) {
            cd_log_debug("kafka", "waking the fetcher: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
    }
    rd_kafka_topic_partition_list_destroy(seek);
    rd_kafka_topic_partition_list_destroy(list);
}

bool cd_kafka_consumer_caught_up(const cd_kafka_consumer_t *c)
{
    if (!c->assignment_given)
        return false;
    for (int i = 0; i < c->assigned->cnt; i++)
        if (!c->at_end[i])
            return false;
    return true;
}

cd_kafka_state_t cd_kafka_consumer_state(const cd_kafka_consumer_t *c, int64_t *for_ms)
{
    int64_t now = cd_mono_us();
    if (!c->assignment_given) {
        /* Nothing to fetch, and a join may wait for a member that left
         * silently: quiet brokers say nothing then. */
        *for_ms = (now - c->rebalance_us) / 1000;
        return CD_KAFKA_JOINING;
    }
    *for_ms = (now - c->heard_us) / 1000;
    return *for_ms < SILENCE_MS ? CD_KAFKA_UP : CD_KAFKA_SILENT;
}

cd_status_t cd_kafka_consumer_close(cd_kafka_consumer_t *c, int64_t deadline, cd_err_t *err)
{
    /* The offsets stored, then leaving the group (which commits what was
     * stored since), all within the deadline: a silent broker must not hold
     * the process. */
    c->deadline_us = deadline;
    commit_bounded(c, "final offset commit", (int)((deadline - cd_mono_us()) / 1000));
    rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
    rd_kafka_error_t *e = rd_kafka_consumer_close_queue(c->rk, q);
    cd_status_t st = CD_OK;
    if (e) {
        st = cd_err_set(err, CD_ERROR, "leaving the consumer group failed: %s",
                        rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    while (st == CD_OK && !rd_kafka_consumer_closed(c->rk)) {
        int64_t left_ms = (deadline - cd_mono_us()) / 1000;
        if (left_ms <= 0) {
            c->close_timed_out = true;
            st = cd_err_set(err, CD_ERROR, "leaving the consumer group: no answer before the "
                            "shutdown deadline (shutdown.timeout.ms = %d); the group notices at "
                            "its session timeout", c->bound_ms);
            break;
        }
        /* The revocation the close makes is served here; messages still
         * queued come too, and go. */
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, left_ms < 100 ? (int)left_ms : 100);
        if (ev && rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
            rebalance_cb(c->rk, rd_kafka_event_error(ev), rd_kafka_event_topic_partition_list(ev),
                         c);
        if (ev)
            rd_kafka_event_destroy(ev);
    }
    rd_kafka_queue_destroy(q);
    return st;
}

/* Destroys rk on a thread of its own, waiting at most bound_ms: with a
 * broker silent, librdkafka's threads wait for their requests to time out
 * (socket.timeout.ms).  True when it finished; if not, the thread goes on
 * until the process exits, and the consumer must not be freed under it. */
typedef struct destroyer {
    rd_kafka_t *rk;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
} destroyer_t;

static void *destroy_main(void *arg)
{
    destroyer_t *d = arg;
    rd_kafka_destroy_flags(d->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    pthread_mutex_lock(&d->lock);
    d->done = true;
    pthread_cond_signal(&d->cond);
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

static bool destroy_bounded(rd_kafka_t *rk, int64_t deadline_us)
{
    static destroyer_t d = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    pthread_t thread;
    struct timespec until;

    d.rk = rk;
    d.done = false;
    if (pthread_create(&thread, NULL, destroy_main, &d) != 0) {
        rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        return true;
    }
    /* The condition variable counts on the realtime clock; what carries
     * over is the time left. */
    int64_t left = deadline_us - cd_mono_us();
    left = left < 100000 ? 100000 : left; /* time to finish when nothing hangs */
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += left / 1000000;
    until.tv_nsec += (long)(left % 1000000) * 1000;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&d.lock);
    while (!d.done && pthread_cond_timedwait(&d.cond, &d.lock, &until) == 0)
        ;
    bool done = d.done;
    pthread_mutex_unlock(&d.lock);
    if (done)
        pthread_join(thread, NULL);
    else
        pthread_detach(thread);
    return done;
}

void cd_kafka_consumer_free(cd_kafka_consumer_t *c)
{
    if (!c)
        return;
    if (c->queue) {
        rd_kafka_queue_io_event_enable(c->queue, -1, NULL, 0);
        rd_kafka_queue_destroy(c->queue);
    }
    /* A close that timed out is not waited for again, nor the destruction
     * for longer than the deadline: the process is leaving. */
    if (c->rk && !c->close_timed_out)
        rd_kafka_destroy(c->rk);
    else if (c->rk && !destroy_bounded(c->rk, c->deadline_us)) {
        cd_log_warn("kafka", "librdkafka did not stop before the shutdown deadline, a broker "
                    "being silent; left to the process's exit");
        return; /* its threads may still use what c holds */
    }
    if (c->assigned)
        rd_kafka_topic_partition_list_destroy(c->assigned);
    for (int i = 0; i < 2; i++)
        if (c->wake[i] >= 0)
            close(c->wake[i]);
    free(c->at_end);
    free(c);
}
