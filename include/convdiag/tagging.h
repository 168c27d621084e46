/*
 * tagging.h -- operation IDs, scenario runs and conversations.
 *
 * The tagger is pure: given a batch (in Kafka order) and the state of the
 * conversations it touches (cd_tag_state_t, kept by a writer between
 * batches, what it lacks loaded by the store), it tags each new event and
 * updates that state in memory.  The store writes it back in the same
 * transaction as the events, so a restart, a kill -9 or a partition moving
 * to another instance yields the tables an uninterrupted run yields.
 *
 * Rules (the brief's "Tagging"):
 *  - operation_Id: the trace-id of a valid traceparent (Kafka header, else
 *    body); else the conversation's operation_Id if it already has one
 *    (inherited); else transactionId; else derived from the liveWorkItemId
 *    (a UUID's 32 hex digits, lower case; otherwise the first 32 hex digits
 *    of its SHA-256).  A conversation keeps the first operation_Id it gets.
 *  - A Completed or Failed closes the oldest open Started of the same
 *    scenario in the same conversation; duration = end - start unless the
 *    source gave durationMs.  An end with no open start is kept as an
 *    unpaired run, which a later Started no later than the end pairs with.
 *    An open run is stale once its conversation has seen an event more than
 *    the scenario's stale time after the run started (or, for conversations
 *    that went silent, once the wall clock has: cd_store_sweep_stale); only
 *    closing clears it.
 */
#ifndef CONVDIAG_TAGGING_H
#define CONVDIAG_TAGGING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "convdiag/batch.h"
#include "convdiag/common.h"
#include "convdiag/config.h"

/* "No such time" in the state's time fields. */
#define CD_NO_TIME INT64_MIN

typedef enum cd_run_state {
    CD_RUN_OPEN = 0,   /* Started, not ended yet */
    CD_RUN_COMPLETED,  /* paired with a Completed */
    CD_RUN_FAILED,     /* paired with a Failed */
    CD_RUN_UNPAIRED,   /* an end whose start has not been seen */
} cd_run_state_t;

const char *cd_run_state_name(cd_run_state_t state);
/* Inverse of cd_run_state_name; -1 when unknown. */
int cd_run_state_parse(const char *name);

typedef struct cd_run {
    int64_t run_id; /* 0 until the store gives it one */
    bool stored;    /* a row exists in PostgreSQL */
    bool dirty;     /* changed by the batch in progress */
    char *scenario;
    char *category;
    cd_run_state_t state;
    char *start_event_id; /* NULL for an unpaired end (start_us is then meaningless) */
    int64_t start_us;
    char *end_event_id; /* NULL while open (end_us is then meaningless) */
    int64_t end_us;
    bool end_failed;            /* the end was a Failed */
    int64_t source_duration_ms; /* durationMs of the end event, -1 if none */
    int64_t duration_ms;        /* -1 while open */
    bool stale;
} cd_run_t;

typedef struct cd_conversation cd_conversation_t;

struct cd_conversation {
    char *live_work_item_id;
    bool stored;     /* a row exists in PostgreSQL */
    bool dirty;      /* changed by the batch in progress (then in the state's touched list) */
    int64_t version; /* conversations.version of the stored row; 0 while none */
    uint64_t source; /* cd_tag_source() of the partition its last event came from */
    char *organization_id;
    char *channel_type;
    char *operation_id; /* NULL until the first event is tagged */
    int64_t first_us, last_us;
    char *outcome;      /* the ending scenario, NULL while none */
    int64_t outcome_us; /* time of that ending event */
    int64_t closed_us;  /* ConversationClosed, CD_NO_TIME while none */
    int64_t events, started, completed, failed, unknown_scenarios;

    cd_run_t *runs; /* its open and unpaired runs, plus those the batch in progress ended */
    size_t runs_count, runs_cap;

    /* The state's own links: hash chain, recency list, memory charged. */
    cd_conversation_t *hnext, *newer, *older;
    size_t bytes;
};

/*
 * The conversations a writer knows, found by liveWorkItemId: loaded from
 * PostgreSQL once, then kept between batches, so that a batch does not read
 * back what the batch before it wrote.  PostgreSQL stays the source of
 * truth: whatever a failed transaction changed is dropped (discard) and
 * loaded again, the conversations of a partition no longer owned are
 * dropped (forget_source), and the least recently used go once the state
 * holds more than max_bytes between batches.  A stored row's version tells
 * whether someone else changed it since (store.h).
 */
typedef struct cd_tag_state {
    cd_conversation_t **buckets;
    size_t nbuckets, count;
    cd_conversation_t *newest, *oldest; /* recency: a batch's conversations are the newest */
    cd_conversation_t **touched;        /* changed by the batch in progress, in order */
    size_t touched_count, touched_cap;
    size_t bytes, max_bytes;
    size_t newly_stale; /* open runs flagged stale by the last cd_tagger_apply */
} cd_tag_state_t;

/* max_bytes: how much the state keeps between batches (0: nothing). */
void cd_tag_state_init(cd_tag_state_t *st, size_t max_bytes);
void cd_tag_state_fini(cd_tag_state_t *st);
void cd_tag_state_clear(cd_tag_state_t *st);
cd_conversation_t *cd_tag_state_find(const cd_tag_state_t *st, const char *lwi);
/* Adds an empty conversation (copying lwi), which must not be there yet;
 * NULL when out of memory. */
cd_conversation_t *cd_tag_state_add(cd_tag_state_t *st, const char *lwi);
/* Adds an empty run to a conversation; NULL when out of memory. */
cd_run_t *cd_conversation_add_run(cd_conversation_t *conv);
/* Every conversation, newest first: for (c = first(st); c; c = c->older). */
static inline cd_conversation_t *cd_tag_state_first(const cd_tag_state_t *st)
{
    return st->newest;
}

/* Marks c changed by the batch in progress (dirty, in touched, newest);
 * false when out of memory. */
bool cd_tag_state_touch(cd_tag_state_t *st, cd_conversation_t *c);
/*
 * The batch's transaction committed: what it changed is now stored (each
 * touched row's version one higher), runs it ended leave memory, and the
 * least recently used conversations go while over max_bytes.
 */
void cd_tag_state_commit(cd_tag_state_t *st);
/* The batch's transaction failed: the conversations it changed are dropped,
 * to be loaded again from what PostgreSQL holds. */
void cd_tag_state_discard(cd_tag_state_t *st);
/* Drops the conversations whose last event came from source (a partition
 * revoked); between batches only. */
void cd_tag_state_forget_source(cd_tag_state_t *st, uint64_t source);

/* A partition's identity for cd_conversation_t.source. */
uint64_t cd_tag_source(const char *topic, int32_t partition);

typedef struct cd_tagger_conf {
    int64_t stale_after_ms; /* default 30 minutes */
    const cd_stale_override_t *overrides;
    size_t overrides_count;
} cd_tagger_conf_t;

/* Reads the stale times from cfg (scenario.stale.after.ms and
 * scenario.stale.after.ms.<Scenario>). */
void cd_tagger_conf_from_config(cd_tagger_conf_t *tc, const cd_config_t *cfg);
int64_t cd_tagger_stale_after_ms(const cd_tagger_conf_t *tc, const char *scenario);

/* The operation_Id derived from a liveWorkItemId; out needs 33 bytes. */
void cd_operation_id_from_lwi(const char *lwi, char out[33]);

/* Tags one event without conversation context (what `check` shows for a
 * single event): sets rec->tags from its trace context, transactionId or
 * liveWorkItemId. */
void cd_tag_event(cd_record_t *rec, const char *inherited_operation_id);

/*
 * Tags every valid, non-duplicate record of the batch in order and applies
 * it to its conversation in st (adding conversations not yet there).
 * CD_ERROR only when out of memory.
 */
cd_status_t cd_tagger_apply(const cd_tagger_conf_t *tc, cd_batch_t *batch, cd_tag_state_t *st,
                            cd_err_t *err);

#endif
