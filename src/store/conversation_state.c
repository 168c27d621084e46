/*
 * conversation_state.c -- conversation rows and their scenario runs: loaded
 * into the tag state when a writer does not hold them, written back after
 * the tagger changed them; see store.h.
 *
 * Every statement is a set of index probes, whatever the tables' sizes and
 * whether they were ever analyzed: lookups are LATERAL probes by key over
 * an array of ids (with a LIMIT or an OFFSET, which keeps the planner from
 * flattening them into a join it might hash), and the writes one upsert of
 * arrays whose conflict arbiter is the primary key.  None of them can become
 * a scan of a table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_private.h"

#define CONVERSATION_COLUMNS                                                                 \
    "live_work_item_id, organization_id, channel_type, operation_id, first_event_time, "    \
    "last_event_time, outcome, outcome_time, closed_time, event_count, started_count, "     \
    "completed_count, failed_count, unknown_scenario_count, version"
#define CONVERSATION_NCOLS 15

#define RUN_COLUMNS                                                                          \
    "run_id, live_work_item_id, scenario, category, state, start_event_id, start_time, "    \
    "end_event_id, end_time, end_status, duration_ms, duration_source, stale"
#define RUN_NCOLS 13

#define US(col) "(extract(epoch FROM " col ") * 1000000)::bigint"

#define LOAD_CONVERSATIONS(lock)                                                             \
    "SELECT c.live_work_item_id, c.organization_id, c.channel_type, c.operation_id, "       \
    US("c.first_event_time") ", " US("c.last_event_time") ", c.outcome, "                   \
    US("c.outcome_time") ", " US("c.closed_time") ", c.event_count, c.started_count, "       \
    "c.completed_count, c.failed_count, c.unknown_scenario_count, c.version "               \
    "FROM unnest($1::text[]) AS k(id) CROSS JOIN LATERAL (SELECT * FROM conversations "     \
    "WHERE live_work_item_id = k.id LIMIT 1" lock ") AS c"

const cd_store_statement_t cd_store_state_statements[] = {
    {"load_conversations", LOAD_CONVERSATIONS(""), 1},
    /* The ids come sorted: rows are locked in that order. */
    {"load_conversations_locked", LOAD_CONVERSATIONS(" FOR UPDATE"), 1},
    {"load_runs",
     "SELECT r.run_id, r.live_work_item_id, r.scenario, r.category, r.state, "
     "r.start_event_id, " US("r.start_time") ", r.end_event_id, " US("r.end_time") ", "
     "r.end_status, r.duration_ms, r.duration_source, r.stale "
     "FROM unnest($1::text[]) AS k(id) CROSS JOIN LATERAL (SELECT * FROM scenario_runs "
     "WHERE live_work_item_id = k.id AND state IN ('open', 'unpaired') OFFSET 0) AS r "
     "ORDER BY r.run_id",
     1},
    /*
     * The conversations and the runs a batch changed, in one statement: new
     * rows are inserted, stored ones updated, by primary key.  A
     * conversation changed since it was loaded has another version: it is
     * left alone, and the count returned tells (the transaction is then
     * rolled back, the runs with it).  In liveWorkItemId order, so that two
     * writers lock conversations in the same order.
     */
    {"write_state",
     "WITH c AS (INSERT INTO conversations (" CONVERSATION_COLUMNS ") SELECT * FROM unnest("
     "$1::text[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[], "
     "$7::text[], $8::timestamptz[], $9::timestamptz[], $10::bigint[], $11::bigint[], "
     "$12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[]) AS u ORDER BY 1 "
     "ON CONFLICT (live_work_item_id) DO UPDATE SET "
     "organization_id = EXCLUDED.organization_id, channel_type = EXCLUDED.channel_type, "
     "operation_id = EXCLUDED.operation_id, first_event_time = EXCLUDED.first_event_time, "
     "last_event_time = EXCLUDED.last_event_time, outcome = EXCLUDED.outcome, "
     "outcome_time = EXCLUDED.outcome_time, closed_time = EXCLUDED.closed_time, "
     "event_count = EXCLUDED.event_count, started_count = EXCLUDED.started_count, "
     "completed_count = EXCLUDED.completed_count, failed_count = EXCLUDED.failed_count, "
     "unknown_scenario_count = EXCLUDED.unknown_scenario_count, version = EXCLUDED.version, "
     "updated_at = now() WHERE conversations.version = EXCLUDED.version - 1 RETURNING 1), "
     "runs AS (SELECT * FROM unnest("
     "$16::bigint[], $17::text[], $18::text[], $19::text[], $20::text[], $21::text[], "
     "$22::timestamptz[], $23::text[], $24::timestamptz[], $25::text[], $26::bigint[], "
     "$27::text[], $28::boolean[], $29::boolean[]) AS u(" RUN_COLUMNS ", stored)), "
     /* New runs have ids of their own: a plain insert, no conflict to look for. */
     "n AS (INSERT INTO scenario_runs (" RUN_COLUMNS ") SELECT " RUN_COLUMNS " FROM runs "
     "WHERE NOT stored RETURNING 1), "
     "r AS (INSERT INTO scenario_runs (" RUN_COLUMNS ") SELECT " RUN_COLUMNS " FROM runs "
     "WHERE stored ON CONFLICT (run_id) DO UPDATE SET state = EXCLUDED.state, "
     "start_event_id = EXCLUDED.start_event_id, start_time = EXCLUDED.start_time, "
     "end_event_id = EXCLUDED.end_event_id, end_time = EXCLUDED.end_time, "
     "end_status = EXCLUDED.end_status, duration_ms = EXCLUDED.duration_ms, "
     "duration_source = EXCLUDED.duration_source, stale = EXCLUDED.stale, updated_at = now() "
     "RETURNING 1) "
     "SELECT (SELECT count(*) FROM c), (SELECT count(*) FROM n) + (SELECT count(*) FROM r)",
     CONVERSATION_NCOLS + RUN_NCOLS + 1},
    /* A block of ids: the sequence steps by the block's size (migration 0011),
     * and each value it gives starts a block no one else gets. */
    {"take_run_ids",
     "SELECT nextval(q.seq), s.seqincrement FROM (SELECT pg_get_serial_sequence("
     "'scenario_runs', 'run_id')::regclass AS seq) AS q JOIN pg_sequence AS s "
     "ON s.seqrelid = q.seq",
     0},
};
const size_t cd_store_state_statements_count = CD_ARRAY_LEN(cd_store_state_statements);

/* ---- loading ----------------------------------------------------------- */

static int64_t get_i64(const PGresult *res, int row, int col, int64_t null_value)
{
    return PQgetisnull(res, row, col) ? null_value : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* A copy of a column's text (NULL for SQL NULL); *oom set if it cannot be made. */
static char *get_str(const PGresult *res, int row, int col, bool *oom)
{
    if (PQgetisnull(res, row, col))
        return NULL;
    char *s = strdup(PQgetvalue(res, row, col));
    *oom |= !s;
    return s;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* s->ids = the batch's conversations st lacks, as a sorted array literal;
 * *n gets how many. */
static cd_status_t list_misses(cd_store_t *s, const cd_batch_t *batch, const cd_tag_state_t *st,
                               size_t *n, cd_err_t *err)
{
    const char **lwis = NULL;
    size_t count = 0;

    cd_strmap_clear(&s->seen);
    for (size_t i = 0; i < batch->count; i++) {
        const cd_record_t *rec = &batch->records[i];
        if (!rec->valid || rec->duplicate || cd_tag_state_find(st, rec->event.live_work_item_id))
            continue;
        int added = cd_strmap_add(&s->seen, rec->event.live_work_item_id, i, NULL);
        if (added < 0)
            return cd_err_set(err, CD_RETRY, "out of memory listing conversations");
        count += (size_t)added;
    }
    *n = count;
    cd_buf_reset(&s->ids);
    if (!count)
        return CD_OK;
    if (!(lwis = malloc(count * sizeof(*lwis))))
        return cd_err_set(err, CD_RETRY, "out of memory listing conversations");
    for (size_t i = 0, k = 0; i < s->seen.cap && k < count; i++)
        if (s->seen.keys[i])
            lwis[k++] = s->seen.keys[i];
    qsort(lwis, count, sizeof(*lwis), cmp_str);
    for (size_t i = 0; i < count; i++)
        cd_array_put(&s->ids, lwis[i]);
    cd_array_close(&s->ids);
    free(lwis);
    return s->ids.oom ? cd_err_set(err, CD_RETRY, "out of memory listing conversations") : CD_OK;
}

static bool load_conversation_row(cd_tag_state_t *st, const PGresult *res, int r)
{
    bool oom = false;
    cd_conversation_t *c = cd_tag_state_add(st, PQgetvalue(res, r, 0));
    if (!c)
        return false;
    c->stored = true;
    c->organization_id = get_str(res, r, 1, &oom);
    c->channel_type = get_str(res, r, 2, &oom);
    c->operation_id = get_str(res, r, 3, &oom);
    c->first_us = get_i64(res, r, 4, CD_NO_TIME);
    c->last_us = get_i64(res, r, 5, CD_NO_TIME);
    c->outcome = get_str(res, r, 6, &oom);
    c->outcome_us = get_i64(res, r, 7, CD_NO_TIME);
    c->closed_us = get_i64(res, r, 8, CD_NO_TIME);
    c->events = get_i64(res, r, 9, 0);
    c->started = get_i64(res, r, 10, 0);
    c->completed = get_i64(res, r, 11, 0);
    c->failed = get_i64(res, r, 12, 0);
    c->unknown_scenarios = get_i64(res, r, 13, 0);
    c->version = get_i64(res, r, 14, 0);
    return !oom;
}

static bool load_run_row(cd_tag_state_t *st, const PGresult *res, int r)
{
    bool oom = false;
    cd_conversation_t *c = cd_tag_state_find(st, PQgetvalue(res, r, 1));
    cd_run_t *run = c ? cd_conversation_add_run(c) : NULL;
    if (!run)
        return false;
    run->run_id = get_i64(res, r, 0, 0);
    run->stored = true;
    run->scenario = get_str(res, r, 2, &oom);
    run->category = get_str(res, r, 3, &oom);
    run->state = (cd_run_state_t)cd_run_state_parse(PQgetvalue(res, r, 4));
    run->start_event_id = get_str(res, r, 5, &oom);
    run->start_us = get_i64(res, r, 6, CD_NO_TIME);
    run->end_event_id = get_str(res, r, 7, &oom);
    run->end_us = get_i64(res, r, 8, CD_NO_TIME);
    run->end_failed = !PQgetisnull(res, r, 9) && strcmp(PQgetvalue(res, r, 9), "Failed") == 0;
    run->duration_ms = get_i64(res, r, 10, -1);
    run->source_duration_ms =
        !PQgetisnull(res, r, 11) && strcmp(PQgetvalue(res, r, 11), "source") == 0
            ? run->duration_ms
            : -1;
    run->stale = strcmp(PQgetvalue(res, r, 12), "t") == 0;
    return !oom && run->scenario && run->category;
}

cd_status_t cd_store_load_state(cd_store_t *s, const cd_batch_t *batch, cd_tag_state_t *st,
                                bool lock, cd_err_t *err)
{
    PGresult *res = NULL;
    size_t n;
    cd_status_t rc;

    if ((rc = list_misses(s, batch, st, &n, err)) != CD_OK || n == 0)
        return cd_store_fail(s, rc);
    const char *ids = s->ids.data;
    if ((rc = cd_store_query(s, lock ? "load_conversations_locked" : "load_conversations", 1,
                             &ids, &res, err)) != CD_OK)
        return rc;
    int found = PQntuples(res);
    for (int r = 0; r < found; r++)
        if (!load_conversation_row(st, res, r))
            goto oom;
    PQclear(res);
    res = NULL;
    /* New conversations have no runs: only those found are looked up. */
    if (found == 0)
        return CD_OK;
    if ((rc = cd_store_query(s, "load_runs", 1, &ids, &res, err)) != CD_OK)
        return rc;
    for (int r = 0; r < PQntuples(res); r++)
        if (!load_run_row(st, res, r))
            goto oom;
    PQclear(res);
    return CD_OK;

oom:
    PQclear(res);
    return cd_store_fail(s, cd_err_set(err, CD_RETRY, "out of memory loading conversation state"));
}

/* ---- writing ----------------------------------------------------------- */

static void conversation_row(const cd_conversation_t *c, cd_row_text_t *t)
{
    const char *v[CONVERSATION_NCOLS] = {
        c->live_work_item_id, c->organization_id, c->channel_type, c->operation_id,
        cd_row_time(t, 4, c->first_us), cd_row_time(t, 5, c->last_us), c->outcome,
        c->outcome ? cd_row_time(t, 7, c->outcome_us) : NULL, cd_row_time(t, 8, c->closed_us),
        cd_row_int(t, 9, c->events), cd_row_int(t, 10, c->started),
        cd_row_int(t, 11, c->completed), cd_row_int(t, 12, c->failed),
        cd_row_int(t, 13, c->unknown_scenarios), cd_row_int(t, 14, c->version + 1),
    };
    memcpy(t->v, v, sizeof(v));
}

/* A run's columns, then whether a row of it is stored already. */
static void run_row(const cd_conversation_t *c, const cd_run_t *r, cd_row_text_t *t)
{
    bool ended = r->end_event_id != NULL;
    const char *v[RUN_NCOLS + 1] = {
        cd_row_int(t, 0, r->run_id), c->live_work_item_id, r->scenario, r->category,
        cd_run_state_name(r->state), r->start_event_id,
        r->start_event_id ? cd_row_time(t, 6, r->start_us) : NULL, r->end_event_id,
        ended ? cd_row_time(t, 8, r->end_us) : NULL,
        ended ? (r->end_failed ? "Failed" : "Completed") : NULL,
        r->duration_ms >= 0 ? cd_row_int(t, 10, r->duration_ms) : NULL,
        r->duration_ms < 0 ? NULL : r->source_duration_ms >= 0 ? "source" : "pair",
        r->stale ? "t" : "f", r->stored ? "t" : "f",
    };
    memcpy(t->v, v, sizeof(v));
}

/* Gives every new run of the touched conversations its id, from the block
 * of ids taken last, and a new block whenever that one runs out. */
static cd_status_t give_run_ids(cd_store_t *s, const cd_tag_state_t *st, cd_err_t *err)
{
    cd_status_t rc;

    for (size_t i = 0; i < st->touched_count; i++) {
        cd_conversation_t *c = st->touched[i];
        for (size_t k = 0; k < c->runs_count; k++) {
            if (c->runs[k].run_id != 0)
                continue;
            if (s->run_ids_left == 0) {
                PGresult *res = NULL;
                if ((rc = cd_store_query(s, "take_run_ids", 0, NULL, &res, err)) != CD_OK)
                    return rc;
                s->run_id_next = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
                s->run_ids_left = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
                PQclear(res);
                if (s->run_ids_left < 1)
                    s->run_ids_left = 1; /* a sequence stepping down: one id a value */
            }
            c->runs[k].run_id = s->run_id_next++;
            s->run_ids_left--;
        }
    }
    return CD_OK;
}

/* Appends a row's fields to the arrays of its columns, one array each. */
static void put_row(cd_buf_t *cols, const char *const *v, int n)
{
    for (int i = 0; i < n; i++)
        cd_array_put_value(&cols[i], v[i]);
}

cd_status_t cd_store_write_state(cd_store_t *s, cd_tag_state_t *st, cd_store_result_t *r,
                                 cd_err_t *err)
{
    enum { NCOLS = CONVERSATION_NCOLS + RUN_NCOLS + 1 };
    cd_row_text_t t;
    cd_status_t rc;

    if (!st->touched_count)
        return CD_OK;
    if ((rc = give_run_ids(s, st, err)) != CD_OK)
        return rc;
    for (int i = 0; i < NCOLS; i++)
        cd_buf_reset(&s->cols[i]);
    for (size_t i = 0; i < st->touched_count; i++) {
        const cd_conversation_t *c = st->touched[i];
        conversation_row(c, &t);
        put_row(s->cols, t.v, CONVERSATION_NCOLS);
        for (size_t k = 0; k < c->runs_count; k++) {
            if (!c->runs[k].dirty)
                continue;
            run_row(c, &c->runs[k], &t);
            put_row(s->cols + CONVERSATION_NCOLS, t.v, RUN_NCOLS + 1);
        }
    }
    const char *vals[NCOLS];
    bool oom = false;
    for (int i = 0; i < NCOLS; i++) {
        cd_array_close(&s->cols[i]);
        oom |= s->cols[i].oom;
        vals[i] = s->cols[i].data;
    }
    if (oom)
        return cd_store_fail(s, cd_err_set(err, CD_RETRY, "out of memory writing state"));
    PGresult *res = NULL;
    if ((rc = cd_store_query(s, "write_state", NCOLS, vals, &res, err)) != CD_OK)
        return rc;
    size_t written = (size_t)strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    r->runs = (size_t)strtoull(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    r->conversations = written;
    if (written != st->touched_count) {
        s->failure = CD_STORE_CONFLICT;
        return cd_err_set(err, CD_RETRY,
                          "%zu of %zu conversations were changed by another writer since they "
                          "were loaded",
                          st->touched_count - written, st->touched_count);
    }
    return CD_OK;
}
