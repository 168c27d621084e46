/*
 * store.c -- writes batches to PostgreSQL; see store.h.
 *
 * The fast path streams the batch's events with COPY into a session-local
 * staging table and moves them with one INSERT ... ON CONFLICT DO NOTHING, so
 * a replayed eventId costs nothing and the batch stays one transaction.
 * If PostgreSQL refuses a value, the batch is written again row by row under
 * savepoints, and only the refused rows go to dead_letters.
 */
#include "convdiag/store.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convdiag/buf.h"
#include "convdiag/log.h"
#include "convdiag/timeutil.h"
#include "pg_error.h"

#define EVENT_COLUMNS                                                                          \
    "event_id, event_time, organization_id, live_work_item_id, scenario, scenario_received, " \
    "category, status, channel_type, participant_type, user_id, session_id, transaction_id, " \
    "traceparent, tracestate, duration_ms, failure_reason, attributes, kafka_topic, "         \
    "kafka_partition, kafka_offset"
#define EVENT_NCOLS 21

#define SQL_INSERT_EVENT                                                                        \
    "INSERT INTO events (" EVENT_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, " \
    "$11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21) ON CONFLICT (event_id) DO NOTHING"

#define SQL_INSERT_DEAD_LETTER                                                            \
    "INSERT INTO dead_letters (kafka_topic, kafka_partition, kafka_offset, message_key, " \
    "payload, reason, kafka_timestamp) VALUES ($1, $2, $3, $4, $5, $6, "                  \
    "to_timestamp($7::double precision / 1000)) "                                         \
    "ON CONFLICT (kafka_topic, kafka_partition, kafka_offset) DO NOTHING"

struct cd_store {
    PGconn *conn;
    char *conninfo;
    bool ready; /* connected, staging table and statements prepared */
    char sqlstate[6]; /* of the last failure, "" when it had none */
    cd_buf_t copy;
};

/* Scratch space for the values of one event row as text. */
typedef struct row_text {
    const char *v[EVENT_NCOLS];
    char time[40];
    char duration[24];
    char partition[16];
    char offset[24];
} row_text_t;

static void event_row(const cd_record_t *rec, row_text_t *row)
{
    const cd_event_t *ev = &rec->event;

    cd_time_format_utc(ev->ts_us, 6, row->time, sizeof(row->time));
    snprintf(row->duration, sizeof(row->duration), "%lld", (long long)ev->duration_ms);
    snprintf(row->partition, sizeof(row->partition), "%d", (int)rec->partition);
    snprintf(row->offset, sizeof(row->offset), "%lld", (long long)rec->offset);

    const char *v[EVENT_NCOLS] = {
        ev->event_id, row->time, ev->organization_id, ev->live_work_item_id, ev->scenario,
        ev->scenario_received, ev->category, cd_event_status_name(ev->status), ev->channel_type,
        ev->participant_type, ev->user_id, ev->session_id, ev->transaction_id, ev->traceparent,
        ev->tracestate, ev->duration_ms >= 0 ? row->duration : NULL, ev->failure_reason,
        ev->attributes_json, rec->topic, row->partition, row->offset,
    };
    memcpy(row->v, v, sizeof(v));
}

/* COPY text format: backslash escapes for the characters that delimit rows and columns. */
static void copy_field(cd_buf_t *b, const char *s)
{
    if (!s) {
        cd_buf_append(b, "\\N", 2);
        return;
    }
    const char *run = s;
    for (; *s; s++) {
        const char *esc = NULL;
        switch (*s) {
        case '\\': esc = "\\\\"; break;
        case '\t': esc = "\\t"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        default: continue;
        }
        cd_buf_append(b, run, (size_t)(s - run));
        cd_buf_append(b, esc, 2);
        run = s + 1;
    }
    cd_buf_append(b, run, (size_t)(s - run));
}

/* Data exceptions (22) and integrity violations (23) belong to one row, not to the batch. */
static bool sqlstate_is_row_error(const char *state)
{
    return strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0;
}

/* Transient failures: the connection, the server going away, resources, serialization. */
static bool sqlstate_is_transient(const char *state)
{
    if (!state[0])
        return true; /* no SQLSTATE: the failure happened on the client or the wire */
    return strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 ||
           strncmp(state, "57P", 3) == 0 || strcmp(state, "40001") == 0 ||
           strcmp(state, "40P01") == 0;
}

/* Classifies a failed result, fills err, clears the result. */
static cd_status_t fail(cd_store_t *s, PGresult *res, const char *what, cd_err_t *err)
{
    char msg[CD_ERR_MAX];
    snprintf(s->sqlstate, sizeof(s->sqlstate), "%s", cd_pg_sqlstate(res));
    cd_status_t st = PQstatus(s->conn) != CONNECTION_OK || sqlstate_is_transient(s->sqlstate)
                         ? CD_RETRY
                         : CD_ERROR;
    cd_err_set(err, st, "%s failed: %s", what, cd_pg_error(s->conn, res, msg, sizeof(msg)));
    PQclear(res);
    if (st == CD_RETRY)
        s->ready = PQstatus(s->conn) == CONNECTION_OK && s->ready;
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

static cd_status_t prepare(cd_store_t *s, const char *name, const char *sql, int nparams,
                           cd_err_t *err)
{
    PGresult *res = PQprepare(s->conn, name, sql, nparams, NULL);
    if (PQresultStatus(res) == PGRES_COMMAND_OK) {
        PQclear(res);
        return CD_OK;
    }
    return fail(s, res, name, err);
}

/* (Re)connects and prepares the session: staging table and statements. */
static cd_status_t ensure_ready(cd_store_t *s, cd_err_t *err)
{
    if (s->ready && PQstatus(s->conn) == CONNECTION_OK)
        return CD_OK;
    s->ready = false;
    if (s->conn)
        PQfinish(s->conn);

    const char *keys[] = {"dbname", "fallback_application_name", NULL};
    const char *vals[] = {s->conninfo[0] ? s->conninfo : NULL, "convdiag", NULL};
    s->conn = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(s->conn) != CONNECTION_OK) {
        char msg[CD_ERR_MAX];
        s->sqlstate[0] = '\0';
        return cd_err_set(err, CD_RETRY, "cannot connect to PostgreSQL: %s",
                          cd_pg_error(s->conn, NULL, msg, sizeof(msg)));
    }
    cd_status_t st;
    if ((st = exec_ok(s,
                      "CREATE TEMP TABLE events_stage (LIKE events INCLUDING DEFAULTS) "
                      "ON COMMIT DELETE ROWS",
                      err)) != CD_OK ||
        (st = prepare(s, "insert_event", SQL_INSERT_EVENT, EVENT_NCOLS, err)) != CD_OK ||
        (st = prepare(s, "insert_dead_letter", SQL_INSERT_DEAD_LETTER, 7, err)) != CD_OK)
        return st;
    s->ready = true;
    return CD_OK;
}

cd_store_t *cd_store_new(const char *conninfo)
{
    cd_store_t *s = calloc(1, sizeof(*s));
    if (!s || !(s->conninfo = strdup(conninfo ? conninfo : ""))) {
        free(s);
        return NULL;
    }
    cd_buf_init(&s->copy);
    return s;
}

cd_status_t cd_store_connect(cd_store_t *s, cd_err_t *err)
{
    cd_status_t st = ensure_ready(s, err);
    if (st == CD_ERROR && strcmp(s->sqlstate, "42P01") == 0)
        return cd_err_set(err, CD_ERROR, "%s (has `convdiag migrate` been run?)", err->msg);
    return st;
}

void cd_store_free(cd_store_t *s)
{
    if (!s)
        return;
    if (s->conn)
        PQfinish(s->conn);
    cd_buf_fini(&s->copy);
    free(s->conninfo);
    free(s);
}

/* Streams the batch's valid events into events_stage. */
static cd_status_t copy_events(cd_store_t *s, const cd_batch_t *batch, cd_err_t *err)
{
    cd_buf_t *b = &s->copy;
    row_text_t row;

    cd_buf_reset(b);
    for (size_t i = 0; i < batch->count; i++) {
        const cd_record_t *rec = &batch->records[i];
        if (!rec->valid)
            continue;
        event_row(rec, &row);
        for (int c = 0; c < EVENT_NCOLS; c++) {
            if (c)
                cd_buf_putc(b, '\t');
            copy_field(b, row.v[c]);
        }
        cd_buf_putc(b, '\n');
    }
    if (b->oom)
        return cd_err_set(err, CD_RETRY, "out of memory building COPY data (%zu bytes)", b->len);

    PGresult *res = PQexec(s->conn, "COPY events_stage (" EVENT_COLUMNS ") FROM STDIN");
    if (PQresultStatus(res) != PGRES_COPY_IN)
        return fail(s, res, "COPY events_stage", err);
    PQclear(res);
    if (PQputCopyData(s->conn, b->data ? b->data : "", (int)b->len) != 1 ||
        PQputCopyEnd(s->conn, NULL) != 1)
        return fail(s, NULL, "COPY events_stage data", err);
    res = PQgetResult(s->conn);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return fail(s, res, "COPY events_stage", err);
    PQclear(res);
    /* Drain: libpq returns NULL once the command is complete. */
    while ((res = PQgetResult(s->conn)) != NULL)
        PQclear(res);
    return CD_OK;
}

static cd_status_t insert_dead_letters(cd_store_t *s, const cd_batch_t *batch, size_t *count,
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
        const char *vals[7] = {rec->topic,   part, off, rec->key, rec->payload,
                               rec->reason ? rec->reason : "unknown (out of memory)",
                               rec->kafka_ts_ms >= 0 ? ts : NULL};
        int lens[7] = {0, 0, 0, (int)rec->key_len, (int)rec->len, 0, 0};
        int formats[7] = {0, 0, 0, 1, 1, 0, 0}; /* key and payload as raw bytes */
        PGresult *res =
            PQexecPrepared(s->conn, "insert_dead_letter", 7, vals, lens, formats, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            return fail(s, res, "INSERT INTO dead_letters", err);
        *count += (size_t)atol(PQcmdTuples(res));
        PQclear(res);
    }
    return CD_OK;
}

/* Slow path: one savepoint per event, so a refused value dead-letters only its own row. */
static cd_status_t insert_events_one_by_one(cd_store_t *s, cd_batch_t *batch, size_t *inserted,
                                            cd_err_t *err)
{
    cd_status_t st;
    row_text_t row;

    *inserted = 0;
    for (size_t i = 0; i < batch->count; i++) {
        cd_record_t *rec = &batch->records[i];
        if (!rec->valid)
            continue;
        if ((st = exec_ok(s, "SAVEPOINT one_event", err)) != CD_OK)
            return st;
        event_row(rec, &row);
        PGresult *res = PQexecPrepared(s->conn, "insert_event", EVENT_NCOLS, row.v, NULL,
                                       NULL, 0);
        if (PQresultStatus(res) == PGRES_COMMAND_OK) {
            *inserted += (size_t)atol(PQcmdTuples(res));
            PQclear(res);
            continue;
        }
        cd_err_t why;
        st = fail(s, res, "INSERT INTO events", &why);
        if (st != CD_ERROR || !sqlstate_is_row_error(s->sqlstate))
            return cd_err_set(err, st, "%s", why.msg);
        if ((st = exec_ok(s, "ROLLBACK TO SAVEPOINT one_event", err)) != CD_OK)
            return st;
        char reason[CD_ERR_MAX + 32];
        snprintf(reason, sizeof(reason), "PostgreSQL refused the event: %s", why.msg);
        cd_log_warn("store", "event %s at %s/%d@%lld dead-lettered: %s", rec->event.event_id,
                    rec->topic, (int)rec->partition, (long long)rec->offset, why.msg);
        cd_record_reject(rec, reason);
    }
    return CD_OK;
}

static cd_status_t write_once(cd_store_t *s, cd_batch_t *batch, bool one_by_one,
                              cd_store_result_t *r, cd_err_t *err)
{
    cd_status_t st;
    size_t valid = 0;

    for (size_t i = 0; i < batch->count; i++)
        valid += batch->records[i].valid;

    if ((st = exec_ok(s, "BEGIN", err)) != CD_OK)
        return st;

    if (one_by_one) {
        if ((st = insert_events_one_by_one(s, batch, &r->inserted, err)) != CD_OK)
            goto rollback;
        valid = 0;
        for (size_t i = 0; i < batch->count; i++)
            valid += batch->records[i].valid;
    } else if (valid > 0) {
        if ((st = copy_events(s, batch, err)) != CD_OK)
            goto rollback;
        PGresult *res = PQexec(s->conn, "INSERT INTO events SELECT * FROM events_stage "
                                        "ON CONFLICT (event_id) DO NOTHING");
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            st = fail(s, res, "INSERT INTO events", err);
            goto rollback;
        }
        r->inserted = (size_t)atol(PQcmdTuples(res));
        PQclear(res);
    }
    r->duplicates = valid - r->inserted;

    if ((st = insert_dead_letters(s, batch, &r->dead_letters, err)) != CD_OK)
        goto rollback;
    return exec_ok(s, "COMMIT", err);

rollback:
    if (PQstatus(s->conn) == CONNECTION_OK) {
        PGresult *res = PQexec(s->conn, "ROLLBACK");
        PQclear(res);
    }
    return st;
}

cd_status_t cd_store_write_batch(cd_store_t *s, cd_batch_t *batch, cd_store_result_t *res,
                                 cd_err_t *err)
{
    cd_status_t st;

    memset(res, 0, sizeof(*res));
    if ((st = ensure_ready(s, err)) != CD_OK)
        return st;
    st = write_once(s, batch, false, res, err);
    if (st == CD_ERROR && sqlstate_is_row_error(s->sqlstate)) {
        cd_log_warn("store", "batch of %zu refused, writing it row by row: %s", batch->count,
                    err->msg);
        memset(res, 0, sizeof(*res));
        st = write_once(s, batch, true, res, err);
    }
    return st;
}
