/* pg_error.h -- connecting to PostgreSQL, and its failures as one line of text
 * (private to store/). */
#ifndef CONVDIAG_PG_ERROR_H
#define CONVDIAG_PG_ERROR_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "convdiag/common.h"

/* "primary message (SQLSTATE xxxxx)" of a failed result, or libpq's own
 * message (first line) when res is NULL or carries none. Returns buf. */
const char *cd_pg_error(const PGconn *conn, const PGresult *res, char *buf, size_t size);

/* The SQLSTATE of res, or "" when there is none (client-side failure). */
const char *cd_pg_sqlstate(const PGresult *res);

/* Connects to conninfo (a conninfo string or URL; NULL or "": libpq's PG*
 * environment) as application `app`.  CD_OK with *conn set; CD_RETRY, the
 * server being unreachable for now, with *conn NULL and err saying why. */
cd_status_t cd_pg_connect(const char *conninfo, const char *app, PGconn **conn, cd_err_t *err);

/* Transient failures, worth trying again: the connection, the server going
 * away, resources, serialization; "" (no SQLSTATE) is a client or wire failure. */
bool cd_pg_is_transient(const char *sqlstate);

#endif
