/*
 * pg_session.c -- a PostgreSQL connection whose every wait is bounded; see pg.h.
 *
 * libpq's blocking calls wait as long as the socket stays open, and a
 * silent peer (a partition, or a proxy that keeps acknowledging) keeps it
 * open forever.  So the connection runs in nonblocking mode and each wait
 * is a poll() on its socket, bounded by the answer timeout and woken by the
 * abandon descriptor, through which shutdown ends every wait at once.
 */
#include "pg.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cd_pg_init(cd_pg_t *pg, const cd_pg_conf_t *conf, const char *app, int abandon_fd)
{
    memset(pg, 0, sizeof(*pg));
    pg->conf = conf;
    pg->app = app;
    pg->abandon_fd = abandon_fd;
}

void cd_pg_close(cd_pg_t *pg)
{
    if (pg->conn)
        PQfinish(pg->conn);
    pg->conn = NULL;
}

bool cd_pg_is_open(const cd_pg_t *pg) { return pg->conn && PQstatus(pg->conn) == CONNECTION_OK; }

static int64_t deadline_after(int ms) { return ms > 0 ? cd_mono_us() + (int64_t)ms * 1000 : 0; }

/*
 * Waits until the socket is readable (or writable too, with write), the
 * deadline (0: none) passes or the abandon fd is readable.  CD_OK when the
 * socket is ready; otherwise the connection is closed and err says why.
 */
static cd_status_t wait_socket(cd_pg_t *pg, bool write, int64_t deadline, const char *what,
                               cd_err_t *err)
{
    for (;;) {
        struct pollfd fds[2] = {
            {.fd = PQsocket(pg->conn), .events = (short)(POLLIN | (write ? POLLOUT : 0))},
            {.fd = pg->abandon_fd, .events = POLLIN},
        };
        int timeout = -1;
        if (deadline) {
            int64_t left = deadline - cd_mono_us();
            if (left <= 0) {
                int ms = cd_pg_answer_timeout_ms(pg->conf);
                cd_pg_close(pg);
                pg->sqlstate[0] = '\0';
                return cd_err_set(err, CD_RETRY,
                                  "%s failed: PostgreSQL did not answer within %d ms "
                                  "(database.statement.timeout.ms + %d ms), connection closed",
                                  what, ms, CD_PG_ANSWER_GRACE_MS);
            }
            timeout = (int)((left + 999) / 1000);
        }
        int n = poll(fds, pg->abandon_fd >= 0 ? 2 : 1, timeout);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            cd_pg_close(pg);
            return cd_err_set(err, CD_RETRY, "%s failed: poll: %s", what, strerror(errno));
        }
        if (n > 0 && pg->abandon_fd >= 0 && (fds[1].revents & POLLIN)) {
            cd_pg_close(pg);
            pg->abandoned = true;
            pg->sqlstate[0] = '\0';
            return cd_err_set(err, CD_RETRY, "%s abandoned: shutting down", what);
        }
        if (n > 0 && fds[0].revents)
            return CD_OK;
    }
}

/* A failure of the connection itself: closes it, keeps libpq's reason. */
static cd_status_t conn_failed(cd_pg_t *pg, const char *what, cd_err_t *err)
{
    char msg[CD_ERR_MAX];
    cd_err_set(err, CD_RETRY, "%s failed: %s", what, cd_pg_error(pg->conn, NULL, msg, sizeof(msg)));
    pg->sqlstate[0] = '\0';
    cd_pg_close(pg);
    return CD_RETRY;
}

cd_status_t cd_pg_open(cd_pg_t *pg, cd_err_t *err)
{
    cd_pg_params_t p;
    char msg[CD_ERR_MAX];

    pg->abandoned = false;
    if (cd_pg_is_open(pg))
        return CD_OK;
    cd_pg_close(pg);
    cd_pg_params_init(&p, pg->conf, pg->app);
    pg->conn = PQconnectStartParams(p.keys, p.vals, 1);
    cd_pg_params_fini(&p);
    if (!pg->conn)
        return cd_err_set(err, CD_RETRY, "cannot connect to PostgreSQL: out of memory");
    /* PQconnectPoll leaves connect_timeout to its caller: this is it. */
    int64_t deadline = deadline_after(pg->conf->connect_timeout_ms);
    PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
    while (PQstatus(pg->conn) != CONNECTION_BAD && ps != PGRES_POLLING_OK &&
           ps != PGRES_POLLING_FAILED) {
        cd_err_t why;
        if (wait_socket(pg, ps == PGRES_POLLING_WRITING, deadline, "connecting to PostgreSQL",
                        &why) != CD_OK)
            return cd_err_set(err, CD_RETRY, "cannot connect to PostgreSQL: %s", why.msg);
        ps = PQconnectPoll(pg->conn);
    }
    if (PQstatus(pg->conn) != CONNECTION_OK) {
        cd_err_set(err, CD_RETRY, "cannot connect to PostgreSQL: %s",
                   cd_pg_error(pg->conn, NULL, msg, sizeof(msg)));
        cd_pg_close(pg);
        return CD_RETRY;
    }
    if (PQsetnonblocking(pg->conn, 1) != 0)
        return conn_failed(pg, "setting the connection nonblocking", err);
    return CD_OK;
}

/* Sends what libpq has buffered, waiting (bounded) while the socket is full. */
static cd_status_t flush(cd_pg_t *pg, int64_t deadline, const char *what, cd_err_t *err)
{
    int r;
    while ((r = PQflush(pg->conn)) == 1) {
        if (wait_socket(pg, true, deadline, what, err) != CD_OK)
            return CD_RETRY;
        /* Reading while we wait keeps the server from blocking on a full pipe. */
        if (!PQconsumeInput(pg->conn))
            return conn_failed(pg, what, err);
    }
    return r == 0 ? CD_OK : conn_failed(pg, what, err);
}

/* The next result, or NULL at the end of a statement's results (*st CD_OK),
 * or NULL with *st telling a failure of the wait or the connection. */
static PGresult *next_result(cd_pg_t *pg, int64_t deadline, const char *what, cd_status_t *st,
                             cd_err_t *err)
{
    *st = CD_OK;
    while (PQisBusy(pg->conn)) {
        if ((*st = wait_socket(pg, false, deadline, what, err)) != CD_OK)
            return NULL;
        if (!PQconsumeInput(pg->conn)) {
            *st = conn_failed(pg, what, err);
            return NULL;
        }
    }
    return PQgetResult(pg->conn);
}

/* A result that is a failure: classified, described, cleared. */
static cd_status_t result_failed(cd_pg_t *pg, PGresult *res, const char *what, cd_err_t *err)
{
    char msg[CD_ERR_MAX];
    snprintf(pg->sqlstate, sizeof(pg->sqlstate), "%s", cd_pg_sqlstate(res));
    bool down = PQstatus(pg->conn) != CONNECTION_OK;
    cd_status_t st = down || cd_pg_is_transient(pg->sqlstate) ? CD_RETRY : CD_ERROR;
    cd_err_set(err, st, "%s failed: %s", what, cd_pg_error(pg->conn, res, msg, sizeof(msg)));
    PQclear(res);
    /* Read-only after a failover: a new connection may find the new primary
     * (target_session_attrs=read-write in the connection string). */
    if (down || strcmp(pg->sqlstate, "25006") == 0)
        cd_pg_close(pg);
    return st;
}

/* Collects one statement's results: the first kept (or a failure), the rest drained. */
static cd_status_t collect(cd_pg_t *pg, const char *what, PGresult **out, cd_err_t *err)
{
    int64_t deadline = deadline_after(cd_pg_answer_timeout_ms(pg->conf));
    cd_status_t st;
    PGresult *res = next_result(pg, deadline, what, &st, err);

    if (!res)
        return st != CD_OK ? st : conn_failed(pg, what, err);
    ExecStatusType rs = PQresultStatus(res);
    if (rs == PGRES_COPY_IN) {
        /* The COPY's data follows; its outcome comes at cd_pg_copy_end. */
        if (out)
            *out = res;
        else
            PQclear(res);
        return CD_OK;
    }
    if (rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK) {
        st = result_failed(pg, res, what, err);
    } else if (out) {
        *out = res;
    } else {
        PQclear(res);
    }
    /* The end of the statement's results, so the next one may be sent; a
     * string of several statements fails if any of them does. */
    PGresult *extra;
    cd_status_t est;
    while (pg->conn && (extra = next_result(pg, deadline, what, &est, err)) != NULL) {
        rs = PQresultStatus(extra);
        if (st == CD_OK && rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK) {
            if (out) {
                PQclear(*out);
                *out = NULL;
            }
            st = result_failed(pg, extra, what, err);
        } else {
            PQclear(extra);
        }
    }
    if (st == CD_OK && !pg->conn) {
        if (out) {
            PQclear(*out);
            *out = NULL;
        }
        return CD_RETRY;
    }
    return st;
}

cd_status_t cd_pg_query(cd_pg_t *pg, const char *what, const char *sql, bool prepared, int n,
                        const char *const *vals, const int *lens, const int *fmts,
                        PGresult **res, cd_err_t *err)
{
    int64_t deadline = deadline_after(cd_pg_answer_timeout_ms(pg->conf));
    int sent;

    if (res)
        *res = NULL;
    pg->sqlstate[0] = '\0';
    pg->abandoned = false;
    if (!cd_pg_is_open(pg))
        return cd_err_set(err, CD_RETRY, "%s failed: not connected to PostgreSQL", what);
    if (prepared)
        sent = PQsendQueryPrepared(pg->conn, sql, n, vals, lens, fmts, 0);
    else if (n == 0 && !vals)
        sent = PQsendQuery(pg->conn, sql);
    else
        sent = PQsendQueryParams(pg->conn, sql, n, NULL, vals, lens, fmts, 0);
    if (!sent)
        return conn_failed(pg, what, err);
    if (flush(pg, deadline, what, err) != CD_OK)
        return CD_RETRY;
    return collect(pg, what, res, err);
}

cd_status_t cd_pg_exec(cd_pg_t *pg, const char *sql, cd_err_t *err)
{
    return cd_pg_query(pg, sql, sql, false, 0, NULL, NULL, NULL, NULL, err);
}

cd_status_t cd_pg_prepare(cd_pg_t *pg, const char *name, const char *sql, int n, cd_err_t *err)
{
    int64_t deadline = deadline_after(cd_pg_answer_timeout_ms(pg->conf));
    char what[96];

    snprintf(what, sizeof(what), "preparing %s", name);
    pg->sqlstate[0] = '\0';
    if (!cd_pg_is_open(pg))
        return cd_err_set(err, CD_RETRY, "%s failed: not connected to PostgreSQL", what);
    if (!PQsendPrepare(pg->conn, name, sql, n, NULL))
        return conn_failed(pg, what, err);
    if (flush(pg, deadline, what, err) != CD_OK)
        return CD_RETRY;
    return collect(pg, what, NULL, err);
}

cd_status_t cd_pg_copy_send(cd_pg_t *pg, const char *what, const char *data, size_t len,
                            cd_err_t *err)
{
    int64_t deadline = deadline_after(cd_pg_answer_timeout_ms(pg->conf));
    int r;

    if (!pg->conn)
        return cd_err_set(err, CD_RETRY, "%s failed: not connected to PostgreSQL", what);
    while (len > 0) {
        /* libpq takes an int's worth at a time. */
        int chunk = len > (1u << 30) ? 1 << 30 : (int)len;
        while ((r = PQputCopyData(pg->conn, data, chunk)) == 0)
            if (flush(pg, deadline, what, err) != CD_OK)
                return CD_RETRY;
        if (r < 0)
            return conn_failed(pg, what, err);
        data += chunk;
        len -= (size_t)chunk;
    }
    /* libpq only buffers: send now, so the server works while we format. */
    return flush(pg, deadline, what, err);
}

cd_status_t cd_pg_copy_end(cd_pg_t *pg, const char *what, const char *why, size_t *rows,
                           cd_err_t *err)
{
    int64_t deadline = deadline_after(cd_pg_answer_timeout_ms(pg->conf));
    int r;

    if (rows)
        *rows = 0;
    if (!pg->conn)
        return cd_err_set(err, CD_RETRY, "%s failed: not connected to PostgreSQL", what);
    while ((r = PQputCopyEnd(pg->conn, why)) == 0)
        if (flush(pg, deadline, what, err) != CD_OK)
            return CD_RETRY;
    if (r < 0)
        return conn_failed(pg, what, err);
    if (flush(pg, deadline, what, err) != CD_OK)
        return CD_RETRY;
    PGresult *res = NULL;
    cd_status_t st = collect(pg, what, &res, err);
    if (st == CD_OK && rows)
        *rows = (size_t)strtoull(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return st;
}

void cd_pg_rollback(cd_pg_t *pg)
{
    cd_err_t ignored;
    char state[6];

    if (!cd_pg_is_open(pg) || PQtransactionStatus(pg->conn) == PQTRANS_IDLE)
        return;
    /* The failure that led here is what the caller reports, not this one's. */
    memcpy(state, pg->sqlstate, sizeof(state));
    cd_pg_exec(pg, "ROLLBACK", &ignored);
    memcpy(pg->sqlstate, state, sizeof(state));
}
