/* kafka_conf.h -- librdkafka configuration from cd_config_t (private to kafka/). */
#ifndef CONVDIAG_KAFKA_CONF_H
#define CONVDIAG_KAFKA_CONF_H

#include <librdkafka/rdkafka.h>

#include "convdiag/config.h"

/*
 * A new rd_kafka_conf_t with bootstrap.servers, the given defaults
 * (name/value pairs ending with NULL), then the kafka.* passthrough settings,
 * which win.  Logs go through cd_log.  NULL with err naming the property when
 * librdkafka refuses one.  The caller owns the result until rd_kafka_new().
 */
rd_kafka_conf_t *cd_kafka_conf_new(const cd_config_t *cfg, const char *const *defaults,
                                   cd_err_t *err);

#endif
