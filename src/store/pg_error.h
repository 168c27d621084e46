/* pg_error.h -- PostgreSQL failures as one line of text (private to store/). */
#ifndef CONVDIAG_PG_ERROR_H
#define CONVDIAG_PG_ERROR_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

/* "primary message (SQLSTATE xxxxx)" of a failed result, or libpq's own
 * message (first line) when res is NULL or carries none. Returns buf. */
const char *cd_pg_error(const PGconn *conn, const PGresult *res, char *buf, size_t size);

/* The SQLSTATE of res, or "" when there is none (client-side failure). */
const char *cd_pg_sqlstate(const PGresult *res);

/* Transient failures, worth trying again: the connection, the server going
 * away, resources, serialization; "" (no SQLSTATE) is a client or wire failure. */
bool cd_pg_is_transient(const char *sqlstate);

#endif
