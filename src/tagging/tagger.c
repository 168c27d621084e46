/* tagger.c -- applies a batch to its conversations: tags, runs, counts; see tagging.h. */
#include <stdlib.h>
#include <string.h>

#include "convdiag/scenario.h"
#include "convdiag/tagging.h"

#define DEFAULT_STALE_AFTER_MS (30 * 60 * 1000)

/* Scenarios whose end tells how a conversation ended. */
static const char *const ending_scenarios[] = {
    "ConversationEndedByCustomer",      "ConversationEndedByAgent",
    "ConversationEndedByVirtualAgent",  "ConversationAbandonedByCustomer",
    "ConversationForceClosedBySupervisor",
};

void cd_tagger_conf_from_config(cd_tagger_conf_t *tc, const cd_config_t *cfg)
{
    tc->stale_after_ms = cfg->stale_after_ms;
    tc->overrides = cfg->stale_overrides;
    tc->overrides_count = cfg->stale_overrides_count;
}

int64_t cd_tagger_stale_after_ms(const cd_tagger_conf_t *tc, const char *scenario)
{
    for (size_t i = 0; i < tc->overrides_count; i++)
        if (strcmp(tc->overrides[i].scenario, scenario) == 0)
            return tc->overrides[i].after_ms;
    return tc->stale_after_ms > 0 ? tc->stale_after_ms : DEFAULT_STALE_AFTER_MS;
}

static bool set_str(char **dst, const char *src)
{
    char *d = src ? strdup(src) : NULL;
    if (src && !d)
        return false;
    free(*dst);
    *dst = d;
    return true;
}

/* Duration of a paired run: the source's if it gave one, else end - start
 * (never negative); an unpaired end keeps only the source's. */
static void settle_duration(cd_run_t *r)
{
    if (r->state == CD_RUN_OPEN)
        r->duration_ms = -1;
    else if (r->source_duration_ms >= 0 || r->state == CD_RUN_UNPAIRED)
        r->duration_ms = r->source_duration_ms;
    else
        r->duration_ms = r->end_us > r->start_us ? (r->end_us - r->start_us) / 1000 : 0;
}

static cd_run_state_t ended_state(const cd_run_t *r)
{
    return r->end_failed ? CD_RUN_FAILED : CD_RUN_COMPLETED;
}

/* The oldest run of this scenario in the given state: by start for open runs,
 * by end for unpaired ones, whose end must not precede not_before_us. */
static cd_run_t *oldest(cd_conversation_t *c, const char *scenario, cd_run_state_t state,
                        int64_t not_before_us)
{
    cd_run_t *best = NULL;
    int64_t best_t = 0;
    for (size_t i = 0; i < c->runs_count; i++) {
        cd_run_t *r = &c->runs[i];
        if (r->state != state || strcmp(r->scenario, scenario) != 0)
            continue;
        int64_t t = state == CD_RUN_OPEN ? r->start_us : r->end_us;
        if (t < not_before_us || (best && t >= best_t))
            continue;
        best = r;
        best_t = t;
    }
    return best;
}

static cd_run_t *new_run(cd_conversation_t *c, const cd_event_t *ev)
{
    cd_run_t *r = cd_conversation_add_run(c);
    if (!r)
        return NULL;
    r->dirty = true;
    if (!set_str(&r->scenario, ev->scenario) || !set_str(&r->category, ev->category))
        return NULL;
    return r;
}

static cd_status_t pair(cd_conversation_t *c, const cd_event_t *ev, cd_err_t *err)
{
    cd_run_t *r;

    if (ev->status == CD_EVENT_STARTED) {
        /* A start arriving after its end pairs with the oldest unpaired end not before it. */
        r = oldest(c, ev->scenario, CD_RUN_UNPAIRED, ev->ts_us);
        if (r) {
            r->state = ended_state(r);
        } else {
            if (!(r = new_run(c, ev)))
                goto oom;
            r->state = CD_RUN_OPEN;
        }
        r->start_us = ev->ts_us;
        r->dirty = true;
        if (!set_str(&r->start_event_id, ev->event_id))
            goto oom;
    } else {
        r = oldest(c, ev->scenario, CD_RUN_OPEN, INT64_MIN);
        if (!r && !(r = new_run(c, ev)))
            goto oom;
        r->end_failed = ev->status == CD_EVENT_FAILED;
        r->state = r->start_event_id ? ended_state(r) : CD_RUN_UNPAIRED;
        r->end_us = ev->ts_us;
        r->source_duration_ms = ev->duration_ms;
        r->stale = false;
        r->dirty = true;
        if (!set_str(&r->end_event_id, ev->event_id))
            goto oom;
    }
    settle_duration(r);
    return CD_OK;

oom:
    return cd_err_set(err, CD_ERROR, "out of memory pairing event %s", ev->event_id);
}

static bool is_ending(const char *scenario)
{
    for (size_t i = 0; i < CD_ARRAY_LEN(ending_scenarios); i++)
        if (strcmp(scenario, ending_scenarios[i]) == 0)
            return true;
    return false;
}

/* Conversation-level facts.  Counts, first/last, outcome and closed time do not
 * depend on the order events arrive in; organization, channel and operation_Id
 * come from the first event to arrive, which the partition order fixes. */
static bool update_conversation(cd_conversation_t *c, const cd_record_t *rec)
{
    const cd_event_t *ev = &rec->event;

    if (!c->organization_id && !set_str(&c->organization_id, ev->organization_id))
        return false;
    if (!c->channel_type && !set_str(&c->channel_type, ev->channel_type))
        return false;
    if (!c->operation_id && !set_str(&c->operation_id, rec->tags.operation_id))
        return false;
    if (ev->ts_us < c->first_us)
        c->first_us = ev->ts_us;
    if (ev->ts_us > c->last_us)
        c->last_us = ev->ts_us;
    c->events++;
    c->started += ev->status == CD_EVENT_STARTED;
    c->completed += ev->status == CD_EVENT_COMPLETED;
    c->failed += ev->status == CD_EVENT_FAILED;
    c->unknown_scenarios += !ev->scenario_known;
    if (ev->status != CD_EVENT_STARTED && is_ending(ev->scenario) &&
        (!c->outcome || ev->ts_us < c->outcome_us ||
         (ev->ts_us == c->outcome_us && strcmp(ev->scenario, c->outcome) < 0))) {
        if (!set_str(&c->outcome, ev->scenario))
            return false;
        c->outcome_us = ev->ts_us;
    }
    if (ev->status != CD_EVENT_STARTED && strcmp(ev->scenario, "ConversationClosed") == 0 &&
        (c->closed_us == CD_NO_TIME || ev->ts_us < c->closed_us))
        c->closed_us = ev->ts_us;
    return true;
}

/* Open runs older than their stale time, measured against the conversation's latest event. */
static size_t flag_stale(const cd_tagger_conf_t *tc, cd_conversation_t *c)
{
    size_t flagged = 0;
    for (size_t i = 0; i < c->runs_count; i++) {
        cd_run_t *r = &c->runs[i];
        if (r->state != CD_RUN_OPEN)
            continue;
        /* Only ever set here: last_us never goes back, and a run the wall-clock
         * sweep flagged stays flagged until it closes. */
        if (!r->stale &&
            c->last_us - r->start_us > cd_tagger_stale_after_ms(tc, r->scenario) * 1000) {
            r->stale = true;
            r->dirty = true;
            flagged++;
        }
    }
    return flagged;
}

cd_status_t cd_tagger_apply(const cd_tagger_conf_t *tc, cd_batch_t *batch, cd_tag_state_t *st,
                            cd_err_t *err)
{
    for (size_t i = 0; i < batch->count; i++) {
        cd_record_t *rec = &batch->records[i];
        if (!rec->valid || rec->duplicate)
            continue;
        const char *lwi = rec->event.live_work_item_id;
        cd_conversation_t *c = cd_tag_state_find(st, lwi);
        if (!c && !(c = cd_tag_state_add(st, lwi)))
            return cd_err_set(err, CD_ERROR, "out of memory adding conversation %s", lwi);
        if (!cd_tag_state_touch(st, c))
            return cd_err_set(err, CD_ERROR, "out of memory updating conversation %s", lwi);
        c->source = cd_tag_source(rec->topic, rec->partition);
        cd_tag_event(rec, c->operation_id);
        if (!update_conversation(c, rec))
            return cd_err_set(err, CD_ERROR, "out of memory updating conversation %s", lwi);
        if (pair(c, &rec->event, err) != CD_OK)
            return CD_ERROR;
    }
    st->newly_stale = 0;
    for (size_t i = 0; i < st->touched_count; i++)
        st->newly_stale += flag_stale(tc, st->touched[i]);
    return CD_OK;
}
