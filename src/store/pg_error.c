/* pg_error.c -- PostgreSQL failures as one line of text, and their kind; see pg.h. */
#include "pg.h"

#include <stdio.h>
#include <string.h>

const char *cd_pg_sqlstate(const PGresult *res)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s ? s : "";
}

const char *cd_pg_error(const PGconn *conn, const PGresult *res, char *buf, size_t size)
{
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *state = cd_pg_sqlstate(res);

    if (primary) {
        snprintf(buf, size, "%s (SQLSTATE %s)", primary, state);
    } else {
        const char *msg = res ? PQresultErrorMessage(res) : "";
        if (!msg[0] && conn)
            msg = PQerrorMessage(conn);
        snprintf(buf, size, "%.*s", (int)strcspn(msg, "\n"), msg);
    }
    return buf;
}

bool cd_pg_is_contention(const char *state)
{
    return strcmp(state, "55P03") == 0 || strcmp(state, "40001") == 0 ||
           strcmp(state, "40P01") == 0;
}

bool cd_pg_is_transient(const char *state)
{
    if (!state[0])
        return true; /* no SQLSTATE: the failure happened on the client or the wire */
    /* 57014: a statement timeout, the server being overloaded.  25006: a
     * read-only transaction, as on a primary demoted by a failover or with
     * default_transaction_read_only set: it passes. */
    return strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 ||
           strncmp(state, "57P", 3) == 0 || strcmp(state, "57014") == 0 ||
           strcmp(state, "25006") == 0 ||
           cd_pg_is_contention(state);
}
