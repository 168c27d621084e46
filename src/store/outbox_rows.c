/* outbox_rows.c -- the export outbox rows naming a batch's new events; see store.h. */
#include <stdint.h>

#include "store_private.h"

/* One outbox row: the ids gathered in s->ids and their time range; empties s->ids. */
static cd_status_t put_row(cd_store_t *s, int64_t first_us, int64_t last_us, cd_err_t *err)
{
    cd_row_text_t t;

    cd_array_close(&s->ids);
    if (s->ids.oom)
        return cd_err_set(err, CD_RETRY, "out of memory listing events for the outbox");
    const char *v[3] = {s->ids.data, cd_row_time(&t, 1, first_us), cd_row_time(&t, 2, last_us)};
    cd_status_t st = cd_copy_row(&s->copy, v, 3, err);
    cd_buf_reset(&s->ids);
    return st;
}

/*
 * Names the batch's new events in the outbox, outbox_group_max to a row,
 * each row with the time range of its events.  Rows are formed here and
 * copied: the server only stores them.
 */
cd_status_t cd_store_write_outbox(cd_store_t *s, const cd_batch_t *batch, cd_err_t *err)
{
    int64_t first_us = INT64_MAX, last_us = INT64_MIN;
    size_t n = 0;
    cd_status_t st;

    if (!s->outbox_group_max)
        return CD_OK;
    for (size_t i = 0; i < batch->count && !n; i++)
        n = batch->records[i].valid && !batch->records[i].duplicate;
    if (!n)
        return CD_OK;
    if ((st = cd_copy_begin(&s->copy, "export_outbox (event_ids, first_event_time, "
                                      "last_event_time)", err)) != CD_OK)
        return cd_store_fail(s, st);
    cd_buf_reset(&s->ids);
    n = 0;
    for (size_t i = 0; i < batch->count && st == CD_OK; i++) {
        const cd_record_t *rec = &batch->records[i];
        if (!rec->valid || rec->duplicate)
            continue;
        cd_array_put(&s->ids, rec->event.event_id);
        first_us = rec->event.ts_us < first_us ? rec->event.ts_us : first_us;
        last_us = rec->event.ts_us > last_us ? rec->event.ts_us : last_us;
        if (++n == s->outbox_group_max) {
            st = put_row(s, first_us, last_us, err);
            first_us = INT64_MAX;
            last_us = INT64_MIN;
            n = 0;
        }
    }
    if (n && st == CD_OK)
        st = put_row(s, first_us, last_us, err);
    return cd_store_fail(s, cd_copy_end(&s->copy, st, err));
}
