/* producer.c -- an idempotent producer with delivery accounting; see kafka.h. */
#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>

#include "convdiag/kafka.h"
#include "convdiag/log.h"
#include "kafka_conf.h"

struct cd_kafka_producer {
    rd_kafka_t *rk;
    rd_kafka_topic_t *topic;
    size_t delivered;
    size_t failed;
};

static void delivery_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    cd_kafka_producer_t *p = opaque;
    if (m->err) {
        if (p->failed++ < 10)
            cd_log_error("kafka", "delivery failed: %s", rd_kafka_err2str(m->err));
    } else {
        p->delivered++;
    }
}

cd_kafka_producer_t *cd_kafka_producer_new(const cd_config_t *cfg, cd_err_t *err)
{
    static const char *const defaults[] = {
        "enable.idempotence", "true", /* implies acks=all: no loss, no duplicates on retry */
        "linger.ms", "20",
        "batch.num.messages", "10000",
        "compression.codec", "lz4",
        "queue.buffering.max.kbytes", "65536",
        NULL,
    };
    cd_kafka_producer_t *p = calloc(1, sizeof(*p));
    rd_kafka_conf_t *conf;
    char errstr[512];

    if (!p) {
        cd_err_set(err, CD_ERROR, "out of memory");
        return NULL;
    }
    if (!(conf = cd_kafka_conf_new(cfg, defaults, err)))
        goto fail;
    rd_kafka_conf_set_dr_msg_cb(conf, delivery_cb);
    rd_kafka_conf_set_opaque(conf, p);
    if (!(p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr)))) {
        rd_kafka_conf_destroy(conf);
        cd_err_set(err, CD_ERROR, "cannot create the Kafka producer: %s", errstr);
        goto fail;
    }
    if (!(p->topic = rd_kafka_topic_new(p->rk, cfg->kafka_topic, NULL))) {
        cd_err_set(err, CD_ERROR, "cannot use topic '%s': %s", cfg->kafka_topic,
                   rd_kafka_err2str(rd_kafka_last_error()));
        goto fail;
    }
    return p;

fail:
    cd_kafka_producer_free(p);
    return NULL;
}

cd_status_t cd_kafka_producer_send(cd_kafka_producer_t *p, const char *topic, const void *key,
                                   size_t key_len, const void *value, size_t len,
                                   const char *const *headers, cd_err_t *err)
{
    const char *name = topic ? topic : rd_kafka_topic_name(p->topic);

    for (;;) {
        rd_kafka_headers_t *hdrs = NULL;
        if (headers && headers[0]) {
            hdrs = rd_kafka_headers_new(4);
            for (const char *const *h = headers; h[0]; h += 2)
                rd_kafka_header_add(hdrs, h[0], -1, h[1], -1);
        }
        rd_kafka_resp_err_t e = rd_kafka_producev(
            p->rk, RD_KAFKA_V_TOPIC(name), RD_KAFKA_V_KEY(key, key ? key_len : 0),
            RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
        if (!e)
            return CD_OK; /* the headers belong to the message now */
        if (hdrs)
            rd_kafka_headers_destroy(hdrs);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            return cd_err_set(err, CD_ERROR, "cannot produce to %s: %s", name,
                              rd_kafka_err2str(e));
        /* Back-pressure: let deliveries drain the local queue. */
        rd_kafka_poll(p->rk, 50);
    }
}

void cd_kafka_producer_poll(cd_kafka_producer_t *p) { rd_kafka_poll(p->rk, 0); }

size_t cd_kafka_producer_delivered(const cd_kafka_producer_t *p) { return p->delivered; }
size_t cd_kafka_producer_failed(const cd_kafka_producer_t *p) { return p->failed; }

cd_status_t cd_kafka_producer_flush(cd_kafka_producer_t *p, int timeout_ms, cd_err_t *err)
{
    rd_kafka_resp_err_t e = rd_kafka_flush(p->rk, timeout_ms);
    if (e)
        return cd_err_set(err, CD_ERROR, "%d message(s) still undelivered after %d ms: %s",
                          rd_kafka_outq_len(p->rk), timeout_ms, rd_kafka_err2str(e));
    if (p->failed)
        return cd_err_set(err, CD_ERROR, "%zu message(s) could not be delivered", p->failed);
    return CD_OK;
}

void cd_kafka_producer_free(cd_kafka_producer_t *p)
{
    if (!p)
        return;
    if (p->topic)
        rd_kafka_topic_destroy(p->topic);
    if (p->rk)
        rd_kafka_destroy(p->rk);
    free(p);
}
