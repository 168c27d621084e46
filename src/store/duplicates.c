/* duplicates.c -- the events of a batch that are stored already; see store.h. */
#include <stdlib.h>
#include <string.h>

#include "convdiag/timeutil.h"
#include "store_private.h"

/*
 * $1/$2: eventIds and their times, as arrays; returns the positions of those
 * stored.  Pairs, so that each probe is pruned to one day's partition; a
 * LATERAL probe, so that the plan is one index probe per event whatever the
 * planner thinks of the tables' sizes (as a join or EXISTS, its custom
 * plans took three times as long).
 */
const cd_store_statement_t cd_store_duplicate_statements[] = {
    {"stored_event_ids",
     "SELECT k.n FROM unnest($1::text[], $2::timestamptz[]) WITH ORDINALITY AS k(id, t, n) "
     "CROSS JOIN LATERAL (SELECT 1 FROM events AS e "
     "WHERE e.event_id = k.id AND e.event_time = k.t LIMIT 1) AS stored",
     2},
};
const size_t cd_store_duplicate_statements_count = CD_ARRAY_LEN(cd_store_duplicate_statements);

cd_status_t cd_store_mark_duplicates(cd_store_t *s, cd_batch_t *batch, bool check_stored,
                                     cd_err_t *err)
{
    char t[CD_TIME_UTC_MAX + 1];
    size_t n = 0;

    /* All keys first: the map borrows them, and the buffer moves as it grows. */
    cd_buf_reset(&s->keys);
    for (size_t i = 0; i < batch->count; i++) {
        const cd_record_t *rec = &batch->records[i];
        if (rec->valid) {
            char ts[24];
            size_t ts_len = cd_write_i64(ts, rec->event.ts_us);
            cd_buf_puts(&s->keys, rec->event.event_id);
            cd_buf_putc(&s->keys, '\x1f');
            cd_buf_append(&s->keys, ts, ts_len + 1); /* with its NUL: keys are NUL-separated */
        }
    }
    if (batch->count > s->probe_cap) {
        size_t *p = realloc(s->probe, batch->count * sizeof(*p));
        if (!p)
            return cd_err_set(err, CD_RETRY, "out of memory checking duplicates");
        s->probe = p;
        s->probe_cap = batch->count;
    }
    if (s->keys.oom)
        return cd_err_set(err, CD_RETRY, "out of memory checking duplicates");

    cd_strmap_clear(&s->seen);
    cd_buf_reset(&s->ids);
    cd_buf_reset(&s->times);
    const char *key = s->keys.data;
    for (size_t i = 0; i < batch->count; i++) {
        cd_record_t *rec = &batch->records[i];
        if (!rec->valid)
            continue;
        int added = cd_strmap_add(&s->seen, key, i, NULL);
        key += strlen(key) + 1;
        if (added < 0)
            return cd_err_set(err, CD_RETRY, "out of memory checking duplicates");
        rec->duplicate = added == 0;
        if (added && check_stored) {
            cd_array_put(&s->ids, rec->event.event_id);
            cd_time_format_utc(rec->event.ts_us, 6, t, sizeof(t));
            cd_array_put(&s->times, t);
            s->probe[n++] = i;
        }
    }
    if (!check_stored || n == 0)
        return CD_OK;
    cd_array_close(&s->ids);
    cd_array_close(&s->times);
    if (s->ids.oom || s->times.oom)
        return cd_err_set(err, CD_RETRY, "out of memory checking duplicates");
    const char *vals[2] = {s->ids.data, s->times.data};
    PGresult *res = NULL;
    cd_status_t st = cd_store_query(s, "stored_event_ids", 2, vals, &res, err);
    if (st != CD_OK)
        return st;
    for (int r = 0; r < PQntuples(res); r++) {
        size_t k = (size_t)strtoull(PQgetvalue(res, r, 0), NULL, 10);
        if (k >= 1 && k <= n)
            batch->records[s->probe[k - 1]].duplicate = true;
    }
    PQclear(res);
    return CD_OK;
}
