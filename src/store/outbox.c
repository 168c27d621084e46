/* outbox.c -- claiming and settling export_outbox rows; see outbox.h. */
#include "convdiag/outbox.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convdiag/buf.h"
#include "convdiag/timeutil.h"
#include "outbox_private.h"

/* Columns of "claim", then of "load_events". */
enum { R_ID, R_ATTEMPTS, R_EVENT_IDS, R_FIRST, R_LAST, R_BEFORE };
enum {
    C_EVENT_ID, C_FOUND, C_TIME_US, C_ORG, C_LWI, C_SCENARIO, C_CATEGORY, C_STATUS,
    C_CHANNEL, C_PARTICIPANT, C_USER, C_SESSION, C_OPERATION, C_DURATION, C_FAILURE,
    C_ATTRIBUTES,
};

static const struct statement statements[] = {
    /* $1: the sender; $2: the lease in ms.  A committed lease, not a lock held
     * across the request; a lease run out is anyone's (R_BEFORE: whose it was). */
    {"claim",
     "WITH c AS (SELECT id, claimed_by FROM export_outbox WHERE next_attempt_at <= now() "
     "AND (claimed_until IS NULL OR claimed_until < now()) ORDER BY id LIMIT 1 "
     "FOR UPDATE SKIP LOCKED) "
     "UPDATE export_outbox o SET claimed_by = $1, "
     "claimed_until = now() + make_interval(secs => $2::bigint / 1000.0) FROM c "
     "WHERE o.id = c.id "
     "RETURNING o.id, o.attempts, o.event_ids, o.first_event_time, o.last_event_time, "
     "c.claimed_by",
     2},
    {"renew",
     "UPDATE export_outbox SET claimed_until = now() + make_interval(secs => $3::bigint "
     "/ 1000.0) WHERE id = $1 AND claimed_by = $2",
     3},
    {"release",
     "UPDATE export_outbox SET claimed_by = NULL, claimed_until = NULL "
     "WHERE id = $1 AND claimed_by = $2",
     2},
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
    {"delete_group", "DELETE FROM export_outbox WHERE id = $1 AND claimed_by = $2", 2},
    /* $2: the eventIds left, newline-separated (ids hold no control characters). */
    {"retry_group",
     "UPDATE export_outbox SET event_ids = string_to_array($2, E'\\n'), "
     "attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => $3::bigint "
     "/ 1000.0), last_error = $4, claimed_by = NULL, claimed_until = NULL "
     "WHERE id = $1 AND claimed_by = $5",
     5},
    /* The outbox has a row per stored batch, not per event: summing it is cheap. */
    {"backlog",
     "SELECT coalesce(sum(cardinality(event_ids)), 0), "
     "coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM export_outbox",
     0},
};

cd_outbox_t *cd_outbox_new(const cd_pg_conf_t *db, const char *sender, int lease_ms)
{
    cd_outbox_t *ob = calloc(1, sizeof(*ob));
    if (!ob)
        return NULL;
    ob->db = db;
    ob->lease_ms = lease_ms;
    cd_buf_init(&ob->ids);
    if (!(ob->sender = strdup(sender))) {
        free(ob);
        return NULL;
    }
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
    free(ob->sender);
    free(ob);
}

cd_status_t cd_outbox_fail(cd_outbox_t *ob, PGresult *res, const char *what, cd_err_t *err)
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
    return cd_outbox_fail(ob, res, sql, err);
}

static cd_status_t prepare(cd_outbox_t *ob, const struct statement *sts, size_t n, cd_err_t *err)
{
    for (size_t i = 0; i < n; i++) {
        PGresult *res = PQprepare(ob->conn, sts[i].name, sts[i].sql, sts[i].nparams, NULL);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            cd_status_t st = cd_outbox_fail(ob, res, sts[i].name, err);
            if (st == CD_ERROR && strstr(err->msg, "42P01"))
                cd_err_set(err, CD_ERROR, "%s (has `convdiag migrate` been run?)", err->msg);
            return st;
        }
        PQclear(res);
    }
    return CD_OK;
}

cd_status_t cd_outbox_ready(cd_outbox_t *ob, cd_err_t *err)
{
    cd_status_t st;
    if (ob->ready && PQstatus(ob->conn) == CONNECTION_OK)
        return CD_OK;
    ob->ready = false;
    if (ob->conn)
        PQfinish(ob->conn);
    if (cd_pg_connect(ob->db, "convdiag-export", &ob->conn, err) != CD_OK)
        return CD_RETRY;
    if ((st = prepare(ob, statements, CD_ARRAY_LEN(statements), err)) != CD_OK ||
        (st = prepare(ob, cd_outbox_pause_statements, cd_outbox_pause_statement_count, err)) !=
            CD_OK)
        return st;
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

static void forget_claim(cd_outbox_t *ob)
{
    PQclear(ob->claimed);
    ob->claimed = NULL;
}

void cd_outbox_abort(cd_outbox_t *ob)
{
    if (!ob->claimed)
        return;
    if (ob->conn && PQstatus(ob->conn) == CONNECTION_OK) {
        if (PQtransactionStatus(ob->conn) != PQTRANS_IDLE)
            PQclear(PQexec(ob->conn, "ROLLBACK")); /* a finish cut short left one open */
        char id[24];
        snprintf(id, sizeof(id), "%lld", (long long)ob->group.id);
        const char *vals[2] = {id, ob->sender};
        /* At worst the lease runs out by itself. */
        PQclear(PQexecPrepared(ob->conn, "release", 2, vals, NULL, NULL, 0));
    }
    forget_claim(ob);
}

/* The group's items, from the rows of load_events. */
static cd_status_t fill_group(cd_outbox_t *ob, PGresult *res, cd_err_t *err)
{
    size_t n = (size_t)PQntuples(res);
    if (n > ob->cap) {
        cd_export_item_t *items = realloc(ob->group.items, n * sizeof(*items));
        if (items)
            ob->group.items = items;
        bool *missing = realloc(ob->group.missing, n * sizeof(*missing));
        if (missing)
            ob->group.missing = missing;
        if (!items || !missing)
            return cd_err_set(err, CD_RETRY, "export outbox: out of memory for %zu events", n);
        ob->cap = n;
    }
    cd_outbox_group_t *g = &ob->group;
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
    return CD_OK;
}

cd_status_t cd_outbox_claim(cd_outbox_t *ob, cd_outbox_group_t **group, cd_err_t *err)
{
    cd_status_t st;
    char lease[24];

    *group = NULL;
    cd_outbox_abort(ob);
    if ((st = cd_outbox_ready(ob, err)) != CD_OK)
        return st;
    snprintf(lease, sizeof(lease), "%d", ob->lease_ms);
    const char *args[2] = {ob->sender, lease};
    PGresult *row = PQexecPrepared(ob->conn, "claim", 2, args, NULL, NULL, 0);
    if (PQresultStatus(row) != PGRES_TUPLES_OK)
        return cd_outbox_fail(ob, row, "claiming a row", err);
    if (PQntuples(row) == 0) {
        PQclear(row);
        return CD_OK;
    }
    cd_outbox_group_t *g = &ob->group;
    g->id = strtoll(PQgetvalue(row, 0, R_ID), NULL, 10);
    g->attempts = atoi(PQgetvalue(row, 0, R_ATTEMPTS));
    snprintf(g->taken_over_from, sizeof(g->taken_over_from), "%s",
             PQgetisnull(row, 0, R_BEFORE) ? "" : PQgetvalue(row, 0, R_BEFORE));
    g->count = 0;
    ob->renewed_us = cd_mono_us();
    /* The row is ours from here: a failure below gives it back (abort). */
    ob->claimed = row;
    const char *vals[3] = {PQgetvalue(row, 0, R_EVENT_IDS), PQgetvalue(row, 0, R_FIRST),
                           PQgetvalue(row, 0, R_LAST)};
    PGresult *res = PQexecPrepared(ob->conn, "load_events", 3, vals, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        st = cd_outbox_fail(ob, res, "reading the events of an outbox row", err);
        cd_outbox_abort(ob);
        return st;
    }
    PQclear(row);
    ob->claimed = res;
    if ((st = fill_group(ob, res, err)) != CD_OK) {
        cd_outbox_abort(ob);
        return st;
    }
    *group = g;
    return CD_OK;
}

int64_t cd_outbox_claimed_id(const cd_outbox_t *ob) { return ob->claimed ? ob->group.id : -1; }

cd_status_t cd_outbox_renew(cd_outbox_t *ob, bool *lost, cd_err_t *err)
{
    char id[24], lease[24];

    *lost = false;
    if (!ob->claimed)
        return CD_OK;
    /* A third of the lease gone: renewed long before it runs out. */
    if (cd_mono_us() - ob->renewed_us < (int64_t)ob->lease_ms * 1000 / 3)
        return CD_OK;
    ob->renewed_us = cd_mono_us(); /* tried or done: the next try a third of a lease on */
    if (!ob->ready || PQstatus(ob->conn) != CONNECTION_OK)
        return cd_err_set(err, CD_RETRY, "export outbox: no connection to renew the lease on");
    snprintf(id, sizeof(id), "%lld", (long long)ob->group.id);
    snprintf(lease, sizeof(lease), "%d", ob->lease_ms);
    const char *vals[3] = {id, ob->sender, lease};
    PGresult *res = PQexecPrepared(ob->conn, "renew", 3, vals, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return cd_outbox_fail(ob, res, "renewing the lease of an outbox row", err);
    *lost = strcmp(PQcmdTuples(res), "1") != 0;
    PQclear(res);
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
        return cd_outbox_fail(ob, res, "INSERT INTO export_failures", err);
    PQclear(res);
    return CD_OK;
}

cd_status_t cd_outbox_finish(cd_outbox_t *ob, const cd_export_outcome_t *outcomes,
                             int64_t retry_delay_ms, const char *reason, bool *lost,
                             cd_err_t *err)
{
    const cd_outbox_group_t *g = &ob->group;
    cd_status_t st;
    PGresult *res;
    char id[24], delay[24];

    *lost = false;
    if (!ob->claimed)
        return cd_err_set(err, CD_ERROR, "export outbox: no row claimed");
    cd_buf_reset(&ob->ids);
    for (size_t i = 0; i < g->count; i++) {
        if (outcomes[i].fate != CD_EXPORT_RESEND)
            continue;
        if (ob->ids.len)
            cd_buf_putc(&ob->ids, '\n');
        cd_buf_puts(&ob->ids, g->items[i].event_id);
    }
    if (ob->ids.oom)
        return cd_err_set(err, CD_RETRY, "export outbox: out of memory listing events to resend");
    if ((st = cd_outbox_ready(ob, err)) != CD_OK || (st = exec_ok(ob, "BEGIN", err)) != CD_OK)
        return st;
    /* The row first: it says whether it is still ours, and locks it. */
    snprintf(id, sizeof(id), "%lld", (long long)g->id);
    snprintf(delay, sizeof(delay), "%lld", (long long)retry_delay_ms);
    if (ob->ids.len) {
        const char *vals[5] = {id, ob->ids.data, delay, reason, ob->sender};
        res = PQexecPrepared(ob->conn, "retry_group", 5, vals, NULL, NULL, 0);
    } else {
        const char *vals[2] = {id, ob->sender};
        res = PQexecPrepared(ob->conn, "delete_group", 2, vals, NULL, NULL, 0);
    }
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        st = cd_outbox_fail(ob, res, ob->ids.len ? "UPDATE export_outbox"
                                                 : "DELETE FROM export_outbox", err);
        goto out;
    }
    *lost = strcmp(PQcmdTuples(res), "1") != 0;
    PQclear(res);
    if (*lost) {
        /* Another sender took the row over once the lease ran out: it records. */
        st = exec_ok(ob, "ROLLBACK", err);
        goto out;
    }
    for (size_t i = 0; i < g->count && st == CD_OK; i++)
        if (outcomes[i].fate == CD_EXPORT_FINAL)
            st = record_failure(ob, i, &outcomes[i], err);
    if (st == CD_OK)
        st = exec_ok(ob, "COMMIT", err);
out:
    if (st == CD_OK) {
        forget_claim(ob);
        return CD_OK;
    }
    /* Nothing recorded, the row still claimed: the caller tries again or aborts. */
    if (PQstatus(ob->conn) == CONNECTION_OK && PQtransactionStatus(ob->conn) != PQTRANS_IDLE)
        PQclear(PQexec(ob->conn, "ROLLBACK"));
    return st;
}

cd_status_t cd_outbox_backlog(cd_outbox_t *ob, cd_outbox_backlog_t *out, cd_err_t *err)
{
    cd_status_t st;
    *out = (cd_outbox_backlog_t){0};
    if ((st = cd_outbox_ready(ob, err)) != CD_OK)
        return st;
    PGresult *res = PQexecPrepared(ob->conn, "backlog", 0, NULL, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return cd_outbox_fail(ob, res, "reading the backlog", err);
    out->events = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    out->oldest_age_s = strtod(PQgetvalue(res, 0, 1), NULL);
    PQclear(res);
    return CD_OK;
}
