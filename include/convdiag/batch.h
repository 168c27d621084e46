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
#include "convdiag/json_arena.h"

/* Where an event's operation_Id came from. */
typedef enum cd_opid_source {
    CD_OPID_NONE = 0,
    CD_OPID_TRACEPARENT_HEADER,
    CD_OPID_TRACEPARENT_BODY,
    CD_OPID_INHERITED,
    CD_OPID_TRANSACTION_ID,
    CD_OPID_LIVE_WORK_ITEM,
} cd_opid_source_t;

const char *cd_opid_source_name(cd_opid_source_t source);

typedef struct cd_tags {
    char operation_id[4 * 128 + 1]; /* up to 128 characters of UTF-8 */
    cd_opid_source_t source;
    const char *traceparent; /* the valid traceparent used (header or body), or NULL */
    const char *tracestate;  /* its valid tracestate, or NULL */
} cd_tags_t;

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
    char *header_traceparent; /* owned copies of the Kafka headers of those names, or NULL */
    char *header_tracestate;

    bool valid;
    cd_event_t event; /* when valid */
    char *reason;     /* owned: why the message is not a valid event, when !valid */
    bool duplicate;   /* valid, but its eventId is already stored (or earlier in the batch) */
    cd_tags_t tags;   /* set by the tagger for valid, non-duplicate records */
    bool in_arena;    /* the event's JSON tree lives in the batch's arena */
} cd_record_t;

typedef struct cd_batch {
    cd_record_t *records;
    size_t count;
    size_t cap;
    cd_json_arena_t arena; /* the events' JSON trees, freed together by cd_batch_clear */
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
