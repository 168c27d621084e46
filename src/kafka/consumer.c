/*
 * consumer.c -- the consumer group member; see kafka.h.
 *
 * Offsets: enable.auto.offset.store=false, so librdkafka's periodic commit
 * only ever commits what cd_kafka_consumer_store_offsets() stored, i.e.
 * what PostgreSQL already holds.  A crash between the database commit and the
 * offset commit replays those messages; eventId deduplication absorbs them.
 */
#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>

#include "convdiag/kafka.h"
#include "convdiag/log.h"
#include "kafka_conf.h"

struct cd_kafka_consumer {
    rd_kafka_t *rk;
    /* Our view of the assignment, with "read to the end" per partition, for caught_up. */
    rd_kafka_topic_partition_list_t *assigned;
    bool *at_end;
    bool paused;
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
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    cd_kafka_consumer_t *c = opaque;
    bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;

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
        if (c->paused)
            rd_kafka_pause_partitions(rk, parts);
        return;
    }

    /* Revocation: commit the offsets stored so far (only ever those of committed
     * batches), so the next owner starts right after them. */
    cd_log_info("kafka", "revoked %d partition(s)", parts->cnt);
    rd_kafka_resp_err_t cerr = rd_kafka_commit(rk, NULL, 0);
    if (cerr && cerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
        cd_log_warn("kafka", "commit on revoke failed: %s", rd_kafka_err2str(cerr));
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

cd_kafka_consumer_t *cd_kafka_consumer_new(const cd_config_t *cfg, cd_err_t *err)
{
    static const char *const defaults[] = {
        "enable.auto.commit", "true",
        "auto.commit.interval.ms", "1000",
        "enable.auto.offset.store", "false",
        "enable.partition.eof", "true",
        "auto.offset.reset", "earliest",
        /* Bounds what is prefetched, hence memory while PostgreSQL is down. */
        "queued.max.messages.kbytes", "16384",
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
    c->assigned = rd_kafka_topic_partition_list_new(8);
    reset_at_end(c);

    if (!(conf = cd_kafka_conf_new(cfg, defaults, err)))
        goto fail;
    if (rd_kafka_conf_set(conf, "group.id", cfg->kafka_group, errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
        cd_err_set(err, CD_ERROR, "kafka.group.id = '%s': %s", cfg->kafka_group, errstr);
        goto fail;
    }
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_opaque(conf, c);
    if (!(c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr)))) {
        cd_err_set(err, CD_ERROR, "cannot create the Kafka consumer: %s", errstr);
        goto fail;
    }
    conf = NULL; /* owned by rk now */
    rd_kafka_poll_set_consumer(c->rk);

    topics = rd_kafka_topic_partition_list_new(1);
    char *list = strdup(cfg->kafka_topic), *save = NULL;
    for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
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

/*
 * A copy of the last header of that name, if it is printable ASCII of sane
 * length (both W3C headers are); anything else cannot be valid trace context
 * and is treated as absent.
 */
static char *header_copy(rd_kafka_message_t *m, const char *name)
{
    rd_kafka_headers_t *hdrs;
    const void *val;
    size_t size;

    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(hdrs, name, &val, &size) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        !val || size > 1024)
        return NULL;
    for (size_t i = 0; i < size; i++)
        if (((const unsigned char *)val)[i] < 0x20 || ((const unsigned char *)val)[i] > 0x7e)
            return NULL;
    return strndup(val, size);
}

static void add_record(cd_batch_t *batch, rd_kafka_message_t *m, cd_err_t *oom)
{
    cd_record_t *rec = cd_batch_push(batch);
    if (!rec) {
        /* The message is not stored, so its offset is never stored either: it is re-read. */
        cd_err_set(oom, CD_ERROR, "out of memory growing the batch");
        rd_kafka_message_destroy(m);
        return;
    }
    rd_kafka_timestamp_type_t tstype;
    rec->topic = rd_kafka_topic_name(m->rkt);
    rec->partition = m->partition;
    rec->offset = m->offset;
    rec->key = m->key;
    rec->key_len = m->key_len;
    rec->payload = m->payload ? m->payload : "";
    rec->len = m->len;
    rec->kafka_ts_ms = rd_kafka_message_timestamp(m, &tstype);
    rec->msg = m;
    rec->header_traceparent = header_copy(m, "traceparent");
    rec->header_tracestate = header_copy(m, "tracestate");
}

cd_status_t cd_kafka_consumer_poll(cd_kafka_consumer_t *c, cd_batch_t *batch, size_t max,
                                   int wait_ms, cd_err_t *err)
{
    int64_t deadline = cd_mono_us() + (int64_t)wait_ms * 1000;
    cd_err_t oom = {{0}};

    while (batch->count < max) {
        int64_t left_ms = (deadline - cd_mono_us()) / 1000;
        if (left_ms <= 0)
            break;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, (int)left_ms);
        if (!m)
            continue;
        if (!m->err) {
            int i = m->rkt ? find_partition(c, rd_kafka_topic_name(m->rkt), m->partition) : -1;
            if (i >= 0)
                c->at_end[i] = false;
            add_record(batch, m, &oom);
            if (oom.msg[0])
                return cd_err_set(err, CD_RETRY, "%s", oom.msg);
            continue;
        }

        rd_kafka_resp_err_t e = m->err;
        if (e == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            int i = find_partition(c, rd_kafka_topic_name(m->rkt), m->partition);
            if (i >= 0)
                c->at_end[i] = true;
            rd_kafka_message_destroy(m);
            /* Nothing more is coming soon: hand over what we have. */
            if (cd_kafka_consumer_caught_up(c))
                break;
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

void cd_kafka_consumer_release(cd_kafka_consumer_t *c, cd_batch_t *batch)
{
    (void)c;
    for (size_t i = 0; i < batch->count; i++) {
        if (batch->records[i].msg) {
            rd_kafka_message_destroy(batch->records[i].msg);
            batch->records[i].msg = NULL;
        }
    }
}

static void set_paused(cd_kafka_consumer_t *c, bool paused)
{
    rd_kafka_topic_partition_list_t *list = NULL;
    c->paused = paused;
    if (rd_kafka_assignment(c->rk, &list) != RD_KAFKA_RESP_ERR_NO_ERROR || !list)
        return;
    if (paused)
        rd_kafka_pause_partitions(c->rk, list);
    else
        rd_kafka_resume_partitions(c->rk, list);
    rd_kafka_topic_partition_list_destroy(list);
}

void cd_kafka_consumer_pause(cd_kafka_consumer_t *c) { set_paused(c, true); }
void cd_kafka_consumer_resume(cd_kafka_consumer_t *c) { set_paused(c, false); }

bool cd_kafka_consumer_caught_up(const cd_kafka_consumer_t *c)
{
    if (c->assigned->cnt == 0)
        return false;
    for (int i = 0; i < c->assigned->cnt; i++)
        if (!c->at_end[i])
            return false;
    return true;
}

cd_status_t cd_kafka_consumer_close(cd_kafka_consumer_t *c, cd_err_t *err)
{
    cd_status_t st = CD_OK;
    rd_kafka_resp_err_t e = rd_kafka_commit(c->rk, NULL, 0);
    if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
        st = cd_err_set(err, CD_ERROR, "final offset commit failed: %s", rd_kafka_err2str(e));
    e = rd_kafka_consumer_close(c->rk);
    if (e && st == CD_OK)
        st = cd_err_set(err, CD_ERROR, "leaving the consumer group failed: %s",
                        rd_kafka_err2str(e));
    return st;
}

void cd_kafka_consumer_free(cd_kafka_consumer_t *c)
{
    if (!c)
        return;
    if (c->rk)
        rd_kafka_destroy(c->rk);
    if (c->assigned)
        rd_kafka_topic_partition_list_destroy(c->assigned);
    free(c->at_end);
    free(c);
}
