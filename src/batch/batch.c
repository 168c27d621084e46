/* batch.c -- the ingest's unit of work; see batch.h. */
#include "convdiag/batch.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/* Copies go into blocks of this size (a bigger message gets one of its own,
 * freed when the batch is cleared); the blocks of this size are kept. */
#define BLOCK_SIZE (256 * 1024)

struct cd_batch_block {
    cd_batch_block_t *next;
    size_t size, used;
    char data[];
};

cd_status_t cd_batch_init(cd_batch_t *batch, size_t cap)
{
    batch->count = 0;
    batch->bytes = 0;
    batch->blocks = batch->block = NULL;
    batch->cap = cap ? cap : 16;
    cd_json_arena_init(&batch->arena);
    batch->records = calloc(batch->cap, sizeof(*batch->records));
    return batch->records ? CD_OK : CD_ERROR;
}

static void release_event(cd_record_t *rec)
{
    if (rec->valid)
        cd_event_fini(&rec->event); /* its strings are in the batch's blocks */
}

static void record_release(cd_record_t *rec)
{
    release_event(rec);
    free(rec->reason);
}

/* Empties the blocks, keeping those of the usual size for the next batch. */
static void reset_blocks(cd_batch_t *batch, bool keep)
{
    cd_batch_block_t **p = &batch->blocks;
    while (*p) {
        cd_batch_block_t *b = *p;
        if (keep && b->size == BLOCK_SIZE) {
            b->used = 0;
            p = &b->next;
        } else {
            *p = b->next;
            free(b);
        }
    }
    batch->block = batch->blocks;
}

void cd_batch_clear(cd_batch_t *batch)
{
    for (size_t i = 0; i < batch->count; i++)
        record_release(&batch->records[i]);
    batch->count = 0;
    batch->bytes = 0;
    cd_json_arena_reset(&batch->arena);
    reset_blocks(batch, true);
}

const char *cd_batch_copy(cd_batch_t *batch, const void *data, size_t len)
{
    cd_batch_block_t *b = batch->block;

    /* The next block with room, kept from an earlier batch, or a new one. */
    while (b && b->size - b->used < len + 1)
        b = b->next;
    if (!b) {
        size_t size = len + 1 > BLOCK_SIZE ? len + 1 : BLOCK_SIZE;
        if (!(b = malloc(sizeof(*b) + size)))
            return NULL;
        b->size = size;
        b->used = 0;
        /* At the end of the chain, so that the kept blocks come first. */
        cd_batch_block_t **p = &batch->blocks;
        while (*p)
            p = &(*p)->next;
        b->next = NULL;
        *p = b;
    }
    if (b->size == BLOCK_SIZE)
        batch->block = b; /* a big one of its own is not filled further */
    char *out = b->data + b->used;
    if (len)
        memcpy(out, data, len);
    out[len] = '\0';
    b->used += len + 1;
    return out;
}

void cd_batch_fini(cd_batch_t *batch)
{
    cd_batch_clear(batch);
    reset_blocks(batch, false);
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

static const char *copy_into(void *arg, const char *s, size_t len)
{
    return cd_batch_copy(arg, s, len);
}

/*
 * Each event's strings are copied into the batch and its tree dropped at
 * once: a tree takes some kilobytes an event, ten times its strings, and a
 * batch holds thousands.  The tree is built in the batch's arena, emptied
 * after each event.
 */
void cd_batch_parse(cd_batch_t *batch, const cd_event_limits_t *limits)
{
    for (size_t i = 0; i < batch->count; i++) {
        cd_record_t *rec = &batch->records[i];
        cd_err_t err;
        if (rec->valid || rec->reason)
            continue;
        bool in_arena = cd_json_arena_enter(&batch->arena);
        if (cd_event_parse(&rec->event, rec->payload, rec->len, limits, &err) == CD_OK) {
            struct cJSON *tree = NULL;
            rec->valid = cd_event_detach(&rec->event, copy_into, batch, &tree);
            if (!in_arena)
                cJSON_Delete(tree);
            if (!rec->valid) {
                rec->event.root = NULL; /* the tree goes with the arena or went above */
                cd_event_fini(&rec->event);
                rec->reason = strdup("out of memory holding the event");
            }
        } else {
            cd_record_reject(rec, err.msg);
        }
        if (in_arena) {
            cd_json_arena_leave();
            cd_json_arena_reset(&batch->arena);
        }
    }
}

cd_batch_t cd_batch_view(const cd_batch_t *parent, size_t from, size_t n)
{
    cd_batch_t view = {.records = parent->records + from, .count = n};
    return view;
}

size_t cd_batch_filter(cd_batch_t *batch, bool (*keep)(cd_record_t *rec, void *arg), void *arg)
{
    size_t kept = 0, n = batch->count;
    for (size_t i = 0; i < n; i++) {
        cd_record_t *rec = &batch->records[i];
        if (keep(rec, arg)) {
            if (kept != i)
                batch->records[kept] = *rec;
            kept++;
            continue;
        }
        batch->bytes -= rec->len + rec->key_len;
        record_release(rec);
    }
    batch->count = kept;
    return n - kept;
}
