/*
 * batch.h -- the unit of work of the ingest loop: the messages of one poll
 * round, each parsed into an event or marked with the reason it is not one.
 * One batch is written to PostgreSQL in one transaction.
 */
#ifndef CONVDIAG_BATCH_H
#define CONVDIAG_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "convdiag/event.h"

typedef struct cd_record {
    /* Kafka coordinates and bytes; borrowed from the message behind `msg`. */
    const char *topic;
    int32_t partition;
    int64_t offset;
    const char *key;
    size_t key_len;
    const char *payload;
    size_t len;
    int64_t kafka_ts_ms; /* -1 when the broker gave none */
    void *msg;           /* the consumer's message handle, released by cd_batch_clear's caller */

    bool valid;
    cd_event_t event; /* when valid */
    char *reason;     /* owned: why the message is not a valid event, when !valid */
} cd_record_t;

typedef struct cd_batch {
    cd_record_t *records;
    size_t count;
    size_t cap;
} cd_batch_t;

cd_status_t cd_batch_init(cd_batch_t *batch, size_t cap);
/* Releases the events and reasons of all records and empties the batch;
 * message handles must have been released by their owner before. */
void cd_batch_clear(cd_batch_t *batch);
void cd_batch_fini(cd_batch_t *batch);

/* Appends an empty record, growing the array if needed; NULL when out of memory. */
cd_record_t *cd_batch_push(cd_batch_t *batch);

/* Parses every record's payload: sets valid/event or reason. */
void cd_batch_parse(cd_batch_t *batch, const cd_event_limits_t *limits);

/* Marks a record invalid with a reason (a copy is kept); for failures found after parsing. */
void cd_record_reject(cd_record_t *rec, const char *reason);

#endif
