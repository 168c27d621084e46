/*
 * store_private.h -- the store object and its steps, shared by the files
 * of the batch write (private to store/):
 *
 *   store.c              the store, its connection and session, the
 *                        transaction, failures, the wall-clock stale sweep
 *   duplicates.c         events of the batch stored already
 *   conversation_state.c conversation rows and their runs, loaded and
 *                        written back (versions, run ids)
 *   event_rows.c         the new events
 *   outbox_rows.c        the export outbox rows naming them
 *   dead_letter_rows.c   the messages that are not events
 *   partitions.c         the partitions of the batch's days
 */
#ifndef CONVDIAG_STORE_PRIVATE_H
#define CONVDIAG_STORE_PRIVATE_H

#include "convdiag/buf.h"
#include "convdiag/store.h"
#include "convdiag/strmap.h"
#include "copy.h"
#include "pg.h"

struct cd_store {
    cd_pg_t pg;
    cd_copy_t copy;
    size_t outbox_group_max;
    int retention_days, future_max_days;
    bool prepared; /* this connection has the temporary tables and statements */
    cd_store_failure_t failure;

    /* Scratch space, kept from batch to batch. */
    cd_buf_t ids, times, keys;
    cd_strmap_t seen;
    size_t *probe; /* record of each eventId looked up, by position */
    size_t probe_cap;
    int64_t *days; /* days whose partition is known to exist */
    size_t days_count, days_cap;
    int64_t run_id_next, run_ids_left; /* the block of run ids taken last */
    cd_buf_t cols[32]; /* a column's values as an array literal, for write_state */
};

/* Sets store->failure from a failed step's status and the session's state;
 * returns st. */
cd_status_t cd_store_fail(cd_store_t *s, cd_status_t st);

/* A prepared statement of the store's, run with text parameters. */
cd_status_t cd_store_query(cd_store_t *s, const char *stmt, int n, const char *const *vals,
                           PGresult **res, cd_err_t *err);

cd_status_t cd_store_write_state(cd_store_t *s, cd_tag_state_t *st, cd_store_result_t *r,
                                 cd_err_t *err);
cd_status_t cd_store_write_events(cd_store_t *s, const cd_batch_t *batch, cd_store_result_t *r,
                                  cd_err_t *err);
cd_status_t cd_store_write_outbox(cd_store_t *s, const cd_batch_t *batch, cd_err_t *err);
cd_status_t cd_store_write_dead_letters(cd_store_t *s, const cd_batch_t *batch, size_t *count,
                                        cd_err_t *err);
cd_status_t cd_store_ensure_partitions(cd_store_t *s, cd_batch_t *batch, cd_err_t *err);

/* The prepared statements of the batch write, each file's own. */
typedef struct cd_store_statement {
    const char *name;
    const char *sql;
    int nparams;
} cd_store_statement_t;

extern const cd_store_statement_t cd_store_duplicate_statements[];
extern const size_t cd_store_duplicate_statements_count;
extern const cd_store_statement_t cd_store_state_statements[];
extern const size_t cd_store_state_statements_count;
extern const cd_store_statement_t cd_store_dead_letter_statements[];
extern const size_t cd_store_dead_letter_statements_count;

#endif
