/* outbox.c -- claiming and settling export_outbox rows; see outbox.h. */
#include "convdiag/outbox.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convdiag/buf.h"
#include "convdiag/timeutil.h"
#include "pg.h"

/* Columns of "claim", then of "load_events". */
enum { R_ID, R_ATTEMPTS, R_EVENT_IDS, R_FIRST, R_LAST };
enum {
    C_EVENT_ID, C_FOUND, C_TIME_US, C_ORG, C_LWI, C_SCENARIO, C_CATEGORY, C_STATUS,
    C_CHANNEL, C_PARTICIPANT, C_USER, C_SESSION, C_OPERATION, C_DURATION, C_FAILURE,
    C_ATTRIBUTES,
};

static const struct statement {
    const char *name;
    const char *sql;
    int nparams;
} statements[] = {
    {"claim",
     "SELECT id, attempts, event_ids, first_event_time, last_event_time FROM export_outbox "
     "WHERE next_attempt_at <= now() ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
     0},
    /* $1: the row's eventIds; $2/$3: its time range, a parameter so that only the
     * partitions of those days are searched.  One index probe per event (LATERAL,
     * whatever the planner guesses of unnest's size).  The duration is the
     * event's own, else that of the run it closed (as the timeline shows it:
     * the run ending at the event's time, for an eventId sent twice);
     * runs are only looked up for the ends that need one. */
    {"load_events",
     "SELECT x.event_id, e.event_id IS NOT NULL, "
     "(extract(epoch FROM e.event_time) * 1000000)::bigint, e.organization_id, "
     "e.live_work_item_id, e.scenario, e.category, e.status, e.channel_type, "
     "e.participant_type, e.user_id, e.session_id, e.operation_id, "
     "coalesce(e.duration_ms, r.duration_ms), e.failure_reason, e.attributes::text "
     "FROM unnest($1::text[]) WITH ORDINALITY AS x(event_id, n) "
     "LEFT JOIN LATERAL (SELECT * FROM events WHERE event_id = x.event_id "
     "AND event_time BETWEEN $2 AND $3 LIMIT 1) AS e ON true "
     "LEFT JOIN LATERAL (SELECT duration_ms FROM scenario_runs WHERE e.status <> 'Started' "
     "AND e.duration_ms IS NULL AND end_event_id = e.event_id "
     "AND live_work_item_id = e.live_work_item_id AND end_time = e.event_time LIMIT 1) AS r "
     "ON true "
     "ORDER BY x.n",
     3},
    {"insert_failure",
     "INSERT INTO export_failures (event_id, event_time, status_code, reason) "
     "VALUES ($1, $2, $3, $4)",
     4},
    {"delete_group", "DELETE FROM export_outbox WHERE id = $1", 1},
    /* $2: the eventIds left, newline-separated (ids hold no control characters). */
    {"retry_group",
     "UPDATE export_outbox SET event_ids = string_to_array($2, E'\\n'), "
     "attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => $3::bigint "
     "/ 1000.0), last_error = $4 WHERE id = $1",
     4},
    {"backlog", "SELECT coalesce(sum(cardinality(event_ids)), 0) FROM export_outbox", 0},
};

struct cd_outbox {
    PGconn *conn;
    const cd_pg_conf_t *db;
    bool ready;
    PGresult *claimed; /* rows of the claimed group, NULL when none */
    cd_outbox_group_t group;
    size_t cap;
    cd_buf_t ids;
};

cd_outbox_t *cd_outbox_new(const cd_pg_conf_t *db)
{
    cd_outbox_t *ob = calloc(1, sizeof(*ob));
    if (!ob)
        return NULL;
    ob->db = db;
    cd_buf_init(&ob->ids);
    return ob;
}

void cd_outbox_free(cd_outbox_t *ob)
{
    if (!ob)
        return;
    PQclear(ob->claimed);
    if (ob->conn)
        PQfinish(ob->conn);
    free(ob->group.items);
    free(ob->group.missing);
    cd_buf_fini(&ob->ids);
    free(ob);
}

/* Classifies a failed result, fills err, clears the result. */
static cd_status_t fail(cd_outbox_t *ob, PGresult *res, const char *what, cd_err_t *err)
{
    char msg[CD_ERR_MAX];
    bool down = PQstatus(ob->conn) != CONNECTION_OK;
    cd_status_t st = down || cd_pg_is_transient(cd_pg_sqlstate(res)) ? CD_RETRY : CD_ERROR;
    cd_err_set(err, st, "export outbox: %s failed: %s", what,
               cd_pg_error(ob->conn, res, msg, sizeof(msg)));
    PQclear(res);
    if (down)
        ob->ready = false;
    return st;
}

static cd_status_t exec_ok(cd_outbox_t *ob, const char *sql, cd_err_t *err)
{
    PGresult *res = PQexec(ob->conn, sql);
    if (PQresultStatus(res) == PGRES_COMMAND_OK) {
        PQclear(res);
        return CD_OK;
    }
    return fail(ob, res, sql, err);
}

static cd_status_t ensure_ready(cd_outbox_t *ob, cd_err_t *err)
{
    if (ob->ready && PQstatus(ob->conn) == CONNECTION_OK)
        return CD_OK;
    ob->ready = false;
    if (ob->conn)
        PQfinish(ob->conn);
    if (cd_pg_connect(ob->db, "convdiag-export", &ob->conn, err) != CD_OK)
        return CD_RETRY;
    for (size_t i = 0; i < CD_ARRAY_LEN(statements); i++) {
        PGresult *res = PQprepare(ob->conn, statements[i].name, statements[i].sql,
                                  statements[i].nparams, NULL);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            cd_status_t st = fail(ob, res, statements[i].name, err);
            if (st == CD_ERROR && strstr(err->msg, "42P01"))
                cd_err_set(err, CD_ERROR, "%s (has `convdiag migrate` been run?)", err->msg);
            return st;
        }
        PQclear(res);
    }
    ob->ready = true;
    return CD_OK;
}

static const char *opt(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static cd_event_status_t status_of(const char *s)
{
    if (s && strcmp(s, "Completed") == 0)
        return CD_EVENT_COMPLETED;
    if (s && strcmp(s, "Failed") == 0)
        return CD_EVENT_FAILED;
    return CD_EVENT_STARTED;
}

void cd_outbox_abort(cd_outbox_t *ob)
{
    PQclear(ob->claimed);
    ob->claimed = NULL;
    if (ob->conn && PQstatus(ob->conn) == CONNECTION_OK)
        PQclear(PQexec(ob->conn, "ROLLBACK"));
}

cd_status_t cd_outbox_claim(cd_outbox_t *ob, cd_outbox_group_t **group, cd_err_t *err)
{
    cd_status_t st;

    *group = NULL;
    if (ob->claimed)
        cd_outbox_abort(ob);
    if ((st = ensure_ready(ob, err)) != CD_OK || (st = exec_ok(ob, "BEGIN", err)) != CD_OK)
        return st;
    PGresult *row = PQexecPrepared(ob->conn, "claim", 0, NULL, NULL, NULL, 0);
    if (PQresultStatus(row) != PGRES_TUPLES_OK) {
        st = fail(ob, row, "claiming a row", err);
        cd_outbox_abort(ob);
        return st;
    }
    if (PQntuples(row) == 0) {
        PQclear(row);
        cd_outbox_abort(ob);
        return CD_OK;
    }
    int64_t id = strtoll(PQgetvalue(row, 0, R_ID), NULL, 10);
    int attempts = atoi(PQgetvalue(row, 0, R_ATTEMPTS));
    const char *vals[3] = {PQgetvalue(row, 0, R_EVENT_IDS), PQgetvalue(row, 0, R_FIRST),
                           PQgetvalue(row, 0, R_LAST)};
    PGresult *res = PQexecPrepared(ob->conn, "load_events", 3, vals, NULL, NULL, 0);
    PQclear(row);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        st = fail(ob, res, "reading the events of an outbox row", err);
        cd_outbox_abort(ob);
        return st;
    }
    size_t n = (size_t)PQntuples(res);
    if (n > ob->cap) {
        cd_export_item_t *items = realloc(ob->group.items, n * sizeof(*items));
        if (items)
            ob->group.items = items;
        bool *missing = realloc(ob->group.missing, n * sizeof(*missing));
        if (missing)
            ob->group.missing = missing;
        if (!items || !missing) {
            PQclear(res);
            cd_outbox_abort(ob);
            return cd_err_set(err, CD_RETRY, "export outbox: out of memory for %zu events", n);
        }
        ob->cap = n;
    }
    ob->claimed = res;
    cd_outbox_group_t *g = &ob->group;
    g->id = id;
    g->attempts = attempts;
    g->count = n;
    for (int r = 0; r < (int)n; r++) {
        cd_export_item_t *it = &g->items[r];
        g->missing[r] = PQgetvalue(res, r, C_FOUND)[0] != 't';
        *it = (cd_export_item_t){.event_id = PQgetvalue(res, r, C_EVENT_ID), .duration_ms = -1};
        if (g->missing[r])
            continue;
        it->time_us = strtoll(PQgetvalue(res, r, C_TIME_US), NULL, 10);
        it->organization_id = opt(res, r, C_ORG);
        it->live_work_item_id = opt(res, r, C_LWI);
        it->scenario = opt(res, r, C_SCENARIO);
        it->category = opt(res, r, C_CATEGORY);
        it->status = status_of(opt(res, r, C_STATUS));
        it->channel_type = opt(res, r, C_CHANNEL);
        it->participant_type = opt(res, r, C_PARTICIPANT);
        it->user_id = opt(res, r, C_USER);
        it->session_id = opt(res, r, C_SESSION);
        it->operation_id = opt(res, r, C_OPERATION);
        if (!PQgetisnull(res, r, C_DURATION))
            it->duration_ms = strtoll(PQgetvalue(res, r, C_DURATION), NULL, 10);
        it->failure_reason = opt(res, r, C_FAILURE);
        it->attributes_json = opt(res, r, C_ATTRIBUTES);
    }
    *group = g;
    return CD_OK;
}

static cd_status_t record_failure(cd_outbox_t *ob, size_t i, const cd_export_outcome_t *o,
                                  cd_err_t *err)
{
    const cd_outbox_group_t *g = &ob->group;
    char t[40], code[16];
    cd_time_format_utc(g->items[i].time_us, 6, t, sizeof(t));
    snprintf(code, sizeof(code), "%d", o->status);
    const char *vals[4] = {g->items[i].event_id, g->missing[i] ? NULL : t,
                           o->status ? code : NULL,
                           o->message ? o->message : "refused, no reason given"};
    PGresult *res = PQexecPrepared(ob->conn, "insert_failure", 4, vals, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return fail(ob, res, "INSERT INTO export_failures", err);
    PQclear(res);
    return CD_OK;
}

cd_status_t cd_outbox_finish(cd_outbox_t *ob, const cd_export_outcome_t *outcomes,
                             int64_t retry_delay_ms, const char *reason, cd_err_t *err)
{
    const cd_outbox_group_t *g = &ob->group;
    cd_status_t st = CD_OK;
    PGresult *res;
    char id[24], delay[24];

    if (!ob->claimed)
        return cd_err_set(err, CD_ERROR, "export outbox: no row claimed");
    cd_buf_reset(&ob->ids);
    for (size_t i = 0; i < g->count && st == CD_OK; i++) {
        if (outcomes[i].fate == CD_EXPORT_FINAL) {
            st = record_failure(ob, i, &outcomes[i], err);
        } else if (outcomes[i].fate == CD_EXPORT_RESEND) {
            if (ob->ids.len)
                cd_buf_putc(&ob->ids, '\n');
            cd_buf_puts(&ob->ids, g->items[i].event_id);
        }
    }
    if (st == CD_OK && ob->ids.oom)
        st = cd_err_set(err, CD_RETRY, "export outbox: out of memory listing events to resend");
    if (st != CD_OK)
        goto out;
    snprintf(id, sizeof(id), "%lld", (long long)g->id);
    snprintf(delay, sizeof(delay), "%lld", (long long)retry_delay_ms);
    if (ob->ids.len) {
        const char *vals[4] = {id, ob->ids.data, delay, reason};
        res = PQexecPrepared(ob->conn, "retry_group", 4, vals, NULL, NULL, 0);
    } else {
        const char *vals[1] = {id};
        res = PQexecPrepared(ob->conn, "delete_group", 1, vals, NULL, NULL, 0);
    }
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        st = fail(ob, res, ob->ids.len ? "UPDATE export_outbox" : "DELETE FROM export_outbox",
                  err);
        goto out;
    }
    PQclear(res);
    st = exec_ok(ob, "COMMIT", err);
out:
    if (st != CD_OK)
        cd_outbox_abort(ob);
    PQclear(ob->claimed);
    ob->claimed = NULL;
    return st;
}

cd_status_t cd_outbox_backlog(cd_outbox_t *ob, int64_t *events, cd_err_t *err)
{
    cd_status_t st;
    *events = 0;
    if (ob->claimed)
        return cd_err_set(err, CD_ERROR, "export outbox: backlog asked with a row claimed");
    if ((st = ensure_ready(ob, err)) != CD_OK)
        return st;
    PGresult *res = PQexecPrepared(ob->conn, "backlog", 0, NULL, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return fail(ob, res, "reading the backlog", err);
    *events = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return CD_OK;
}
