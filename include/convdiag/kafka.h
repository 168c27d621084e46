/*
 * kafka.h -- Kafka in (consumer group member) and out (producer, for simulate).
 *
 * The consumer never commits an offset on its own initiative: librdkafka's
 * auto-commit only commits offsets the caller stored, and the caller stores
 * them (cd_kafka_consumer_store_offsets) only after the PostgreSQL
 * transaction that holds the batch has committed.
 */
#ifndef CONVDIAG_KAFKA_H
#define CONVDIAG_KAFKA_H

#include <stdbool.h>
#include <stddef.h>

#include "convdiag/batch.h"
#include "convdiag/common.h"
#include "convdiag/config.h"

typedef struct cd_kafka_consumer cd_kafka_consumer_t;

/* Creates the consumer and subscribes to cfg->kafka_topic (comma-separated list allowed). */
cd_kafka_consumer_t *cd_kafka_consumer_new(const cd_config_t *cfg, cd_err_t *err);

/*
 * Appends messages to the batch until it holds max records or wait_ms passed
 * since the call.  Serves rebalances.  Returns CD_ERROR on a fatal consumer
 * error (err says which).  Message handles in the batch stay owned by the
 * consumer until cd_kafka_consumer_release().
 */
cd_status_t cd_kafka_consumer_poll(cd_kafka_consumer_t *c, cd_batch_t *batch, size_t max,
                                   int wait_ms, cd_err_t *err);

/* Stores offset+1 of each partition's last record, for the next (auto) commit. */
void cd_kafka_consumer_store_offsets(cd_kafka_consumer_t *c, const cd_batch_t *batch);

/* Destroys the messages behind the batch's records; call before cd_batch_clear(). */
void cd_kafka_consumer_release(cd_kafka_consumer_t *c, cd_batch_t *batch);

/* Stops or restarts fetching for the whole assignment (PostgreSQL unavailable). */
void cd_kafka_consumer_pause(cd_kafka_consumer_t *c);
void cd_kafka_consumer_resume(cd_kafka_consumer_t *c);

/* True once the member has an assignment and has read every assigned partition
 * to its end. */
bool cd_kafka_consumer_caught_up(const cd_kafka_consumer_t *c);

/* Commits stored offsets synchronously and leaves the group. */
cd_status_t cd_kafka_consumer_close(cd_kafka_consumer_t *c, cd_err_t *err);
void cd_kafka_consumer_free(cd_kafka_consumer_t *c);

typedef struct cd_kafka_producer cd_kafka_producer_t;

/* An idempotent producer (acks=all) to cfg->kafka_topic. */
cd_kafka_producer_t *cd_kafka_producer_new(const cd_config_t *cfg, cd_err_t *err);

/* Queues one message (copied) to topic (NULL: the producer's own); waits for
 * queue room when the local queue is full.  key: key_len bytes, or NULL;
 * headers: NULL, or name/value pairs ending with a NULL name. */
cd_status_t cd_kafka_producer_send(cd_kafka_producer_t *p, const char *topic, const void *key,
                                   size_t key_len, const void *value, size_t len,
                                   const char *const *headers, cd_err_t *err);

/* Serves delivery reports without blocking. */
void cd_kafka_producer_poll(cd_kafka_producer_t *p);

/* Delivery counters so far. */
size_t cd_kafka_producer_delivered(const cd_kafka_producer_t *p);
size_t cd_kafka_producer_failed(const cd_kafka_producer_t *p);

/* Waits up to timeout_ms for every queued message to be delivered or fail. */
cd_status_t cd_kafka_producer_flush(cd_kafka_producer_t *p, int timeout_ms, cd_err_t *err);
void cd_kafka_producer_free(cd_kafka_producer_t *p);

#endif
