/*
 * batch.h -- the unit of work of the ingest: messages of one writer's
 * partitions, in Kafka order, each parsed into an event or marked with the
 * reason it is not one, then tagged.  What every layer passes: the consumer
 * fills it, the event parser and the tagger annotate it, the store writes
 * it, in one transaction.
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
    /* Up to 128 characters of UTF-8: hex below, or the inherited or
     * transactionId string the tagger took it from, which outlive the
     * batch's write; NULL until tagged. */
    const char *operation_id;
    char hex[33]; /* a trace-id, or the one derived from the liveWorkItemId */
    cd_opid_source_t source;
    const char *traceparent; /* the valid traceparent used (header or body), or NULL */
    const char *tracestate;  /* its valid tracestate, or NULL */
} cd_tags_t;

typedef struct cd_record {
    /* Kafka coordinates and bytes, copied into the batch (cd_batch_copy). */
    const char *topic;
    int32_t partition;
    int64_t offset;
    const char *key; /* NULL for none */
    size_t key_len;
    const char *payload;
    size_t len;
    int64_t kafka_ts_ms; /* -1 when the broker gave none */
    const char *header_traceparent; /* the Kafka headers of those names, or NULL */
    const char *header_tracestate;

    bool valid;
    cd_event_t event; /* when valid */
    char *reason;     /* owned: why the message is not a valid event, when !valid */
    bool duplicate;   /* valid, but its eventId is already stored (or earlier in the batch) */
    cd_tags_t tags;   /* set by the tagger for valid, non-duplicate records */
} cd_record_t;

typedef struct cd_batch_block cd_batch_block_t;

typedef struct cd_batch {
    cd_record_t *records;
    size_t count;
    size_t cap;            /* 0 for a view (cd_batch_view) */
    size_t bytes;          /* of the messages' keys and values */
    cd_json_arena_t arena; /* where an event's JSON tree is built while it is parsed */
    /* The messages' bytes, copied: the consumer's buffers go back to it at once. */
    cd_batch_block_t *blocks, *block;
} cd_batch_t;

cd_status_t cd_batch_init(cd_batch_t *batch, size_t cap);
/* Releases the records' events, reasons and copies, and empties the batch. */
void cd_batch_clear(cd_batch_t *batch);
void cd_batch_fini(cd_batch_t *batch);

/* Appends an empty record, growing the array if needed; NULL when out of memory. */
cd_record_t *cd_batch_push(cd_batch_t *batch);

/* A copy of len bytes, NUL-terminated, that lives until the batch is
 * cleared; NULL when out of memory. */
const char *cd_batch_copy(cd_batch_t *batch, const void *data, size_t len);

/* Parses every record's payload: sets valid/event (its strings copied into
 * the batch, cd_batch_copy, its JSON tree gone) or reason. */
void cd_batch_parse(cd_batch_t *batch, const cd_event_limits_t *limits);

/* Marks a record invalid with a reason (a copy is kept); for failures found after parsing. */
void cd_record_reject(cd_record_t *rec, const char *reason);

/* Records [from, from + n) of parent as a batch of their own, for writing
 * part of a batch: shares them, owns nothing; never cleared or freed. */
cd_batch_t cd_batch_view(const cd_batch_t *parent, size_t from, size_t n);

/* Removes the records keep() says no to, keeping the order of the others
 * (their copies stay until the batch is cleared); returns how many went. */
size_t cd_batch_filter(cd_batch_t *batch, bool (*keep)(cd_record_t *rec, void *arg), void *arg);

#endif
