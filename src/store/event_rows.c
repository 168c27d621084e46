/* event_rows.c -- the batch's new events, copied into events; see store.h. */
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

cd_status_t cd_store_write_events(cd_store_t *s, const cd_batch_t *batch, cd_store_result_t *r,
                                  cd_err_t *err)
{
    cd_row_text_t t;
    cd_status_t st;

    for (size_t i = 0; i < batch->count; i++) {
        const cd_record_t *rec = &batch->records[i];
        if (rec->valid) {
            r->duplicates += rec->duplicate;
            r->inserted += !rec->duplicate;
            r->unknown_scenarios += !rec->duplicate && !rec->event.scenario_known;
        }
    }
    if (!r->inserted)
        return CD_OK;
    if ((st = cd_copy_begin(&s->copy, "events (" EVENT_COLUMNS ")", err)) != CD_OK)
        return cd_store_fail(s, st);
    for (size_t i = 0; i < batch->count && st == CD_OK; i++) {
        const cd_record_t *rec = &batch->records[i];
        if (!rec->valid || rec->duplicate)
            continue;
        event_row(rec, &t);
        st = cd_copy_row(&s->copy, t.v, EVENT_NCOLS, err);
    }
    return cd_store_fail(s, cd_copy_end(&s->copy, st, err));
}
