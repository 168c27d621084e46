/*
 * store.h -- the accepted traces, kept in memory up to a maximum, indexed by
 * conversation (the LiveWorkItemID custom dimension), and the hashes of the
 * accepted envelope texts, to count the items an exporter sent twice.
 * Duplicates are kept like any item: the real Traces table would show them.
 */
#ifndef EMU_STORE_H
#define EMU_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "convdiag/buf.h"
#include "convdiag/common.h"
#include "convdiag/strmap.h"

/* Item indexes are 32 bits; this keeps them so. */
#define EMU_MAX_ITEMS_LIMIT 100000000

/* The text columns of a trace, as the Traces table names them. */
enum {
    EMU_F_MESSAGE,
    EMU_F_DIMENSIONS, /* customDimensions: the properties, as a JSON object */
    EMU_F_OPERATION_NAME,
    EMU_F_OPERATION_ID,
    EMU_F_OPERATION_PARENT_ID,
    EMU_F_SESSION_ID,
    EMU_F_USER_ID,
    EMU_F_CLOUD_ROLE,          /* cloud_RoleName */
    EMU_F_CLOUD_ROLE_INSTANCE, /* cloud_RoleInstance */
    EMU_F_SDK_VERSION,         /* sdkVersion */
    EMU_F_CONVERSATION, /* the LiveWorkItemID property; "" when absent */
    EMU_F_COUNT
};

typedef struct emu_trace {
    int64_t time_us;
    int severity; /* -1: not given */
    uint32_t item_count; /* the items it stands for: 100 / sampleRate */
    uint32_t size; /* of text */
    uint32_t off[EMU_F_COUNT];
    char *text; /* every field, NUL-terminated: its own allocation, or once
                   kept, a place in one of the store's blocks */
} emu_trace_t;

/* Copies the fields (NULL reads as ""). */
cd_status_t emu_trace_init(emu_trace_t *t, int64_t time_us, int severity, uint32_t item_count,
                           const char *const fields[EMU_F_COUNT]);
/* For a trace not kept: the store frees the texts of its own. */
void emu_trace_fini(emu_trace_t *t);

static inline const char *emu_trace_field(const emu_trace_t *t, int field)
{
    return t->text + t->off[field];
}

typedef struct emu_conversation {
    char *id;
    int64_t first_us, last_us;
    uint32_t *items; /* indexes into emu_store_t.items, in arrival order */
    size_t count, cap;
} emu_conversation_t;

typedef struct emu_text_block emu_text_block_t;

typedef struct emu_store {
    size_t max;
    emu_text_block_t *blocks; /* the kept traces' texts, the block being filled first */
    emu_trace_t *items;
    size_t count, cap;
    emu_conversation_t *convs;
    size_t nconvs, convs_cap;
    cd_strmap_t conv_index; /* id -> index into convs */
    uint64_t *seen;         /* open addressing; 0 is an empty slot */
    size_t seen_count, seen_cap;
} emu_store_t;

void emu_store_init(emu_store_t *s, size_t max);
void emu_store_fini(emu_store_t *s);
/* Forgets every item; the maximum stays. */
void emu_store_clear(emu_store_t *s);

static inline bool emu_store_full(const emu_store_t *s) { return s->count >= s->max; }

/*
 * Keeps t (moved in: its text copied to the store's blocks and freed, t
 * emptied) unless the store is full or memory runs out (CD_ERROR, t
 * untouched).  hash identifies the envelope text;
 * *duplicate tells whether an item with the same hash was accepted before.
 */
cd_status_t emu_store_add(emu_store_t *s, emu_trace_t *t, uint64_t hash, bool *duplicate);

/*
 * {"total": N, "conversations": [{"LiveWorkItemID", "count", "first", "last"}]},
 * most recent last trace first; filter (may be NULL) keeps the ids that
 * contain it, ignoring case.
 */
void emu_store_conversations_json(const emu_store_t *s, const char *filter, size_t offset,
                                  size_t limit, cd_buf_t *out);

/*
 * The traces of a conversation as rows of the Traces table, by time (then
 * arrival): timestamp, message, customDimensions, operation_Name,
 * operation_Id, operation_ParentId, session_Id, user_Id, severityLevel,
 * itemType.  An unknown conversation gives [].
 */
void emu_store_traces_json(const emu_store_t *s, const char *conversation, cd_buf_t *out);

#endif
