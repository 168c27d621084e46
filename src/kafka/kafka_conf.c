/* kafka_conf.c -- librdkafka configuration shared by the consumer and the producer. */
#include "kafka_conf.h"

#include <string.h>

#include "convdiag/log.h"

/* librdkafka's syslog levels mapped onto ours; its debug chatter stays at debug. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    cd_log_level_t l = level <= 3 ? CD_LOG_ERROR : level == 4 ? CD_LOG_WARN
                                               : level <= 6   ? CD_LOG_INFO
                                                              : CD_LOG_DEBUG;
    cd_log(l, "kafka", "%s: %s", fac, buf);
}

static cd_status_t set(rd_kafka_conf_t *conf, const char *name, const char *value,
                       cd_err_t *err)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        /* Values of secret-looking properties are never echoed. */
        bool secret = strstr(name, "password") || strstr(name, "secret") || strstr(name, "key");
        return cd_err_set(err, CD_ERROR, "kafka.%s = '%s': %s", name,
                          secret ? "****" : value, errstr);
    }
    return CD_OK;
}

rd_kafka_conf_t *cd_kafka_conf_new(const cd_config_t *cfg, const char *const *defaults,
                                   cd_err_t *err)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    rd_kafka_conf_set_log_cb(conf, log_cb);
    if (set(conf, "bootstrap.servers", cfg->kafka_brokers, err) != CD_OK)
        goto fail;
    /*
     * librdkafka's backoff between reconnects grows to 10 s (+50% jitter), so
     * a restarted broker was often not tried again for seconds after it
     * listened; a consumer that reaches its coordinator only after
     * session.timeout.ms rejoins as a new member and waits a second session
     * timeout for the broker to expire its old self.  1 s is one connection
     * attempt a second per broker while it is down.
     */
    if (set(conf, "reconnect.backoff.max.ms", "1000", err) != CD_OK)
        goto fail;
    for (const char *const *d = defaults; d && d[0]; d += 2)
        if (set(conf, d[0], d[1], err) != CD_OK)
            goto fail;
    for (size_t i = 0; i < cfg->kafka_props_count; i++)
        if (set(conf, cfg->kafka_props[i].key, cfg->kafka_props[i].value, err) != CD_OK)
            goto fail;
    return conf;

fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}
