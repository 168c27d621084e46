/* history.c -- a conversation's timeline; see history.h. */
#include "convdiag/history.h"

#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"

const char *const cd_history_columns[CD_HISTORY_NCOLS] = {
    "timestamp",   "message",    "customDimensions", "operation_Name", "operation_Id",
    "operation_ParentId", "session_Id", "user_Id", "severityLevel", "itemType",
};

cd_status_t cd_history_load(const cd_pg_conf_t *db, const char *live_work_item_id,
                            cd_history_t *out, cd_err_t *err)
{
    PGconn *conn = NULL;
    PGresult *res = NULL;
    cd_status_t st = CD_ERROR;
    char msg[CD_ERR_MAX];

    memset(out, 0, sizeof(*out));
    if (cd_pg_connect(db, "convdiag-history", &conn, err) != CD_OK)
        goto done;
    /* Times in UTC with milliseconds, as the portal shows them. */
    res = PQexecParams(conn,
                       "SELECT to_char(\"timestamp\" AT TIME ZONE 'UTC', "
                       "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), message, \"customDimensions\"::text, "
                       "\"operation_Name\", \"operation_Id\", \"operation_ParentId\", "
                       "\"session_Id\", \"user_Id\", \"severityLevel\"::text, \"itemType\" "
                       "FROM conversation_timeline($1)",
                       1, NULL, &live_work_item_id, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        cd_err_set(err, CD_ERROR, "reading the timeline of '%s' failed: %s", live_work_item_id,
                   cd_pg_error(conn, res, msg, sizeof(msg)));
        goto done;
    }
    out->rows = (size_t)PQntuples(res);
    out->cells = calloc(out->rows * CD_HISTORY_NCOLS + 1, sizeof(char *));
    if (!out->cells) {
        cd_err_set(err, CD_ERROR, "out of memory for %zu timeline rows", out->rows);
        goto done;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        for (int c = 0; c < CD_HISTORY_NCOLS; c++) {
            if (PQgetisnull(res, r, c))
                continue;
            char **cell = &out->cells[(size_t)r * CD_HISTORY_NCOLS + (size_t)c];
            if (!(*cell = strdup(PQgetvalue(res, r, c)))) {
                cd_err_set(err, CD_ERROR, "out of memory for the timeline");
                goto done;
            }
        }
    }
    st = CD_OK;
done:
    if (st != CD_OK)
        cd_history_fini(out);
    PQclear(res);
    PQfinish(conn);
    return st;
}

void cd_history_fini(cd_history_t *h)
{
    if (h->cells)
        for (size_t i = 0; i < h->rows * CD_HISTORY_NCOLS; i++)
            free(h->cells[i]);
    free(h->cells);
    memset(h, 0, sizeof(*h));
}
