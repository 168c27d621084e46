/*
 * state.c -- the conversations a writer keeps between batches, with their
 * open runs; see tagging.h.
 *
 * A chained hash table finds a conversation by liveWorkItemId; a recency
 * list, newest first, says which to let go when the state holds more than
 * its share of memory.  Entries are allocated one by one, so a pointer to
 * one stays valid while it is in the state.
 */
#include <stdlib.h>
#include <string.h>

#include "convdiag/tagging.h"

static const char *const run_state_names[] = {"open", "completed", "failed", "unpaired"};

const char *cd_run_state_name(cd_run_state_t state) { return run_state_names[state]; }

int cd_run_state_parse(const char *name)
{
    for (size_t i = 0; i < CD_ARRAY_LEN(run_state_names); i++)
        if (strcmp(name, run_state_names[i]) == 0)
            return (int)i;
    return -1;
}

/* FNV-1a, 64 bits. */
static uint64_t hash_bytes(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t hash_str(const char *s) { return hash_bytes(0xcbf29ce484222325ULL, s, strlen(s)); }

uint64_t cd_tag_source(const char *topic, int32_t partition)
{
    uint64_t h = hash_str(topic ? topic : "");
    return hash_bytes(h, (const char *)&partition, sizeof(partition));
}

void cd_tag_state_init(cd_tag_state_t *st, size_t max_bytes)
{
    memset(st, 0, sizeof(*st));
    st->max_bytes = max_bytes;
}

static void run_fini(cd_run_t *r)
{
    free(r->scenario);
    free(r->category);
    free(r->start_event_id);
    free(r->end_event_id);
}

static void conversation_free(cd_conversation_t *c)
{
    for (size_t i = 0; i < c->runs_count; i++)
        run_fini(&c->runs[i]);
    free(c->runs);
    free(c->live_work_item_id);
    free(c->organization_id);
    free(c->channel_type);
    free(c->operation_id);
    free(c->outcome);
    free(c);
}

static size_t str_bytes(const char *s) { return s ? strlen(s) + 1 : 0; }

/* What c costs in memory, roughly: the allocator's overhead counted too. */
static size_t conversation_bytes(const cd_conversation_t *c)
{
    size_t n = sizeof(*c) + c->runs_cap * sizeof(cd_run_t) + 6 * 16 +
               str_bytes(c->live_work_item_id) + str_bytes(c->organization_id) +
               str_bytes(c->channel_type) + str_bytes(c->operation_id) + str_bytes(c->outcome);
    for (size_t i = 0; i < c->runs_count; i++) {
        const cd_run_t *r = &c->runs[i];
        n += 4 * 16 + str_bytes(r->scenario) + str_bytes(r->category) +
             str_bytes(r->start_event_id) + str_bytes(r->end_event_id);
    }
    return n;
}

static void unlink_recency(cd_tag_state_t *st, cd_conversation_t *c)
{
    if (c->newer)
        c->newer->older = c->older;
    else
        st->newest = c->older;
    if (c->older)
        c->older->newer = c->newer;
    else
        st->oldest = c->newer;
    c->newer = c->older = NULL;
}

static void link_newest(cd_tag_state_t *st, cd_conversation_t *c)
{
    c->newer = NULL;
    c->older = st->newest;
    if (st->newest)
        st->newest->newer = c;
    else
        st->oldest = c;
    st->newest = c;
}

static cd_conversation_t **bucket_of(const cd_tag_state_t *st, const char *lwi)
{
    return &st->buckets[hash_str(lwi) & (st->nbuckets - 1)];
}

/* Takes c out of the state and frees it. */
static void remove_conversation(cd_tag_state_t *st, cd_conversation_t *c)
{
    cd_conversation_t **p = bucket_of(st, c->live_work_item_id);
    while (*p != c)
        p = &(*p)->hnext;
    *p = c->hnext;
    unlink_recency(st, c);
    st->bytes -= c->bytes;
    st->count--;
    conversation_free(c);
}

void cd_tag_state_clear(cd_tag_state_t *st)
{
    cd_conversation_t *c = st->newest;
    while (c) {
        cd_conversation_t *older = c->older;
        conversation_free(c);
        c = older;
    }
    if (st->buckets)
        memset(st->buckets, 0, st->nbuckets * sizeof(*st->buckets));
    st->newest = st->oldest = NULL;
    st->count = st->bytes = st->touched_count = 0;
}

void cd_tag_state_fini(cd_tag_state_t *st)
{
    cd_tag_state_clear(st);
    free(st->buckets);
    free(st->touched);
    memset(st, 0, sizeof(*st));
}

cd_conversation_t *cd_tag_state_find(const cd_tag_state_t *st, const char *lwi)
{
    if (!st->nbuckets)
        return NULL;
    for (cd_conversation_t *c = *bucket_of(st, lwi); c; c = c->hnext)
        if (strcmp(c->live_work_item_id, lwi) == 0)
            return c;
    return NULL;
}

/* Keeps the chains short: twice the buckets once there are as many entries. */
static bool grow_buckets(cd_tag_state_t *st)
{
    size_t n = st->nbuckets ? st->nbuckets * 2 : 256;
    cd_conversation_t **b = calloc(n, sizeof(*b));
    if (!b)
        return false;
    cd_conversation_t **old = st->buckets;
    size_t old_n = st->nbuckets;
    st->buckets = b;
    st->nbuckets = n;
    for (size_t i = 0; i < old_n; i++) {
        cd_conversation_t *c = old[i];
        while (c) {
            cd_conversation_t *next = c->hnext;
            cd_conversation_t **p = bucket_of(st, c->live_work_item_id);
            c->hnext = *p;
            *p = c;
            c = next;
        }
    }
    free(old);
    return true;
}

cd_conversation_t *cd_tag_state_add(cd_tag_state_t *st, const char *lwi)
{
    if (st->count >= st->nbuckets && !grow_buckets(st) && !st->nbuckets)
        return NULL;
    cd_conversation_t *c = calloc(1, sizeof(*c));
    if (!c || !(c->live_work_item_id = strdup(lwi))) {
        free(c);
        return NULL;
    }
    c->first_us = INT64_MAX;
    c->last_us = INT64_MIN;
    c->outcome_us = CD_NO_TIME;
    c->closed_us = CD_NO_TIME;
    cd_conversation_t **p = bucket_of(st, lwi);
    c->hnext = *p;
    *p = c;
    link_newest(st, c);
    c->bytes = conversation_bytes(c);
    st->bytes += c->bytes;
    st->count++;
    return c;
}

cd_run_t *cd_conversation_add_run(cd_conversation_t *conv)
{
    if (conv->runs_count == conv->runs_cap) {
        size_t cap = conv->runs_cap ? conv->runs_cap * 2 : 4;
        cd_run_t *r = realloc(conv->runs, cap * sizeof(*r));
        if (!r)
            return NULL;
        conv->runs = r;
        conv->runs_cap = cap;
    }
    cd_run_t *r = &conv->runs[conv->runs_count++];
    memset(r, 0, sizeof(*r));
    r->start_us = r->end_us = CD_NO_TIME;
    r->source_duration_ms = -1;
    r->duration_ms = -1;
    return r;
}

bool cd_tag_state_touch(cd_tag_state_t *st, cd_conversation_t *c)
{
    if (st->newest != c) {
        unlink_recency(st, c);
        link_newest(st, c);
    }
    if (c->dirty)
        return true;
    if (st->touched_count == st->touched_cap) {
        size_t cap = st->touched_cap ? st->touched_cap * 2 : 256;
        cd_conversation_t **t = realloc(st->touched, cap * sizeof(*t));
        if (!t)
            return false;
        st->touched = t;
        st->touched_cap = cap;
    }
    st->touched[st->touched_count++] = c;
    c->dirty = true;
    return true;
}

/* Only open and unpaired runs matter to later events: ended ones are stored. */
static void drop_ended_runs(cd_conversation_t *c)
{
    size_t kept = 0;
    for (size_t i = 0; i < c->runs_count; i++) {
        cd_run_t *r = &c->runs[i];
        if (r->state == CD_RUN_COMPLETED || r->state == CD_RUN_FAILED) {
            run_fini(r);
            continue;
        }
        r->dirty = false;
        r->stored = true;
        c->runs[kept++] = *r;
    }
    c->runs_count = kept;
}

void cd_tag_state_commit(cd_tag_state_t *st)
{
    for (size_t i = 0; i < st->touched_count; i++) {
        cd_conversation_t *c = st->touched[i];
        c->dirty = false;
        c->stored = true;
        c->version++;
        drop_ended_runs(c);
        st->bytes -= c->bytes;
        c->bytes = conversation_bytes(c);
        st->bytes += c->bytes;
    }
    st->touched_count = 0;
    while (st->bytes > st->max_bytes && st->oldest)
        remove_conversation(st, st->oldest);
}

void cd_tag_state_discard(cd_tag_state_t *st)
{
    for (size_t i = 0; i < st->touched_count; i++)
        remove_conversation(st, st->touched[i]);
    st->touched_count = 0;
}

void cd_tag_state_forget_source(cd_tag_state_t *st, uint64_t source)
{
    cd_conversation_t *c = st->newest;
    while (c) {
        cd_conversation_t *older = c->older;
        if (c->source == source)
            remove_conversation(st, c);
        c = older;
    }
}
