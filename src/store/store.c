/*
 * store.c -- writes batches to PostgreSQL; see store.h.
 *
 * Before the batch's transaction, the partitions of events for the batch's
 * days are made to exist (partitions.c; each created in a short transaction
 * of its own, as creating one locks the whole table), and events of days
 * retention no longer keeps become dead letters.  Then one batch, one
 * transaction:
 *   1. lock the batch's conversations (advisory locks, in hash order, so two
 *      instances touching the same conversations queue instead of deadlock);
 *   2. mark duplicates: the same eventId and timestamp (the key of events)
 *      seen earlier in the batch or already stored;
 *   3. load the state of those conversations (their row, open and unpaired runs);
 *   4. tag the new events and update that state (tagging.h, pure C);
 *   5. COPY the new events, upsert conversations, insert and update runs,
 *      name the new events in the export outbox, insert dead letters; commit.
 * If PostgreSQL refuses a value (a data or integrity error), the offending
 * rows are found one by one under savepoints in a throw-away transaction,
 * moved to dead_letters, and the batch is written again without them.
 */
#include "convdiag/store.h"

#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convdiag/buf.h"
#include "convdiag/log.h"
#include "convdiag/strmap.h"
#include "convdiag/timeutil.h"
#include "pg_error.h"

#define EVENT_COLUMNS                                                                          \
    "event_id, event_time, organization_id, live_work_item_id, scenario, scenario_received, " \
    "category, status, channel_type, participant_type, user_id, session_id, transaction_id, " \
    "traceparent, tracestate, duration_ms, failure_reason, attributes, kafka_topic, "         \
    "kafka_partition, kafka_offset, operation_id, operation_id_source, kafka_traceparent, "   \
    "kafka_tracestate"
#define EVENT_NCOLS 25

#define CONVERSATION_COLUMNS                                                                 \
    "live_work_item_id, organization_id, channel_type, operation_id, first_event_time, "    \
    "last_event_time, outcome, outcome_time, closed_time, event_count, started_count, "     \
    "completed_count, failed_count, unknown_scenario_count"
#define CONVERSATION_NCOLS 14

#define RUN_COLUMNS                                                                          \
    "live_work_item_id, scenario, category, state, start_event_id, start_time, end_event_id, " \
    "end_time, end_status, duration_ms, duration_source, stale"
#define RUN_NCOLS 12

/* An id list as one parameter: ids never contain control characters (event.c). */
#define ID_LIST "string_to_array($1, E'\\n')"

static const struct statement {
    const char *name;
    const char *sql;
    int nparams;
} statements[] = {
    {"insert_event",
     "INSERT INTO events (" EVENT_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
     "$11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)",
     EVENT_NCOLS},
    {"insert_dead_letter",
     "INSERT INTO dead_letters (kafka_topic, kafka_partition, kafka_offset, message_key, "
     "payload, reason, kafka_timestamp, kafka_traceparent, kafka_tracestate) "
     "VALUES ($1, $2, $3, $4, $5, $6, to_timestamp($7::double precision / 1000), $8, $9) "
     "ON CONFLICT (kafka_topic, kafka_partition, kafka_offset) DO NOTHING",
     9},
    {"lock_conversations",
     "SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT hashtextextended(x, 0) AS h "
     "FROM unnest(" ID_LIST ") AS x) AS s ORDER BY h",
     1},
    /* $1/$2: eventIds and their times; returns the positions of those stored.
     * Pairs, so that each probe is pruned to one day's partition.  A LATERAL
     * probe: written as a join or EXISTS, the planner's custom plans took three
     * times as long (60 ms instead of 20 for 5000 pairs over 40 partitions). */
    {"stored_event_ids",
     "SELECT k.n FROM unnest(" ID_LIST ", string_to_array($2, E'\\n')::timestamptz[]) "
     "WITH ORDINALITY AS k(id, t, n) CROSS JOIN LATERAL (SELECT 1 FROM events AS e "
     "WHERE e.event_id = k.id AND e.event_time = k.t LIMIT 1) AS stored",
     2},
    /* $1/$2: scenarios with their own stale time (newline-separated, ms); $3: the default. */
    {"sweep_stale",
     "UPDATE scenario_runs AS r SET stale = true, updated_at = now() "
     "WHERE state = 'open' AND NOT stale AND start_time < now() - make_interval(secs => "
     "coalesce((SELECT o.ms FROM unnest(" ID_LIST ", string_to_array($2, E'\\n')::bigint[]) "
     "AS o(scenario, ms) WHERE o.scenario = r.scenario), $3::bigint) / 1000.0)",
     3},
    {"load_conversations",
     "SELECT live_work_item_id, organization_id, channel_type, operation_id, "
     "(extract(epoch FROM first_event_time) * 1000000)::bigint, "
     "(extract(epoch FROM last_event_time) * 1000000)::bigint, outcome, "
     "(extract(epoch FROM outcome_time) * 1000000)::bigint, "
     "(extract(epoch FROM closed_time) * 1000000)::bigint, event_count, started_count, "
     "completed_count, failed_count, unknown_scenario_count "
     "FROM conversations WHERE live_work_item_id = ANY(" ID_LIST ")",
     1},
    {"load_runs",
     "SELECT run_id, live_work_item_id, scenario, category, state, start_event_id, "
     "(extract(epoch FROM start_time) * 1000000)::bigint, end_event_id, "
     "(extract(epoch FROM end_time) * 1000000)::bigint, end_status, duration_ms, "
     "duration_source, stale FROM scenario_runs "
     "WHERE live_work_item_id = ANY(" ID_LIST ") AND state IN ('open', 'unpaired') "
     "ORDER BY run_id",
     1},
};

struct cd_store {
    PGconn *conn;
    char *conninfo;
    const cd_tagger_conf_t *tc;
    bool ready;       /* connected, staging tables and statements prepared */
    char sqlstate[6]; /* of the last failure, "" when it had none */
    cd_buf_t copy;    /* COPY data not sent yet */
    char copy_sql[512]; /* the COPY in progress, for messages */
    cd_buf_t ids;     /* newline-separated id lists */
    cd_buf_t times;   /* newline-separated event times, beside ids */
    size_t outbox_group_max; /* eventIds per outbox row; 0: no outbox */
    cd_strmap_t seen; /* eventIds (with their times, for duplicates) of the batch */
    cd_buf_t keys;    /* "eventId\x1f<time>" keys of seen, NUL-separated */
    size_t *probe;    /* record of each eventId looked up, by position */
    size_t probe_cap;
    int retention_days; /* 0: keep forever */
    int future_max_days; /* 0: no limit */
    int64_t *days;      /* days whose partition is known to exist */
    size_t days_count, days_cap;
    /* Look up the batch's eventIds before writing?  Only needed while replays
     * are likely (after a start, after a batch that had duplicates); otherwise
     * the primary key tells us, at no cost, by refusing the COPY. */
    bool check_stored;
    cd_tag_state_t state;
};

/* ---- errors ----------------------------------------------------------- */

/* Data exceptions (22) and integrity violations (23) belong to a row, not to the batch. */
static bool sqlstate_is_row_error(const char *state)
{
    return strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0;
}

/* Classifies a failed result, fills err, clears the result. */
static cd_status_t fail(cd_store_t *s, PGresult *res, const char *what, cd_err_t *err)
{
    char msg[CD_ERR_MAX];
    snprintf(s->sqlstate, sizeof(s->sqlstate), "%s", cd_pg_sqlstate(res));
    cd_status_t st = PQstatus(s->conn) != CONNECTION_OK || cd_pg_is_transient(s->sqlstate)
                         ? CD_RETRY
                         : CD_ERROR;
    cd_err_set(err, st, "%s failed: %s", what, cd_pg_error(s->conn, res, msg, sizeof(msg)));
    PQclear(res);
    if (PQstatus(s->conn) != CONNECTION_OK)
        s->ready = false;
    return st;
}

static cd_status_t exec_ok(cd_store_t *s, const char *sql, cd_err_t *err)
{
    PGresult *res = PQexec(s->conn, sql);
    ExecStatusType rs = PQresultStatus(res);
    if (rs == PGRES_COMMAND_OK || rs == PGRES_TUPLES_OK) {
        PQclear(res);
        return CD_OK;
    }
    return fail(s, res, sql, err);
}

/* Runs a prepared statement with one id-list parameter; *out gets the result rows. */
static cd_status_t query_ids(cd_store_t *s, const char *stmt, PGresult **out, cd_err_t *err)
{
    const char *param = s->ids.data ? s->ids.data : "";
    PGresult *res = PQexecPrepared(s->conn, stmt, 1, &param, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return fail(s, res, stmt, err);
    if (out)
        *out = res;
    else
        PQclear(res);
    return CD_OK;
}

/* ---- connection ------------------------------------------------------- */

static cd_status_t ensure_ready(cd_store_t *s, cd_err_t *err)
{
    if (s->ready && PQstatus(s->conn) == CONNECTION_OK)
        return CD_OK;
    s->ready = false;
    if (s->conn)
        PQfinish(s->conn);

    if (cd_pg_connect(s->conninfo, "convdiag", &s->conn, err) != CD_OK) {
        s->sqlstate[0] = '\0';
        return CD_RETRY;
    }
    cd_status_t st;
    if ((st = exec_ok(s,
                      "CREATE TEMP TABLE conversations_stage (LIKE conversations INCLUDING "
                      "DEFAULTS) ON COMMIT DELETE ROWS",
                      err)) != CD_OK ||
        (st = exec_ok(s,
                      "CREATE TEMP TABLE runs_stage (LIKE scenario_runs INCLUDING DEFAULTS) "
                      "ON COMMIT DELETE ROWS",
                      err)) != CD_OK)
        return st;
    for (size_t i = 0; i < CD_ARRAY_LEN(statements); i++) {
        PGresult *res = PQprepare(s->conn, statements[i].name, statements[i].sql,
                                  statements[i].nparams, NULL);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            return fail(s, res, statements[i].name, err);
        PQclear(res);
    }
    s->ready = true;
    return CD_OK;
}

cd_store_t *cd_store_new(const char *conninfo, const cd_tagger_conf_t *tc)
{
    cd_store_t *s = calloc(1, sizeof(*s));
    if (!s || !(s->conninfo = strdup(conninfo ? conninfo : ""))) {
        free(s);
        return NULL;
    }
    s->tc = tc;
    s->check_stored = true;
    cd_buf_init(&s->copy);
    cd_buf_init(&s->ids);
    cd_buf_init(&s->times);
    cd_buf_init(&s->keys);
    cd_strmap_init(&s->seen);
    cd_tag_state_init(&s->state);
    return s;
}

void cd_store_set_outbox(cd_store_t *s, size_t group_max) { s->outbox_group_max = group_max; }

void cd_store_partitions_set_window(cd_store_t *s, int retention_days, int future_max_days)
{
    s->retention_days = retention_days;
    s->future_max_days = future_max_days;
}

cd_status_t cd_store_connect(cd_store_t *s, cd_err_t *err)
{
    cd_err_t why;
    cd_status_t st = ensure_ready(s, &why);
    if (st == CD_OK)
        return CD_OK;
    return cd_err_set(err, st, "%s%s", why.msg,
                      st == CD_ERROR && strcmp(s->sqlstate, "42P01") == 0
                          ? " (has `convdiag migrate` been run?)"
                          : "");
}

void cd_store_free(cd_store_t *s)
{
    if (!s)
        return;
    if (s->conn)
        PQfinish(s->conn);
    cd_buf_fini(&s->copy);
    cd_buf_fini(&s->ids);
    cd_buf_fini(&s->times);
    cd_buf_fini(&s->keys);
    free(s->probe);
    free(s->days);
    cd_strmap_fini(&s->seen);
    cd_tag_state_fini(&s->state);
    free(s->conninfo);
    free(s);
}

/* ---- row text --------------------------------------------------------- */

/* COPY text format: backslash escapes for the characters that delimit rows and columns. */
/* COPY text format: the bytes a field's text must escape, and as what. */
static const char copy_escape[256] = {['\\'] = '\\', ['\t'] = 't', ['\n'] = 'n', ['\r'] = 'r'};

static void copy_field(cd_buf_t *b, const char *v)
{
    if (!v) {
        cd_buf_append(b, "\\N", 2);
        return;
    }
    /* Room for the worst case at once, so the loop writes without checks:
     * formatting rows is most of the ingest's own CPU time. */
    size_t len = strlen(v);
    char *o = len <= SIZE_MAX / 2 ? cd_buf_reserve(b, 2 * len) : NULL;
    if (!o) {
        b->oom = true;
        return;
    }
    char *p = o;
    for (; *v; v++) {
        char e = copy_escape[(unsigned char)*v];
        if (!e) {
            *p++ = *v;
            continue;
        }
        *p++ = '\\';
        *p++ = e;
    }
    cd_buf_commit(b, (size_t)(p - o));
}

static void copy_row(cd_buf_t *b, const char *const *v, int n)
{
    for (int c = 0; c < n; c++) {
        if (c)
            cd_buf_putc(b, '\t');
        copy_field(b, v[c]);
    }
    cd_buf_putc(b, '\n');
}

/* Scratch space for numbers and times as text; one slot per column. */
typedef struct row_text {
    const char *v[EVENT_NCOLS];
    char num[EVENT_NCOLS][40];
} row_text_t;

static const char *fmt_time(row_text_t *t, int col, int64_t us)
{
    if (us == CD_NO_TIME)
        return NULL;
    cd_time_format_utc(us, 6, t->num[col], sizeof(t->num[col]));
    return t->num[col];
}

/* v in decimal at out (room for 21 bytes); returns the length.  Not
 * snprintf: a row has several numbers and rows come by the thousand. */
static size_t write_i64(char *out, int64_t v)
{
    char tmp[20];
    uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
    size_t n = 0, len = 0;

    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        out[len++] = '-';
    while (n)
        out[len++] = tmp[--n];
    out[len] = '\0';
    return len;
}

static const char *fmt_int(row_text_t *t, int col, long long v)
{
    write_i64(t->num[col], v);
    return t->num[col];
}

static void event_row(const cd_record_t *rec, row_text_t *t)
{
    const cd_event_t *ev = &rec->event;
    const char *v[EVENT_NCOLS] = {
        ev->event_id, fmt_time(t, 1, ev->ts_us), ev->organization_id, ev->live_work_item_id,
        ev->scenario, ev->scenario_received, ev->category, cd_event_status_name(ev->status),
        ev->channel_type, ev->participant_type, ev->user_id, ev->session_id,
        ev->transaction_id, ev->traceparent, ev->tracestate,
        ev->duration_ms >= 0 ? fmt_int(t, 15, ev->duration_ms) : NULL, ev->failure_reason,
        ev->attributes_json, rec->topic, fmt_int(t, 19, rec->partition),
        fmt_int(t, 20, rec->offset), rec->tags.operation_id,
        cd_opid_source_name(rec->tags.source), rec->header_traceparent, rec->header_tracestate,
    };
    memcpy(t->v, v, sizeof(v));
}

static void conversation_row(const cd_conversation_t *c, row_text_t *t)
{
    const char *v[CONVERSATION_NCOLS] = {
        c->live_work_item_id, c->organization_id, c->channel_type, c->operation_id,
        fmt_time(t, 4, c->first_us), fmt_time(t, 5, c->last_us), c->outcome,
        c->outcome ? fmt_time(t, 7, c->outcome_us) : NULL, fmt_time(t, 8, c->closed_us),
        fmt_int(t, 9, c->events), fmt_int(t, 10, c->started), fmt_int(t, 11, c->completed),
        fmt_int(t, 12, c->failed), fmt_int(t, 13, c->unknown_scenarios),
    };
    memcpy(t->v, v, sizeof(v));
}

static void run_row(const cd_conversation_t *c, const cd_run_t *r, row_text_t *t)
{
    bool ended = r->end_event_id != NULL;
    const char *v[RUN_NCOLS] = {
        c->live_work_item_id, r->scenario, r->category, cd_run_state_name(r->state),
        r->start_event_id, r->start_event_id ? fmt_time(t, 5, r->start_us) : NULL,
        r->end_event_id, ended ? fmt_time(t, 7, r->end_us) : NULL,
        ended ? (r->end_failed ? "Failed" : "Completed") : NULL,
        r->duration_ms >= 0 ? fmt_int(t, 9, r->duration_ms) : NULL,
        r->duration_ms < 0 ? NULL : r->source_duration_ms >= 0 ? "source" : "pair",
        r->stale ? "t" : "f",
    };
    memcpy(t->v, v, sizeof(v));
}

/*
 * COPY ... FROM STDIN, streamed: rows go to the server in chunks while the
 * next ones are formatted, so client and server work overlap.
 */
#define COPY_CHUNK (256 * 1024)

static cd_status_t copy_begin(cd_store_t *s, const char *target, cd_err_t *err)
{
    snprintf(s->copy_sql, sizeof(s->copy_sql), "COPY %s FROM STDIN", target);
    cd_buf_reset(&s->copy);
    PGresult *res = PQexec(s->conn, s->copy_sql);
    if (PQresultStatus(res) != PGRES_COPY_IN)
        return fail(s, res, s->copy_sql, err);
    PQclear(res);
    return CD_OK;
}

/* Ends the COPY (aborted when why is not NULL) and collects its result. */
static cd_status_t copy_finish(cd_store_t *s, const char *why, cd_err_t *err)
{
    cd_buf_t *b = &s->copy;
    cd_status_t st = CD_OK;
    PGresult *res;

    if (!why && b->oom)
        why = "out of memory formatting rows";
    if ((!why && b->len && PQputCopyData(s->conn, b->data, (int)b->len) != 1) ||
        PQputCopyEnd(s->conn, why) != 1)
        st = fail(s, NULL, s->copy_sql, err);
    cd_buf_reset(b);
    while ((res = PQgetResult(s->conn)) != NULL) {
        if (st == CD_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
            st = fail(s, res, s->copy_sql, err);
            continue;
        }
        PQclear(res);
    }
    /* An abort of ours is transient (memory, the wire), whatever the server said to it. */
    if (why && PQstatus(s->conn) == CONNECTION_OK)
        st = cd_err_set(err, CD_RETRY, "%s: %s", s->copy_sql, why);
    return st;
}

static cd_status_t copy_put(cd_store_t *s, const char *const *v, int n, cd_err_t *err)
{
    cd_buf_t *b = &s->copy;
    copy_row(b, v, n);
    if (b->len < COPY_CHUNK || b->oom)
        return CD_OK;
    if (PQputCopyData(s->conn, b->data, (int)b->len) != 1)
        return copy_finish(s, "sending rows failed", err);
    cd_buf_reset(b);
    return CD_OK;
}

/* ---- the steps of a batch --------------------------------------------- */

static void reset_records(cd_batch_t *batch)
{
    for (size_t i = 0; i < batch->count; i++) {
        batch->records[i].duplicate = false;
        memset(&batch->records[i].tags, 0, sizeof(batch->records[i].tags));
    }
}

/* s->ids = the distinct liveWorkItemIds of the batch's valid events. */
static cd_status_t list_conversations(cd_store_t *s, const cd_batch_t *batch, cd_err_t *err)
{
    cd_strmap_clear(&s->seen);
    cd_buf_reset(&s->ids);
    for (size_t i = 0; i < batch->count; i++) {
        const cd_record_t *rec = &batch->records[i];
        if (!rec->valid)
            continue;
        int added = cd_strmap_add(&s->seen, rec->event.live_work_item_id, i, NULL);
        if (added < 0)
            return cd_err_set(err, CD_RETRY, "out of memory listing conversations");
        if (added) {
            cd_buf_puts(&s->ids, rec->event.live_work_item_id);
            cd_buf_putc(&s->ids, '\n');
        }
    }
    return s->ids.oom ? cd_err_set(err, CD_RETRY, "out of memory listing conversations") : CD_OK;
}

/*
 * Duplicates: the same eventId and timestamp as a record earlier in the batch
 * or a stored event.  A replay is the same message, so it has both; the same
 * eventId with another timestamp is another row, in the batch as in events.
 */
static cd_status_t mark_duplicates(cd_store_t *s, cd_batch_t *batch, bool check_stored,
                                   cd_err_t *err)
{
    PGresult *res = NULL;
    char t[CD_TIME_UTC_MAX + 1];
    size_t n = 0;

    /* All keys first: the map borrows them, and the buffer moves as it grows. */
    cd_buf_reset(&s->keys);
    for (size_t i = 0; i < batch->count; i++) {
        const cd_record_t *rec = &batch->records[i];
        if (rec->valid) {
            char ts[24];
            size_t ts_len = write_i64(ts, rec->event.ts_us);
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
            cd_buf_puts(&s->ids, rec->event.event_id);
            cd_buf_putc(&s->ids, '\n');
            cd_time_format_utc(rec->event.ts_us, 6, t, sizeof(t));
            cd_buf_puts(&s->times, t);
            cd_buf_putc(&s->times, '\n');
            s->probe[n++] = i;
        }
    }
    if (!check_stored || n == 0)
        return CD_OK;
    if (s->ids.oom || s->times.oom)
        return cd_err_set(err, CD_RETRY, "out of memory checking duplicates");
    /* Without the last newline: string_to_array would add an empty element. */
    s->ids.data[--s->ids.len] = '\0';
    s->times.data[--s->times.len] = '\0';
    const char *vals[2] = {s->ids.data, s->times.data};
    res = PQexecPrepared(s->conn, "stored_event_ids", 2, vals, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return fail(s, res, "stored_event_ids", err);
    for (int r = 0; r < PQntuples(res); r++) {
        size_t k = (size_t)strtoull(PQgetvalue(res, r, 0), NULL, 10);
        if (k >= 1 && k <= n)
            batch->records[s->probe[k - 1]].duplicate = true;
    }
    PQclear(res);
    return CD_OK;
}

static int64_t get_i64(const PGresult *res, int row, int col, int64_t null_value)
{
    return PQgetisnull(res, row, col) ? null_value : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static char *get_str(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : strdup(PQgetvalue(res, row, col));
}

/* Loads the batch's conversations and their open and unpaired runs into s->state. */
static cd_status_t load_state(cd_store_t *s, cd_err_t *err)
{
    PGresult *res = NULL;
    cd_status_t st;

    cd_tag_state_clear(&s->state);
    if ((st = query_ids(s, "load_conversations", &res, err)) != CD_OK)
        return st;
    for (int r = 0; r < PQntuples(res); r++) {
        cd_conversation_t *c = cd_tag_state_add(&s->state, PQgetvalue(res, r, 0));
        if (!c)
            goto oom;
        c->stored = true;
        c->organization_id = get_str(res, r, 1);
        c->channel_type = get_str(res, r, 2);
        c->operation_id = get_str(res, r, 3);
        c->first_us = get_i64(res, r, 4, CD_NO_TIME);
        c->last_us = get_i64(res, r, 5, CD_NO_TIME);
        c->outcome = get_str(res, r, 6);
        c->outcome_us = get_i64(res, r, 7, CD_NO_TIME);
        c->closed_us = get_i64(res, r, 8, CD_NO_TIME);
        c->events = get_i64(res, r, 9, 0);
        c->started = get_i64(res, r, 10, 0);
        c->completed = get_i64(res, r, 11, 0);
        c->failed = get_i64(res, r, 12, 0);
        c->unknown_scenarios = get_i64(res, r, 13, 0);
    }
    PQclear(res);

    if ((st = query_ids(s, "load_runs", &res, err)) != CD_OK)
        return st;
    for (int r = 0; r < PQntuples(res); r++) {
        cd_conversation_t *c = cd_tag_state_find(&s->state, PQgetvalue(res, r, 1));
        cd_run_t *run = c ? cd_conversation_add_run(c) : NULL;
        if (!run)
            goto oom;
        run->run_id = get_i64(res, r, 0, 0);
        run->scenario = get_str(res, r, 2);
        run->category = get_str(res, r, 3);
        run->state = (cd_run_state_t)cd_run_state_parse(PQgetvalue(res, r, 4));
        run->start_event_id = get_str(res, r, 5);
        run->start_us = get_i64(res, r, 6, CD_NO_TIME);
        run->end_event_id = get_str(res, r, 7);
        run->end_us = get_i64(res, r, 8, CD_NO_TIME);
        run->end_failed = !PQgetisnull(res, r, 9) && strcmp(PQgetvalue(res, r, 9), "Failed") == 0;
        run->duration_ms = get_i64(res, r, 10, -1);
        run->source_duration_ms =
            !PQgetisnull(res, r, 11) && strcmp(PQgetvalue(res, r, 11), "source") == 0
                ? run->duration_ms
                : -1;
        run->stale = strcmp(PQgetvalue(res, r, 12), "t") == 0;
        if (!run->scenario || !run->category)
            goto oom;
    }
    PQclear(res);
    return CD_OK;

oom:
    PQclear(res);
    return cd_err_set(err, CD_RETRY, "out of memory loading conversation state");
}

static cd_status_t write_events(cd_store_t *s, const cd_batch_t *batch, cd_store_result_t *r,
                                cd_err_t *err)
{
    cd_status_t st;
    row_text_t t;

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
    if ((st = copy_begin(s, "events (" EVENT_COLUMNS ")", err)) != CD_OK)
        return st;
    for (size_t i = 0; i < batch->count; i++) {
        const cd_record_t *rec = &batch->records[i];
        if (!rec->valid || rec->duplicate)
            continue;
        event_row(rec, &t);
        if ((st = copy_put(s, t.v, EVENT_NCOLS, err)) != CD_OK)
            return st;
    }
    return copy_finish(s, NULL, err);
}

/* Rows of the runs that this batch changed: new ones (pass 0) or stored ones (pass 1),
 * the latter with their run_id first.  Returns how many; sends them when send is true. */
static cd_status_t put_runs(cd_store_t *s, int pass, bool send, size_t *count, cd_err_t *err)
{
    row_text_t t;
    char id[24];
    cd_status_t st;

    *count = 0;
    for (size_t i = 0; i < s->state.count; i++) {
        const cd_conversation_t *c = &s->state.convs[i];
        for (size_t k = 0; k < c->runs_count; k++) {
            const cd_run_t *run = &c->runs[k];
            if (!run->dirty || (pass == 0) != (run->run_id == 0))
                continue;
            (*count)++;
            if (!send)
                continue;
            const char *v[RUN_NCOLS + 1];
            snprintf(id, sizeof(id), "%lld", (long long)run->run_id);
            run_row(c, run, &t);
            v[0] = id;
            memcpy(v + 1, t.v, RUN_NCOLS * sizeof(*v));
            if ((st = copy_put(s, pass == 0 ? v + 1 : v, RUN_NCOLS + pass, err)) != CD_OK)
                return st;
        }
    }
    return CD_OK;
}

static cd_status_t write_state(cd_store_t *s, cd_store_result_t *r, cd_err_t *err)
{
    cd_status_t st;
    row_text_t t;
    size_t runs[2];

    /* New conversations straight into the table (their lock makes them ours);
     * stored ones through the stage, as an upsert. */
    size_t convs[2] = {0, 0};
    static const char *const conv_targets[2] = {"conversations (" CONVERSATION_COLUMNS ")",
                                                "conversations_stage (" CONVERSATION_COLUMNS ")"};
    for (size_t i = 0; i < s->state.count; i++)
        if (s->state.convs[i].dirty)
            convs[s->state.convs[i].stored]++;
    r->conversations = convs[0] + convs[1];
    for (int stored = 0; stored < 2; stored++) {
        if (!convs[stored])
            continue;
        if ((st = copy_begin(s, conv_targets[stored], err)) != CD_OK)
            return st;
        for (size_t i = 0; i < s->state.count; i++) {
            const cd_conversation_t *c = &s->state.convs[i];
            if (!c->dirty || c->stored != stored)
                continue;
            conversation_row(c, &t);
            if ((st = copy_put(s, t.v, CONVERSATION_NCOLS, err)) != CD_OK)
                return st;
        }
        if ((st = copy_finish(s, NULL, err)) != CD_OK)
            return st;
    }
    if (convs[1]) {
        if ((st = exec_ok(s,
                          "INSERT INTO conversations (" CONVERSATION_COLUMNS ") SELECT "
                          CONVERSATION_COLUMNS " FROM conversations_stage "
                          "ON CONFLICT (live_work_item_id) DO UPDATE SET "
                          "organization_id = EXCLUDED.organization_id, "
                          "channel_type = EXCLUDED.channel_type, "
                          "operation_id = EXCLUDED.operation_id, "
                          "first_event_time = EXCLUDED.first_event_time, "
                          "last_event_time = EXCLUDED.last_event_time, "
                          "outcome = EXCLUDED.outcome, outcome_time = EXCLUDED.outcome_time, "
                          "closed_time = EXCLUDED.closed_time, "
                          "event_count = EXCLUDED.event_count, "
                          "started_count = EXCLUDED.started_count, "
                          "completed_count = EXCLUDED.completed_count, "
                          "failed_count = EXCLUDED.failed_count, "
                          "unknown_scenario_count = EXCLUDED.unknown_scenario_count, "
                          "updated_at = now()",
                          err)) != CD_OK)
            return st;
    }

    /* New runs straight into the table; changed ones through the stage, by run_id. */
    static const char *const targets[2] = {"scenario_runs (" RUN_COLUMNS ")",
                                           "runs_stage (run_id, " RUN_COLUMNS ")"};
    for (int pass = 0; pass < 2; pass++) {
        put_runs(s, pass, false, &runs[pass], err);
        if (!runs[pass])
            continue;
        if ((st = copy_begin(s, targets[pass], err)) != CD_OK ||
            (st = put_runs(s, pass, true, &runs[pass], err)) != CD_OK ||
            (st = copy_finish(s, NULL, err)) != CD_OK)
            return st;
    }
    if (runs[1] &&
        (st = exec_ok(s,
                      "UPDATE scenario_runs AS r SET state = s.state, "
                      "start_event_id = s.start_event_id, start_time = s.start_time, "
                      "end_event_id = s.end_event_id, end_time = s.end_time, "
                      "end_status = s.end_status, duration_ms = s.duration_ms, "
                      "duration_source = s.duration_source, stale = s.stale, "
                      "updated_at = now() FROM runs_stage AS s WHERE r.run_id = s.run_id",
                      err)) != CD_OK)
        return st;
    r->runs = runs[0] + runs[1];
    return CD_OK;
}

/* id as an element of an array literal: quoted, so that no id can read as NULL or split. */
static void put_array_element(cd_buf_t *b, const char *id)
{
    cd_buf_putc(b, b->len ? ',' : '{');
    cd_buf_putc(b, '"');
    for (; *id; id++) {
        if (*id == '"' || *id == '\\')
            cd_buf_putc(b, '\\');
        cd_buf_putc(b, *id);
    }
    cd_buf_putc(b, '"');
}

/* One outbox row: the ids gathered in s->ids and their time range; empties s->ids. */
static cd_status_t put_outbox_row(cd_store_t *s, int64_t first_us, int64_t last_us,
                                  cd_err_t *err)
{
    row_text_t t;

    cd_buf_putc(&s->ids, '}');
    if (s->ids.oom)
        return copy_finish(s, "out of memory listing events for the outbox", err);
    const char *v[3] = {s->ids.data, fmt_time(&t, 1, first_us), fmt_time(&t, 2, last_us)};
    cd_status_t st = copy_put(s, v, 3, err);
    cd_buf_reset(&s->ids);
    return st;
}

/*
 * Names the batch's new events in the outbox, group_max to a row, each row
 * with the time range of its events.  Rows are formed here and copied: the
 * server only stores them.
 */
static cd_status_t write_outbox(cd_store_t *s, const cd_batch_t *batch, cd_err_t *err)
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
    if ((st = copy_begin(s, "export_outbox (event_ids, first_event_time, last_event_time)",
                         err)) != CD_OK)
        return st;
    cd_buf_reset(&s->ids);
    n = 0;
    for (size_t i = 0; i < batch->count; i++) {
        const cd_record_t *rec = &batch->records[i];
        if (!rec->valid || rec->duplicate)
            continue;
        put_array_element(&s->ids, rec->event.event_id);
        first_us = rec->event.ts_us < first_us ? rec->event.ts_us : first_us;
        last_us = rec->event.ts_us > last_us ? rec->event.ts_us : last_us;
        if (++n == s->outbox_group_max) {
            if ((st = put_outbox_row(s, first_us, last_us, err)) != CD_OK)
                return st;
            first_us = INT64_MAX;
            last_us = INT64_MIN;
            n = 0;
        }
    }
    if (n && (st = put_outbox_row(s, first_us, last_us, err)) != CD_OK)
        return st;
    return copy_finish(s, NULL, err);
}

static cd_status_t write_dead_letters(cd_store_t *s, const cd_batch_t *batch, size_t *count,
                                      cd_err_t *err)
{
    *count = 0;
    for (size_t i = 0; i < batch->count; i++) {
        const cd_record_t *rec = &batch->records[i];
        if (rec->valid)
            continue;
        char part[16], off[24], ts[24];
        snprintf(part, sizeof(part), "%d", (int)rec->partition);
        snprintf(off, sizeof(off), "%lld", (long long)rec->offset);
        snprintf(ts, sizeof(ts), "%lld", (long long)rec->kafka_ts_ms);
        /* The headers too, so that a replay makes the same events of it. */
        const char *vals[9] = {rec->topic,   part, off, rec->key, rec->payload,
                               rec->reason ? rec->reason : "unknown (out of memory)",
                               rec->kafka_ts_ms >= 0 ? ts : NULL, rec->header_traceparent,
                               rec->header_tracestate};
        int lens[9] = {0, 0, 0, (int)rec->key_len, (int)rec->len, 0, 0, 0, 0};
        int formats[9] = {0, 0, 0, 1, 1, 0, 0, 0, 0}; /* key and payload as raw bytes */
        PGresult *res =
            PQexecPrepared(s->conn, "insert_dead_letter", 9, vals, lens, formats, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            return fail(s, res, "INSERT INTO dead_letters", err);
        *count += (size_t)atol(PQcmdTuples(res));
        PQclear(res);
    }
    return CD_OK;
}

/* ---- partitions -------------------------------------------------------- */

static bool day_known(const cd_store_t *s, int64_t day)
{
    for (size_t i = 0; i < s->days_count; i++)
        if (s->days[i] == day)
            return true;
    return false;
}

/*
 * Makes sure the partitions of the batch's days exist, before its
 * transaction.  An event of a day retention no longer keeps becomes a dead
 * letter: storing it would create a partition only for the next pass to drop
 * it, the event with it, an hour later at most and silently; a dead letter
 * keeps its bytes and says why, and it can be replayed with a longer
 * retention.  It also keeps a producer with a wrong clock from making
 * partitions of long-gone days; events.future.max.days does the same for
 * days far ahead, each of which would otherwise be a partition of its own.
 */
static cd_status_t ensure_partitions(cd_store_t *s, cd_batch_t *batch, cd_err_t *err)
{
    int64_t today = cd_store_partitions_day(cd_now_us());
    int64_t keep_from = cd_store_partitions_keep_from(today, s->retention_days);
    int64_t last_day = s->future_max_days ? today + s->future_max_days : INT64_MAX;
    int64_t last = INT64_MIN; /* the last day checked: batches run in time order, mostly */
    char name[32], reason[256];
    cd_status_t st;

    /* Days retention has let go stay out of the list: it remains a few entries long. */
    size_t kept = 0;
    for (size_t i = 0; i < s->days_count; i++)
        if (s->days[i] >= keep_from)
            s->days[kept++] = s->days[i];
    s->days_count = kept;

    for (size_t i = 0; i < batch->count; i++) {
        cd_record_t *rec = &batch->records[i];
        if (!rec->valid)
            continue;
        int64_t day = cd_store_partitions_day(rec->event.ts_us);
        if (day == last)
            continue;
        if (day < keep_from) {
            snprintf(reason, sizeof(reason),
                     "timestamp: '%.64s' is older than the retention period "
                     "(events.retention.days = %d): its day is no longer kept",
                     rec->event.timestamp, s->retention_days);
            cd_record_reject(rec, reason);
            continue;
        }
        if (day > last_day) {
            snprintf(reason, sizeof(reason),
                     "timestamp: '%.64s' is more than %d days ahead of this host's clock "
                     "(events.future.max.days = %d): its day gets no partition",
                     rec->event.timestamp, s->future_max_days, s->future_max_days);
            cd_record_reject(rec, reason);
            continue;
        }
        if (!cd_store_partitions_name(day, name, sizeof(name))) {
            snprintf(reason, sizeof(reason),
                     "timestamp: '%.64s' is outside the years 0001 to 9999 (UTC) that events "
                     "are kept for", rec->event.timestamp);
            cd_record_reject(rec, reason);
            continue;
        }
        if (!day_known(s, day)) {
            bool created;
            if ((st = cd_store_partitions_create(s->conn, day, &created, err)) != CD_OK) {
                if (PQstatus(s->conn) != CONNECTION_OK)
                    s->ready = false;
                return st;
            }
            if (created)
                cd_log_info("store", "created partition %s for an event of that day", name);
            if (s->days_count == s->days_cap) {
                size_t cap = s->days_cap ? 2 * s->days_cap : 16;
                int64_t *d = realloc(s->days, cap * sizeof(*d));
                if (!d)
                    return cd_err_set(err, CD_RETRY, "out of memory listing partitions");
                s->days = d;
                s->days_cap = cap;
            }
            s->days[s->days_count++] = day;
        }
        last = day;
    }
    return CD_OK;
}

static void rollback(cd_store_t *s)
{
    if (PQstatus(s->conn) == CONNECTION_OK)
        PQclear(PQexec(s->conn, "ROLLBACK"));
}

static cd_status_t write_once(cd_store_t *s, cd_batch_t *batch, cd_store_result_t *r,
                              cd_err_t *err)
{
    cd_status_t st;

    int64_t t[10];
    int n = 0;

    memset(r, 0, sizeof(*r));
    reset_records(batch);
    t[n++] = cd_mono_us();
    if ((st = exec_ok(s, "BEGIN", err)) != CD_OK)
        return st;
    /* Each step stamps its end time, for the debug line below. */
    if ((st = list_conversations(s, batch, err)) != CD_OK ||
        (st = query_ids(s, "lock_conversations", NULL, err)) != CD_OK ||
        (t[n++] = cd_mono_us(), st = load_state(s, err)) != CD_OK ||
        (t[n++] = cd_mono_us(), st = mark_duplicates(s, batch, s->check_stored, err)) !=
            CD_OK ||
        (t[n++] = cd_mono_us(), st = cd_tagger_apply(s->tc, batch, &s->state, err)) != CD_OK ||
        (t[n++] = cd_mono_us(), st = write_events(s, batch, r, err)) != CD_OK ||
        (t[n++] = cd_mono_us(), st = write_state(s, r, err)) != CD_OK ||
        (t[n++] = cd_mono_us(), st = write_outbox(s, batch, err)) != CD_OK ||
        (t[n++] = cd_mono_us(), st = write_dead_letters(s, batch, &r->dead_letters, err)) !=
            CD_OK ||
        (t[n++] = cd_mono_us(), st = exec_ok(s, "COMMIT", err)) != CD_OK) {
        rollback(s);
        return st;
    }
    t[n++] = cd_mono_us();
    r->stale_runs = s->state.newly_stale;
    cd_log_debug("store",
                 "batch of %zu in %lld us: lock %lld, load %lld, duplicates %lld, tag %lld, "
                 "events %lld, state %lld, outbox %lld, dead letters %lld, commit %lld",
                 batch->count, (long long)(t[9] - t[0]), (long long)(t[1] - t[0]),
                 (long long)(t[2] - t[1]), (long long)(t[3] - t[2]), (long long)(t[4] - t[3]),
                 (long long)(t[5] - t[4]), (long long)(t[6] - t[5]), (long long)(t[7] - t[6]),
                 (long long)(t[8] - t[7]), (long long)(t[9] - t[8]));
    return CD_OK;
}

cd_status_t cd_store_sweep_stale(cd_store_t *s, size_t *flagged, cd_err_t *err)
{
    cd_status_t st;
    cd_buf_t ms;
    char def[24];

    *flagged = 0;
    if ((st = ensure_ready(s, err)) != CD_OK)
        return st;
    cd_buf_init(&ms);
    cd_buf_reset(&s->ids);
    for (size_t i = 0; i < s->tc->overrides_count; i++) {
        cd_buf_printf(&s->ids, "%s%s", i ? "\n" : "", s->tc->overrides[i].scenario);
        cd_buf_printf(&ms, "%s%lld", i ? "\n" : "", (long long)s->tc->overrides[i].after_ms);
    }
    snprintf(def, sizeof(def), "%lld", (long long)cd_tagger_stale_after_ms(s->tc, ""));
    const char *vals[3] = {s->ids.data ? s->ids.data : "", ms.data ? ms.data : "", def};
    PGresult *res = PQexecPrepared(s->conn, "sweep_stale", 3, vals, NULL, NULL, 0);
    cd_buf_fini(&ms);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return fail(s, res, "sweeping stale runs", err);
    *flagged = (size_t)atol(PQcmdTuples(res));
    PQclear(res);
    return CD_OK;
}

/*
 * Finds the events PostgreSQL refuses, one savepoint each, in a transaction
 * that is then rolled back; each refused record becomes a dead letter.
 */
static cd_status_t reject_refused(cd_store_t *s, cd_batch_t *batch, size_t *refused,
                                  cd_err_t *err)
{
    cd_status_t st;
    row_text_t t;

    *refused = 0;
    if ((st = exec_ok(s, "BEGIN", err)) != CD_OK)
        return st;
    for (size_t i = 0; i < batch->count; i++) {
        cd_record_t *rec = &batch->records[i];
        if (!rec->valid || rec->duplicate)
            continue;
        if ((st = exec_ok(s, "SAVEPOINT one_event", err)) != CD_OK)
            goto out;
        event_row(rec, &t);
        PGresult *res = PQexecPrepared(s->conn, "insert_event", EVENT_NCOLS, t.v, NULL, NULL, 0);
        if (PQresultStatus(res) == PGRES_COMMAND_OK) {
            PQclear(res);
            continue;
        }
        cd_err_t why;
        st = fail(s, res, "INSERT INTO events", &why);
        if (st != CD_ERROR || !sqlstate_is_row_error(s->sqlstate)) {
            cd_err_set(err, st, "%s", why.msg);
            goto out;
        }
        if ((st = exec_ok(s, "ROLLBACK TO SAVEPOINT one_event", err)) != CD_OK)
            goto out;
        char reason[CD_ERR_MAX + 32];
        snprintf(reason, sizeof(reason), "PostgreSQL refused the event: %s", why.msg);
        cd_log_warn("store", "event %s at %s[%d]@%lld dead-lettered: %s", rec->event.event_id,
                    rec->topic, (int)rec->partition, (long long)rec->offset, why.msg);
        cd_record_reject(rec, reason);
        (*refused)++;
    }
    st = CD_OK;
out:
    rollback(s);
    return st;
}

cd_status_t cd_store_write_batch(cd_store_t *s, cd_batch_t *batch, cd_store_result_t *res,
                                 cd_err_t *err)
{
    cd_status_t st;
    size_t refused;

    if ((st = ensure_ready(s, err)) != CD_OK || (st = ensure_partitions(s, batch, err)) != CD_OK)
        return st;
    st = write_once(s, batch, res, err);
    if (st == CD_ERROR && !s->check_stored && strcmp(s->sqlstate, "23505") == 0) {
        s->check_stored = true; /* a replay: write again knowing what is stored */
        st = write_once(s, batch, res, err);
    }
    if (st == CD_ERROR && strcmp(s->sqlstate, "23514") == 0 && s->days_count) {
        /* No partition for a row: one we knew of was dropped meanwhile (by hand, or by
         * an instance keeping less); look again. */
        s->days_count = 0;
        if ((st = ensure_partitions(s, batch, err)) != CD_OK)
            return st;
        st = write_once(s, batch, res, err);
    }
    if (st == CD_OK)
        s->check_stored = res->duplicates > 0;
    if (st != CD_ERROR || !sqlstate_is_row_error(s->sqlstate))
        return st;
    cd_err_t first = *err;
    cd_log_warn("store", "batch of %zu refused, looking for the rows at fault: %s", batch->count,
                first.msg);
    if ((st = reject_refused(s, batch, &refused, err)) != CD_OK)
        return st;
    if (refused == 0)
        return cd_err_set(err, CD_ERROR, "batch refused, but no single event is: %s", first.msg);
    return write_once(s, batch, res, err);
}
