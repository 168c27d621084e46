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
#include <stdint.h>

#include "convdiag/batch.h"
#include "convdiag/common.h"
#include "convdiag/config.h"

typedef struct cd_kafka_consumer cd_kafka_consumer_t;

/* A partition of a topic: the unit the group assigns, and of ownership. */
typedef struct cd_kafka_partition {
    const char *topic; /* valid during the call it is given in */
    int32_t partition;
} cd_kafka_partition_t;

/*
 * Told from inside cd_kafka_consumer_drain (the polling thread) when the
 * group assigns partitions to this member, and before it takes some away:
 * revoking returns once nothing of those partitions is in flight, or may
 * still be but will not store offsets, as it is the last moment to have
 * offsets committed for the next owner.
 */
typedef struct cd_kafka_rebalance_hooks {
    void (*assigned)(void *arg, const cd_kafka_partition_t *parts, int n);
    void (*revoking)(void *arg, const cd_kafka_partition_t *parts, int n);
    void *arg;
} cd_kafka_rebalance_hooks_t;

/* Creates the consumer and subscribes to cfg->kafka_topic (comma-separated
 * list allowed); hooks (copied, may be NULL) hear of rebalances.  librdkafka's
 * prefetch is sized from batch.max.bytes. */
cd_kafka_consumer_t *cd_kafka_consumer_new(const cd_config_t *cfg,
                                           const cd_kafka_rebalance_hooks_t *hooks,
                                           cd_err_t *err);

/* Readable when messages or rebalances wait: poll(2) on it, then drain. */
int cd_kafka_consumer_fd(const cd_kafka_consumer_t *c);

/* The batch a message of that partition joins; NULL when none can take it,
 * which is the end of the run (see drain). */
typedef cd_batch_t *(*cd_kafka_route_fn)(void *arg, const char *topic, int32_t partition);

/*
 * Takes, without waiting, up to max messages that have arrived, appending
 * each, its bytes copied, to the batch route gives; serves rebalances.
 * *taken gets how many.  CD_ERROR, err saying why, on a fatal
 * consumer error, or when a message cannot be held (memory, or no batch
 * for it): the run must end before any later offset of that partition is
 * stored, for that message would be skipped.
 */
cd_status_t cd_kafka_consumer_drain(cd_kafka_consumer_t *c, cd_kafka_route_fn route, void *arg,
                                    size_t max, size_t *taken, cd_err_t *err);

/* Stores offset+1 of each partition's last record, for the next (auto)
 * commit; from any thread.  A partition no longer assigned is skipped. */
void cd_kafka_consumer_store_offsets(cd_kafka_consumer_t *c, const cd_batch_t *batch);

/* Stops or restarts fetching some partitions (their writer has work enough).
 * Messages of a partition fetched but not yet taken are dropped by
 * librdkafka and fetched again on resume. */
void cd_kafka_consumer_pause(cd_kafka_consumer_t *c, const cd_kafka_partition_t *parts, int n,
                             bool pause);

/*
 * Wakes the fetcher after the consumer queue was full.  librdkafka (2.0)
 * stops fetching once its queue holds queued.max.messages.kbytes, and only
 * looks again on a once-a-second tick: after taking a full queue, this
 * seeks every partition to where consumption stands, which changes nothing
 * (call it with nothing taken but not consumed) and wakes the fetcher now.
 */
void cd_kafka_consumer_wake_fetcher(cd_kafka_consumer_t *c);

/* True once the group has given this member its assignment and every
 * assigned partition has been read to its end: vacuously, with nothing
 * assigned (more members than partitions). */
bool cd_kafka_consumer_caught_up(const cd_kafka_consumer_t *c);

typedef enum cd_kafka_state {
    CD_KAFKA_UP,      /* assigned its part, and some broker sent something lately */
    CD_KAFKA_JOINING, /* waiting for the group to give it its part (a rebalance) */
    CD_KAFKA_SILENT,  /* assigned, but no broker has sent anything for ten seconds */
} cd_kafka_state_t;

/* The member's state, from its rebalances and librdkafka's statistics
 * (each second); *for_ms gets how long it has been joining or silent. */
cd_kafka_state_t cd_kafka_consumer_state(const cd_kafka_consumer_t *c, int64_t *for_ms);

/* Commits the stored offsets and leaves the group, giving up at deadline
 * (on cd_mono_us()); when it did, cd_kafka_consumer_free() waits no longer
 * than that deadline either. */
cd_status_t cd_kafka_consumer_close(cd_kafka_consumer_t *c, int64_t deadline, cd_err_t *err);
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
