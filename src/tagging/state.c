/* state.c -- the conversations a batch touches, with their open runs; see tagging.h. */
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

void cd_tag_state_init(cd_tag_state_t *st) { memset(st, 0, sizeof(*st)); }

static void run_fini(cd_run_t *r)
{
    free(r->scenario);
    free(r->category);
    free(r->start_event_id);
    free(r->end_event_id);
}

static void conversation_fini(cd_conversation_t *c)
{
    for (size_t i = 0; i < c->runs_count; i++)
        run_fini(&c->runs[i]);
    free(c->runs);
    free(c->live_work_item_id);
    free(c->organization_id);
    free(c->channel_type);
    free(c->operation_id);
    free(c->outcome);
}

void cd_tag_state_clear(cd_tag_state_t *st)
{
    for (size_t i = 0; i < st->count; i++)
        conversation_fini(&st->convs[i]);
    st->count = 0;
    cd_strmap_clear(&st->index);
}

void cd_tag_state_fini(cd_tag_state_t *st)
{
    cd_tag_state_clear(st);
    free(st->convs);
    cd_strmap_fini(&st->index);
    memset(st, 0, sizeof(*st));
}

cd_conversation_t *cd_tag_state_find(const cd_tag_state_t *st, const char *lwi)
{
    size_t i;
    return cd_strmap_get(&st->index, lwi, &i) ? &st->convs[i] : NULL;
}

cd_conversation_t *cd_tag_state_add(cd_tag_state_t *st, const char *lwi)
{
    if (st->count == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 64;
        cd_conversation_t *c = realloc(st->convs, cap * sizeof(*c));
        if (!c)
            return NULL;
        st->convs = c;
        st->cap = cap;
    }
    cd_conversation_t *c = &st->convs[st->count];
    memset(c, 0, sizeof(*c));
    /* The key is the conversation's own copy, which does not move when convs grows. */
    if (!(c->live_work_item_id = strdup(lwi)) ||
        cd_strmap_add(&st->index, c->live_work_item_id, st->count, NULL) < 0) {
        free(c->live_work_item_id);
        return NULL;
    }
    st->count++;
    c->first_us = INT64_MAX;
    c->last_us = INT64_MIN;
    c->outcome_us = CD_NO_TIME;
    c->closed_us = CD_NO_TIME;
    return c;
}

cd_run_t *cd_conversation_add_run(cd_conversation_t *conv)
{
    if (conv->runs_count == conv->runs_cap) {
        size_t cap = conv->runs_cap ? conv->runs_cap * 2 : 8;
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
