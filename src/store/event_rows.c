/* event_rows.c -- the batch's new events, copied into events; see store.h. */
#include <stdio.h>
#include <string.h>

#include "store_private.h"

#define EVENT_COLUMNS                                                                          \
    "event_id, event_time, organization_id, live_work_item_id, scenario, scenario_received, " \
    "category, status, channel_type, participant_type, user_id, session_id, transaction_id, " \
    "traceparent, tracestate, duration_ms, failure_reason, attributes, kafka_topic, "         \
    "kafka_partition, kafka_offset, operation_id, operation_id_source, kafka_traceparent, "   \
    "kafka_tracestate"
#define EVENT_NCOLS 25

static void event_row(const cd_record_t *rec, cd_row_text_t *t)
{
    const cd_event_t *ev = &rec->event;
    const char *v[EVENT_NCOLS] = {
        ev->event_id, cd_row_time(t, 1, ev->ts_us), ev->organization_id, ev->live_work_item_id,
        ev->scenario, ev->scenario_received, ev->category, cd_event_status_name(ev->status),
        ev->channel_type, ev->participant_type, ev->user_id, ev->session_id,
        ev->transaction_id, ev->traceparent, ev->tracestate,
        ev->duration_ms >= 0 ? cd_row_int(t, 15, ev->duration_ms) : NULL, ev->failure_reason,
        ev->attributes_json, rec->topic, cd_row_int(t, 19, rec->partition),
        cd_row_int(t, 20, rec->offset), rec->tags.operation_id,
        cd_opid_source_name(rec->tags.source), rec->header_traceparent, rec->header_tracestate,
    };
    memcpy(t->v, v, sizeof(v));
}

/*
 * What a failure of the events' COPY means: an event stored already (a
 * replay the batch did not look for), or the partition gone (dropped since
 * we saw it, by hand or by an instance keeping less) or not the row's, to
 * be made again; any other refusal is a row's.
 */
static cd_status_t events_failed(cd_store_t *s, cd_status_t st)
{
    st = cd_store_fail(s, st);
    if (st == CD_OK)
        return st;
    if (strcmp(s->pg.sqlstate, "23505") == 0)
        s->failure = CD_STORE_DUPLICATE;
    else if (strcmp(s->pg.sqlstate, "42P01") == 0 || strcmp(s->pg.sqlstate, "23514") == 0)
        s->failure = CD_STORE_PARTITION;
    return st;
}

static bool day_in(const int64_t *days, size_t n, int64_t day)
{
    for (size_t k = 0; k < n; k++)
        if (days[k] == day)
            return true;
    return false;
}

/* The batch's new events of one day, or with day INT64_MIN those of every
 * day not in done[0..ndone), into target. */
static cd_status_t copy_day(cd_store_t *s, const cd_batch_t *batch, const char *target,
                            int64_t day, const int64_t *done, size_t ndone, cd_err_t *err)
{
    cd_row_text_t t;
    cd_status_t st = cd_copy_begin(&s->copy, target, err);

    if (st != CD_OK)
        return events_failed(s, st);
    for (size_t i = 0; i < batch->count && st == CD_OK; i++) {
        const cd_record_t *rec = &batch->records[i];
        if (!rec->valid || rec->duplicate)
            continue;
        int64_t d = cd_store_partitions_day(rec->event.ts_us);
        if (day_in(done, ndone, d) || (day != INT64_MIN && d != day))
            continue;
        event_row(rec, &t);
        st = cd_copy_row(&s->copy, t.v, EVENT_NCOLS, err);
    }
    return events_failed(s, cd_copy_end(&s->copy, st, err));
}

/*
 * Each day's events are copied into the day's partition itself: COPY into
 * events would set partition routing up for every batch and open each
 * partition it touches, a cost of its own per batch.  A batch mostly holds
 * one day, two at midnight; past a few, the rest go through events (the
 * replay of an old backlog, say).  The partitions exist already
 * (cd_store_ensure_partitions), and PostgreSQL checks each row against its
 * partition's bounds.
 */
cd_status_t cd_store_write_events(cd_store_t *s, const cd_batch_t *batch, cd_store_result_t *r,
                                  cd_err_t *err)
{
    int64_t done[4];
    size_t ndone = 0;
    char target[48 + sizeof(EVENT_COLUMNS)], name[32];
    cd_status_t st;

    for (size_t i = 0; i < batch->count; i++) {
        const cd_record_t *rec = &batch->records[i];
        if (!rec->valid)
            continue;
        r->duplicates += rec->duplicate;
        r->inserted += !rec->duplicate;
        r->unknown_scenarios += !rec->duplicate && !rec->event.scenario_known;
    }
    for (size_t i = 0; i < batch->count; i++) {
        const cd_record_t *rec = &batch->records[i];
        if (!rec->valid || rec->duplicate)
            continue;
        int64_t day = cd_store_partitions_day(rec->event.ts_us);
        if (day_in(done, ndone, day))
            continue;
        if (ndone == CD_ARRAY_LEN(done) || !cd_store_partitions_name(day, name, sizeof(name))) {
            snprintf(target, sizeof(target), "events (" EVENT_COLUMNS ")");
            return copy_day(s, batch, target, INT64_MIN, done, ndone, err);
        }
        snprintf(target, sizeof(target), "%s (" EVENT_COLUMNS ")", name);
        if ((st = copy_day(s, batch, target, day, done, ndone, err)) != CD_OK)
            return st;
        done[ndone++] = day;
    }
    return CD_OK;
}
