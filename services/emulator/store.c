/* store.c -- traces in memory, by conversation, with duplicate counting; see store.h. */
#include "store.h"

#include <stdlib.h>
#include <string.h>

#include "convdiag/json.h"
#include "convdiag/timeutil.h"

/*
 * The texts of kept traces go into large blocks, freed all at once: with an
 * allocation of its own per trace, malloc grew the heap 128 kB at a time,
 * an mprotect call each, and forgetting the items took a free per trace.
 */
#define TEXT_BLOCK_SIZE (4 * 1024 * 1024)

struct emu_text_block {
    emu_text_block_t *next;
    size_t used, size;
    char data[];
};

cd_status_t emu_trace_init(emu_trace_t *t, int64_t time_us, int severity, uint32_t item_count,
                           const char *const fields[EMU_F_COUNT])
{
    size_t len[EMU_F_COUNT], total = 0;

    for (int f = 0; f < EMU_F_COUNT; f++) {
        len[f] = fields[f] ? strlen(fields[f]) : 0;
        total += len[f] + 1;
    }
    /* The item limit (64 kB) keeps offsets far below 32 bits. */
    if (!(t->text = malloc(total)))
        return CD_ERROR;
    size_t at = 0;
    for (int f = 0; f < EMU_F_COUNT; f++) {
        t->off[f] = (uint32_t)at;
        memcpy(t->text + at, fields[f] ? fields[f] : "", len[f]);
        t->text[at + len[f]] = '\0';
        at += len[f] + 1;
    }
    t->size = (uint32_t)total;
    t->time_us = time_us;
    t->severity = severity;
    t->item_count = item_count;
    return CD_OK;
}

void emu_trace_fini(emu_trace_t *t)
{
    free(t->text);
    memset(t, 0, sizeof(*t));
}

void emu_store_init(emu_store_t *s, size_t max)
{
    memset(s, 0, sizeof(*s));
    s->max = max;
    cd_strmap_init(&s->conv_index);
}

void emu_store_fini(emu_store_t *s)
{
    while (s->blocks) {
        emu_text_block_t *next = s->blocks->next;
        free(s->blocks);
        s->blocks = next;
    }
    free(s->items);
    for (size_t c = 0; c < s->nconvs; c++) {
        free(s->convs[c].id);
        free(s->convs[c].items);
    }
    free(s->convs);
    cd_strmap_fini(&s->conv_index);
    free(s->seen);
    memset(s, 0, sizeof(*s));
}

void emu_store_clear(emu_store_t *s)
{
    size_t max = s->max;
    emu_store_fini(s);
    emu_store_init(s, max);
}

/* Room for one more element in an array that doubles. */
static bool grow(void **array, size_t *cap, size_t count, size_t elem, size_t first)
{
    if (count < *cap)
        return true;
    size_t n = *cap ? *cap * 2 : first;
    void *a = realloc(*array, n * elem);
    if (!a)
        return false;
    *array = a;
    *cap = n;
    return true;
}

/* Room for n bytes of text in the blocks; NULL when memory runs out.  What a
 * block cannot fit is left unused: traces are far smaller than a block. */
static char *text_room(emu_store_t *s, size_t n)
{
    emu_text_block_t *b = s->blocks;

    if (!b || b->size - b->used < n) {
        size_t size = n > TEXT_BLOCK_SIZE ? n : TEXT_BLOCK_SIZE;
        if (!(b = malloc(sizeof(*b) + size)))
            return NULL;
        b->used = 0;
        b->size = size;
        b->next = s->blocks;
        s->blocks = b;
    }
    b->used += n;
    return b->data + b->used - n;
}

static size_t seen_slot(const uint64_t *table, size_t cap, uint64_t hash)
{
    size_t i = (size_t)hash & (cap - 1);
    while (table[i] && table[i] != hash)
        i = (i + 1) & (cap - 1);
    return i;
}

/* Keeps the table at most half full, so probes stay short. */
static bool seen_reserve(emu_store_t *s)
{
    if ((s->seen_count + 1) * 2 <= s->seen_cap)
        return true;
    size_t cap = s->seen_cap ? s->seen_cap * 2 : 1024;
    uint64_t *t = calloc(cap, sizeof(*t));
    if (!t)
        return false;
    for (size_t i = 0; i < s->seen_cap; i++)
        if (s->seen[i])
            t[seen_slot(t, cap, s->seen[i])] = s->seen[i];
    free(s->seen);
    s->seen = t;
    s->seen_cap = cap;
    return true;
}

/* The conversation of id, created when new, with room for one more item;
 * NULL when memory runs out. */
static emu_conversation_t *conversation(emu_store_t *s, const char *id)
{
    emu_conversation_t *c;
    size_t index;

    if (cd_strmap_get(&s->conv_index, id, &index)) {
        c = &s->convs[index];
        return grow((void **)&c->items, &c->cap, c->count, sizeof(*c->items), 8) ? c : NULL;
    }
    if (!grow((void **)&s->convs, &s->convs_cap, s->nconvs, sizeof(*s->convs), 64))
        return NULL;
    c = &s->convs[s->nconvs];
    memset(c, 0, sizeof(*c));
    if (!(c->id = strdup(id)) || !grow((void **)&c->items, &c->cap, 0, sizeof(*c->items), 8) ||
        cd_strmap_add(&s->conv_index, c->id, s->nconvs, NULL) < 0) {
        free(c->id);
        free(c->items);
        return NULL;
    }
    s->nconvs++;
    return c;
}

cd_status_t emu_store_add(emu_store_t *s, emu_trace_t *t, uint64_t hash, bool *duplicate)
{
    const char *id = emu_trace_field(t, EMU_F_CONVERSATION);
    emu_conversation_t *c = NULL;
    char *text;

    if (emu_store_full(s) ||
        !grow((void **)&s->items, &s->cap, s->count, sizeof(*s->items), 1024) ||
        !seen_reserve(s) || !(text = text_room(s, t->size)))
        return CD_ERROR;
    if (id[0] && !(c = conversation(s, id)))
        return CD_ERROR;

    hash = hash ? hash : 1; /* 0 marks an empty slot */
    size_t slot = seen_slot(s->seen, s->seen_cap, hash);
    *duplicate = s->seen[slot] != 0;
    if (!*duplicate) {
        s->seen[slot] = hash;
        s->seen_count++;
    }
    if (c) {
        if (c->count == 0 || t->time_us < c->first_us)
            c->first_us = t->time_us;
        if (c->count == 0 || t->time_us > c->last_us)
            c->last_us = t->time_us;
        c->items[c->count++] = (uint32_t)s->count;
    }
    memcpy(text, t->text, t->size);
    free(t->text);
    t->text = text;
    s->items[s->count++] = *t;
    memset(t, 0, sizeof(*t));
    return CD_OK;
}

/* Sorting keys: a time and an index that breaks ties by arrival. */
typedef struct order {
    int64_t time_us;
    size_t index;
} order_t;

static int by_time(const void *a, const void *b)
{
    const order_t *x = a, *y = b;
    if (x->time_us != y->time_us)
        return x->time_us < y->time_us ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int by_time_desc(const void *a, const void *b) { return by_time(b, a); }

static void put_time(cd_buf_t *out, int64_t us)
{
    char ts[32];
    /* Milliseconds, as the portal and `convdiag history` show them. */
    cd_time_format_utc(us, 3, ts, sizeof(ts));
    cd_json_put_string(out, ts);
}

void emu_store_conversations_json(const emu_store_t *s, const char *filter, size_t offset,
                                  size_t limit, cd_buf_t *out)
{
    order_t *order = malloc((s->nconvs ? s->nconvs : 1) * sizeof(*order));
    size_t n = 0;

    if (!order) {
        out->oom = true;
        return;
    }
    for (size_t c = 0; c < s->nconvs; c++)
        if (!filter || !filter[0] || strcasestr(s->convs[c].id, filter))
            order[n++] = (order_t){s->convs[c].last_us, c};
    qsort(order, n, sizeof(*order), by_time_desc);

    cd_buf_printf(out, "{\"total\":%zu,\"conversations\":[", n);
    for (size_t i = offset; i < n && i - offset < limit; i++) {
        const emu_conversation_t *c = &s->convs[order[i].index];
        cd_buf_puts(out, i > offset ? ",{\"LiveWorkItemID\":" : "{\"LiveWorkItemID\":");
        cd_json_put_string(out, c->id);
        cd_buf_printf(out, ",\"count\":%zu,\"first\":", c->count);
        put_time(out, c->first_us);
        cd_buf_puts(out, ",\"last\":");
        put_time(out, c->last_us);
        cd_buf_putc(out, '}');
    }
    cd_buf_puts(out, "]}");
    free(order);
}

static void put_row(cd_buf_t *out, const emu_trace_t *t)
{
    static const struct {
        const char *column;
        int field;
    } text[] = {
        {"operation_Name", EMU_F_OPERATION_NAME},
        {"operation_Id", EMU_F_OPERATION_ID},
        {"operation_ParentId", EMU_F_OPERATION_PARENT_ID},
        {"session_Id", EMU_F_SESSION_ID},
        {"user_Id", EMU_F_USER_ID},
        {"cloud_RoleName", EMU_F_CLOUD_ROLE},
        {"cloud_RoleInstance", EMU_F_CLOUD_ROLE_INSTANCE},
        {"sdkVersion", EMU_F_SDK_VERSION},
    };
    const char *dims = emu_trace_field(t, EMU_F_DIMENSIONS);

    cd_buf_puts(out, "{\"timestamp\":");
    put_time(out, t->time_us);
    cd_buf_puts(out, ",\"message\":");
    cd_json_put_string(out, emu_trace_field(t, EMU_F_MESSAGE));
    /* Kept as the JSON text the envelope's properties printed to. */
    cd_buf_puts(out, ",\"customDimensions\":");
    cd_buf_puts(out, dims[0] ? dims : "{}");
    for (size_t i = 0; i < CD_ARRAY_LEN(text); i++) {
        cd_buf_printf(out, ",\"%s\":", text[i].column);
        cd_json_put_string(out, emu_trace_field(t, text[i].field));
    }
    if (t->severity < 0)
        cd_buf_puts(out, ",\"severityLevel\":null");
    else
        cd_buf_printf(out, ",\"severityLevel\":%d", t->severity);
    cd_buf_printf(out, ",\"itemType\":\"trace\",\"itemCount\":%u}", t->item_count);
}

void emu_store_traces_json(const emu_store_t *s, const char *conversation, cd_buf_t *out)
{
    size_t index;
    if (!cd_strmap_get(&s->conv_index, conversation, &index)) {
        cd_buf_puts(out, "[]");
        return;
    }
    const emu_conversation_t *c = &s->convs[index];
    order_t *order = malloc(c->count * sizeof(*order));
    if (!order) {
        out->oom = true;
        return;
    }
    for (size_t i = 0; i < c->count; i++)
        order[i] = (order_t){s->items[c->items[i]].time_us, c->items[i]};
    qsort(order, c->count, sizeof(*order), by_time);
    cd_buf_putc(out, '[');
    for (size_t i = 0; i < c->count; i++) {
        if (i)
            cd_buf_putc(out, ',');
        put_row(out, &s->items[order[i].index]);
    }
    cd_buf_putc(out, ']');
    free(order);
}
