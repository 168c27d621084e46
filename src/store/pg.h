/*
 * pg.h -- PostgreSQL connections and their failures, private to store/.
 *
 *  - pg_error.c: a failure as one line of text, and whether it is worth
 *    trying again;
 *  - pg_connect.c: connecting with the bounds of convdiag/pg.h;
 *  - pg_session.c: a connection whose every wait is bounded, by the answer
 *    timeout and by an "abandon" file descriptor that another thread makes
 *    readable to end all waits at once (shutdown).
 */
#ifndef CONVDIAG_STORE_PG_H
#define CONVDIAG_STORE_PG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "convdiag/common.h"
#include "convdiag/pg.h"

/* ---- pg_error.c ---------------------------------------------------------- */

/* "primary message (SQLSTATE xxxxx)" of a failed result, or libpq's own
 * message (first line) when res is NULL or carries none. Returns buf. */
const char *cd_pg_error(const PGconn *conn, const PGresult *res, char *buf, size_t size);

/* The SQLSTATE of res, or "" when there is none (client-side failure). */
const char *cd_pg_sqlstate(const PGresult *res);

/* Transient failures, worth trying again: the connection, the server going
 * away or turning read-only (a failover), resources, serialization, locks;
 * "" (no SQLSTATE) is a client or wire failure. */
bool cd_pg_is_transient(const char *sqlstate);

/* Failures of contention (a lock not granted in time, a deadlock, a
 * serialization failure): transient, yet the server is there. */
bool cd_pg_is_contention(const char *sqlstate);

/* ---- pg_connect.c -------------------------------------------------------- */

/*
 * Connects as application `app` with the bounds of conf, blocking for at
 * most the connect timeout.  CD_OK with *conn set; CD_RETRY, the server
 * being unreachable for now, with *conn NULL and err saying why.
 */
cd_status_t cd_pg_connect(const cd_pg_conf_t *conf, const char *app, PGconn **conn,
                          cd_err_t *err);

/* The keyword/value arrays for PQconnect*Params: conf's bounds first, the
 * user's connection string last so that it overrides them.  The strings
 * live in p. */
typedef struct cd_pg_params {
    const char *keys[12];
    const char *vals[12];
    char text[5][24];
    char *options; /* owned */
} cd_pg_params_t;
void cd_pg_params_init(cd_pg_params_t *p, const cd_pg_conf_t *conf, const char *app);
void cd_pg_params_fini(cd_pg_params_t *p);

/* ---- pg_session.c -------------------------------------------------------- */

typedef struct cd_pg {
    PGconn *conn;             /* NULL while closed */
    const cd_pg_conf_t *conf; /* borrowed */
    const char *app;          /* borrowed: application_name */
    int abandon_fd;           /* -1, or readable once every wait must end */
    char sqlstate[6];         /* of the last failure; "" for none or a client failure */
    bool abandoned;           /* the last failure was the abandon fd */
} cd_pg_t;

void cd_pg_init(cd_pg_t *pg, const cd_pg_conf_t *conf, const char *app, int abandon_fd);
/* Closes the connection (a transaction in progress is rolled back by the server). */
void cd_pg_close(cd_pg_t *pg);
bool cd_pg_is_open(const cd_pg_t *pg);

/*
 * Connects unless connected.  CD_RETRY: not reachable (yet), or abandoned;
 * CD_ERROR: the server refuses us (password, database, role).
 */
cd_status_t cd_pg_open(cd_pg_t *pg, cd_err_t *err);

/*
 * Runs one statement: sql with n text parameters (lens/fmts may be NULL, as
 * for PQexecParams), or, when prepared is true, the prepared statement named
 * sql.  CD_OK: the server answered with success (PGRES_COMMAND_OK,
 * TUPLES_OK or COPY_IN); *res gets the result when res is not NULL (the
 * caller clears it).  Otherwise err says "<what> failed: ..." and
 * pg->sqlstate why; CD_RETRY for transient failures (the connection is
 * closed when the failure leaves it unusable, or after a failover made the
 * server read-only), CD_ERROR for the rest.
 */
cd_status_t cd_pg_query(cd_pg_t *pg, const char *what, const char *sql, bool prepared, int n,
                        const char *const *vals, const int *lens, const int *fmts,
                        PGresult **res, cd_err_t *err);

/* cd_pg_query without parameters, the result dropped. */
cd_status_t cd_pg_exec(cd_pg_t *pg, const char *sql, cd_err_t *err);

/* Prepares a statement of n parameters. */
cd_status_t cd_pg_prepare(cd_pg_t *pg, const char *name, const char *sql, int n,
                          cd_err_t *err);

/* COPY ... FROM STDIN, begun with cd_pg_query: sends data, waiting (bounded)
 * when the connection's buffer is full. */
cd_status_t cd_pg_copy_send(cd_pg_t *pg, const char *what, const char *data, size_t len,
                            cd_err_t *err);
/* Ends the COPY, aborted with the reason why unless why is NULL, and
 * collects its outcome; *rows (may be NULL) gets the rows copied. */
cd_status_t cd_pg_copy_end(cd_pg_t *pg, const char *what, const char *why, size_t *rows,
                           cd_err_t *err);

/* Rolls back a transaction in progress, if the connection is still usable. */
void cd_pg_rollback(cd_pg_t *pg);

#endif
