/* batch.c -- the ingest loop's unit of work; see batch.h. */
#include "convdiag/batch.h"

#include <stdlib.h>
#include <string.h>

cd_status_t cd_batch_init(cd_batch_t *batch, size_t cap)
{
    batch->count = 0;
    batch->cap = cap ? cap : 16;
    cd_json_arena_init(&batch->arena);
    batch->records = calloc(batch->cap, sizeof(*batch->records));
    return batch->records ? CD_OK : CD_ERROR;
}

static void release_event(cd_record_t *rec)
{
    if (!rec->valid)
        return;
    if (rec->in_arena)
        rec->event.root = NULL; /* freed with the arena */
    cd_event_fini(&rec->event);
}

static void record_release(cd_record_t *rec)
{
    release_event(rec);
    free(rec->reason);
    free(rec->header_traceparent);
    free(rec->header_tracestate);
}

void cd_batch_clear(cd_batch_t *batch)
{
    for (size_t i = 0; i < batch->count; i++)
        record_release(&batch->records[i]);
    batch->count = 0;
    cd_json_arena_reset(&batch->arena);
}

void cd_batch_fini(cd_batch_t *batch)
{
    cd_batch_clear(batch);
    cd_json_arena_fini(&batch->arena);
    free(batch->records);
    batch->records = NULL;
    batch->cap = 0;
}

cd_record_t *cd_batch_push(cd_batch_t *batch)
{
    if (batch->count == batch->cap) {
        size_t cap = batch->cap * 2;
        cd_record_t *r = realloc(batch->records, cap * sizeof(*r));
        if (!r)
            return NULL;
        batch->records = r;
        batch->cap = cap;
    }
    cd_record_t *rec = &batch->records[batch->count++];
    memset(rec, 0, sizeof(*rec));
    rec->kafka_ts_ms = -1;
    return rec;
}

const char *cd_opid_source_name(cd_opid_source_t source)
{
    static const char *const names[] = {
        [CD_OPID_NONE] = "none",
        [CD_OPID_TRACEPARENT_HEADER] = "traceparent-header",
        [CD_OPID_TRACEPARENT_BODY] = "traceparent-body",
        [CD_OPID_INHERITED] = "inherited",
        [CD_OPID_TRANSACTION_ID] = "transactionId",
        [CD_OPID_LIVE_WORK_ITEM] = "liveWorkItemId",
    };
    return names[source];
}

void cd_record_reject(cd_record_t *rec, const char *reason)
{
    release_event(rec);
    rec->valid = false;
    free(rec->reason);
    rec->reason = strdup(reason);
}

void cd_batch_parse(cd_batch_t *batch, const cd_event_limits_t *limits)
{
    bool in_arena = cd_json_arena_enter(&batch->arena);

    for (size_t i = 0; i < batch->count; i++) {
        cd_record_t *rec = &batch->records[i];
        cd_err_t err;
        if (rec->valid || rec->reason)
            continue;
        rec->in_arena = in_arena;
        if (cd_event_parse(&rec->event, rec->payload, rec->len, limits, &err) == CD_OK)
            rec->valid = true;
        else
            cd_record_reject(rec, err.msg);
    }
    if (in_arena)
        cd_json_arena_leave();
}
