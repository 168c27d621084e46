/* pg_error.c -- connecting, and one-line PostgreSQL error texts; see pg_error.h. */
#include "pg_error.h"

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
        if (!msg[0])
            msg = PQerrorMessage(conn);
        snprintf(buf, size, "%.*s", (int)strcspn(msg, "\n"), msg);
    }
    return buf;
}

bool cd_pg_is_transient(const char *state)
{
    if (!state[0])
        return true; /* no SQLSTATE: the failure happened on the client or the wire */
    return strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 ||
           strncmp(state, "57P", 3) == 0 || strcmp(state, "40001") == 0 ||
           strcmp(state, "40P01") == 0;
}

cd_status_t cd_pg_connect(const char *conninfo, const char *app, PGconn **conn, cd_err_t *err)
{
    const char *keys[] = {"dbname", "fallback_application_name", NULL};
    const char *vals[] = {conninfo && conninfo[0] ? conninfo : NULL, app, NULL};
    char msg[CD_ERR_MAX];

    *conn = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(*conn) == CONNECTION_OK)
        return CD_OK;
    cd_err_set(err, CD_RETRY, "cannot connect to PostgreSQL: %s",
               cd_pg_error(*conn, NULL, msg, sizeof(msg)));
    PQfinish(*conn);
    *conn = NULL;
    return CD_RETRY;
}
