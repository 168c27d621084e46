/* dead_letters.c -- the dead_letters table read back and replayed; see dead_letters.h. */
#include "convdiag/dead_letters.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convdiag/buf.h"
#include "convdiag/timeutil.h"
#include "pg.h"

struct cd_dead_letters {
    PGconn *conn;
};

/* $1 ids, $2 reason substring, $3 since, $4 until, $5 replayed too: each NULL
 * when not given, so that one text serves every filter. */
#define FILTER                                                                             \
    "($1::bigint[] IS NULL OR id = ANY($1)) AND ($2::text IS NULL OR strpos(reason, $2) > 0) " \
    "AND ($3::timestamptz IS NULL OR received_at >= $3) "                                   \
    "AND ($4::timestamptz IS NULL OR received_at < $4) AND ($5::boolean OR replayed_at IS NULL)"
#define FILTER_NPARAMS 5

#define UTC_MS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

enum {
    F_ID, F_TOPIC, F_PARTITION, F_OFFSET, F_KEY, F_PAYLOAD, F_LEN, F_REASON, F_TRACEPARENT,
    F_TRACESTATE, F_KAFKA_TIME, F_RECEIVED_AT, F_REPLAYED_AT,
};

static const char fetch_sql[] =
    "SELECT id, kafka_topic, kafka_partition, kafka_offset, message_key, "
    "CASE WHEN $8 THEN payload END, octet_length(payload), reason, kafka_traceparent, "
    "kafka_tracestate, " UTC_MS("kafka_timestamp") ", " UTC_MS("received_at") ", "
    UTC_MS("replayed_at") " FROM dead_letters WHERE id > $6 AND " FILTER
    " ORDER BY id LIMIT $7";

/* The filter's parameters as text, into params[0..FILTER_NPARAMS); the
 * strings live in ids and the two time buffers. */
static bool filter_params(const cd_dead_letter_filter_t *f, cd_buf_t *ids, char since[32],
                          char until[32], const char *params[])
{
    memset(params, 0, FILTER_NPARAMS * sizeof(*params));
    if (f->nids) {
        cd_buf_putc(ids, '{');
        for (size_t i = 0; i < f->nids; i++)
            cd_buf_printf(ids, "%s%lld", i ? "," : "", (long long)f->ids[i]);
        cd_buf_putc(ids, '}');
        if (ids->oom)
            return false;
        params[0] = ids->data;
    }
    params[1] = f->reason;
    if (f->since_us) {
        cd_time_format_utc(f->since_us, 6, since, 32);
        params[2] = since;
    }
    if (f->until_us) {
        cd_time_format_utc(f->until_us, 6, until, 32);
        params[3] = until;
    }
    params[4] = f->replayed ? "true" : "false";
    return true;
}

static cd_status_t query_failed(cd_dead_letters_t *dl, PGresult *res, const char *what,
                                cd_err_t *err)
{
    char msg[CD_ERR_MAX];
    cd_err_set(err, CD_ERROR, "%s failed: %s", what, cd_pg_error(dl->conn, res, msg, sizeof(msg)));
    PQclear(res);
    return CD_ERROR;
}

cd_dead_letters_t *cd_dead_letters_new(const cd_pg_conf_t *db, cd_err_t *err)
{
    cd_dead_letters_t *dl = calloc(1, sizeof(*dl));

    if (!dl) {
        cd_err_set(err, CD_ERROR, "out of memory");
        return NULL;
    }
    if (cd_pg_connect(db, "convdiag-dead-letters", &dl->conn, err) != CD_OK) {
        free(dl);
        return NULL;
    }
    return dl;
}

void cd_dead_letters_free(cd_dead_letters_t *dl)
{
    if (!dl)
        return;
    PQfinish(dl->conn);
    free(dl);
}

/*
 * Runs sql with the filter's parameters, then extra[0..nextra) (at most
 * 3); the result when its status is want, else NULL with err saying what
 * failed.
 */
static PGresult *exec_filtered(cd_dead_letters_t *dl, const cd_dead_letter_filter_t *f,
                               const char *sql, const char *const *extra, int nextra,
                               ExecStatusType want, const char *what, cd_err_t *err)
{
    const char *params[FILTER_NPARAMS + 3];
    char since[32], until[32];
    PGresult *res = NULL;
    cd_buf_t ids;

    cd_buf_init(&ids);
    if (!filter_params(f, &ids, since, until, params)) {
        cd_err_set(err, CD_ERROR, "%s failed: out of memory listing %zu ids", what, f->nids);
        goto out;
    }
    for (int i = 0; i < nextra; i++)
        params[FILTER_NPARAMS + i] = extra[i];
    res = PQexecParams(dl->conn, sql, FILTER_NPARAMS + nextra, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != want) {
        query_failed(dl, res, what, err);
        res = NULL;
    }
out:
    cd_buf_fini(&ids);
    return res;
}

cd_status_t cd_dead_letters_count(cd_dead_letters_t *dl, const cd_dead_letter_filter_t *f,
                                  size_t *count, cd_err_t *err)
{
    PGresult *res = exec_filtered(dl, f, "SELECT count(*) FROM dead_letters WHERE " FILTER, NULL,
                                  0, PGRES_TUPLES_OK, "counting dead letters", err);
    if (!res)
        return CD_ERROR;
    *count = (size_t)strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return CD_OK;
}

/* A copy of a text cell, NULL for SQL NULL; false when memory runs out. */
static bool copy_text(const PGresult *res, int row, int col, char **out)
{
    *out = NULL;
    return PQgetisnull(res, row, col) || (*out = strdup(PQgetvalue(res, row, col))) != NULL;
}

/* A bytea cell (text format, hex) as raw bytes with a NUL after them. */
static bool copy_bytea(const PGresult *res, int row, int col, char **out, size_t *len)
{
    size_t n;
    unsigned char *raw;

    *out = NULL;
    *len = 0;
    if (PQgetisnull(res, row, col))
        return true;
    if (!(raw = PQunescapeBytea((const unsigned char *)PQgetvalue(res, row, col), &n)))
        return false;
    if ((*out = malloc(n + 1))) {
        memcpy(*out, raw, n);
        (*out)[n] = '\0';
        *len = n;
    }
    PQfreemem(raw);
    return *out != NULL;
}

static bool copy_row(const PGresult *res, int r, cd_dead_letter_t *d)
{
    size_t payload_len;

    d->id = strtoll(PQgetvalue(res, r, F_ID), NULL, 10);
    d->partition = (int32_t)strtol(PQgetvalue(res, r, F_PARTITION), NULL, 10);
    d->offset = strtoll(PQgetvalue(res, r, F_OFFSET), NULL, 10);
    d->len = (size_t)strtoull(PQgetvalue(res, r, F_LEN), NULL, 10);
    return copy_text(res, r, F_TOPIC, &d->topic) &&
           copy_bytea(res, r, F_KEY, &d->key, &d->key_len) &&
           copy_bytea(res, r, F_PAYLOAD, &d->payload, &payload_len) &&
           copy_text(res, r, F_REASON, &d->reason) &&
           copy_text(res, r, F_TRACEPARENT, &d->traceparent) &&
           copy_text(res, r, F_TRACESTATE, &d->tracestate) &&
           copy_text(res, r, F_KAFKA_TIME, &d->kafka_time) &&
           copy_text(res, r, F_RECEIVED_AT, &d->received_at) &&
           copy_text(res, r, F_REPLAYED_AT, &d->replayed_at);
}

cd_status_t cd_dead_letters_fetch(cd_dead_letters_t *dl, const cd_dead_letter_filter_t *f,
                                  int64_t after_id, size_t max, bool with_payload,
                                  cd_dead_letter_list_t *out, cd_err_t *err)
{
    char after[24], limit[24];
    const char *extra[3] = {after, limit, with_payload ? "true" : "false"};
    cd_status_t st = CD_OK;

    memset(out, 0, sizeof(*out));
    snprintf(after, sizeof(after), "%lld", (long long)after_id);
    snprintf(limit, sizeof(limit), "%zu", max);
    PGresult *res = exec_filtered(dl, f, fetch_sql, extra, 3, PGRES_TUPLES_OK,
                                  "reading dead letters", err);
    if (!res)
        return CD_ERROR;
    int rows = PQntuples(res);
    if (rows && !(out->items = calloc((size_t)rows, sizeof(*out->items)))) {
        st = cd_err_set(err, CD_ERROR, "out of memory for %d dead letters", rows);
        goto out;
    }
    for (int r = 0; r < rows; r++) {
        out->count++; /* counted first, so that fini frees what a failed copy left */
        if (!copy_row(res, r, &out->items[r])) {
            st = cd_err_set(err, CD_ERROR, "out of memory copying dead letter %s",
                            PQgetvalue(res, r, F_ID));
            goto out;
        }
    }
out:
    PQclear(res);
    if (st != CD_OK)
        cd_dead_letter_list_fini(out);
    return st;
}

cd_status_t cd_dead_letters_mark_replayed(cd_dead_letters_t *dl, const int64_t *ids, size_t n,
                                          size_t *marked, cd_err_t *err)
{
    cd_dead_letter_filter_t f = {.ids = ids, .nids = n, .replayed = true};

    *marked = 0;
    if (n == 0)
        return CD_OK;
    PGresult *res =
        exec_filtered(dl, &f, "UPDATE dead_letters SET replayed_at = now() WHERE " FILTER, NULL,
                      0, PGRES_COMMAND_OK, "marking dead letters replayed", err);
    if (!res)
        return CD_ERROR;
    *marked = (size_t)strtoull(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return CD_OK;
}

void cd_dead_letter_list_fini(cd_dead_letter_list_t *list)
{
    for (size_t i = 0; i < list->count; i++) {
        cd_dead_letter_t *d = &list->items[i];
        free(d->topic);
        free(d->key);
        free(d->payload);
        free(d->reason);
        free(d->traceparent);
        free(d->tracestate);
        free(d->kafka_time);
        free(d->received_at);
        free(d->replayed_at);
    }
    free(list->items);
    memset(list, 0, sizeof(*list));
}
