/*
 * history.h -- one conversation's timeline from PostgreSQL, with the columns
 * of the Application Insights Traces table (conversation_timeline() in
 * migrations/0003_timeline.sql).
 */
#ifndef CONVDIAG_HISTORY_H
#define CONVDIAG_HISTORY_H

#include <stddef.h>

#include "convdiag/common.h"
#include "convdiag/pg.h"

enum {
    CD_HISTORY_TIMESTAMP,
    CD_HISTORY_MESSAGE,
    CD_HISTORY_CUSTOM_DIMENSIONS, /* JSON object text */
    CD_HISTORY_OPERATION_NAME,
    CD_HISTORY_OPERATION_ID,
    CD_HISTORY_OPERATION_PARENT_ID,
    CD_HISTORY_SESSION_ID,
    CD_HISTORY_USER_ID,
    CD_HISTORY_SEVERITY_LEVEL,
    CD_HISTORY_ITEM_TYPE,
    CD_HISTORY_NCOLS
};

/* Column names as the portal shows them. */
extern const char *const cd_history_columns[CD_HISTORY_NCOLS];

typedef struct cd_history {
    size_t rows;
    char **cells; /* rows * CD_HISTORY_NCOLS strings; NULL for SQL NULL; owned */
} cd_history_t;

/* Loads the timeline of a liveWorkItemId.  CD_ERROR with err when the query
 * fails; an unknown conversation is not an error: rows is 0. */
cd_status_t cd_history_load(const cd_pg_conf_t *db, const char *live_work_item_id,
                            cd_history_t *out, cd_err_t *err);
void cd_history_fini(cd_history_t *h);

static inline const char *cd_history_cell(const cd_history_t *h, size_t row, int col)
{
    return h->cells[row * CD_HISTORY_NCOLS + (size_t)col];
}

#endif
