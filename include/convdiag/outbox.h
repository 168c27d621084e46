/*
 * outbox.h -- the exporter's side of export_outbox (migrations/0004_outbox.sql).
 *
 * A cd_outbox_t owns one libpq connection.  cd_outbox_claim() opens a
 * transaction, locks the oldest due outbox row FOR UPDATE SKIP LOCKED (so
 * exporters, in one process or many, never send the same row at once) and
 * reads its events; cd_outbox_finish() records what the service made of
 * each and commits: accepted events leave the row, refused ones go to
 * export_failures, the rest stay with the row for a later attempt.  A
 * crash in between rolls back: the row is sent again, whole (the one case
 * in which the service may see an item twice).
 */
#ifndef CONVDIAG_OUTBOX_H
#define CONVDIAG_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "convdiag/common.h"
#include "convdiag/pg.h"
#include "convdiag/export.h"
#include "convdiag/export_policy.h"

typedef struct cd_outbox cd_outbox_t;

/* A claimed row: its events in the order it names them.  Everything is
 * owned by the outbox and valid until cd_outbox_finish/cd_outbox_abort. */
typedef struct cd_outbox_group {
    int64_t id;
    int attempts;         /* earlier sends that left events behind */
    size_t count;
    cd_export_item_t *items;
    bool *missing;        /* missing[i]: no longer stored; items[i] has only event_id */
} cd_outbox_group_t;

/* An outbox of the database db (borrowed, must outlive it); connects on
 * first use.  NULL only when out of memory. */
cd_outbox_t *cd_outbox_new(const cd_pg_conf_t *db);
void cd_outbox_free(cd_outbox_t *ob);

/*
 * Claims the oldest due row.  CD_OK with *group NULL: none is due (none
 * waiting, or all being sent or waiting out a back-off).  CD_RETRY:
 * PostgreSQL cannot be reached or failed transiently; CD_ERROR: it refuses,
 * e.g. the schema is missing.
 */
cd_status_t cd_outbox_claim(cd_outbox_t *ob, cd_outbox_group_t **group, cd_err_t *err);

/*
 * Applies outcomes[i] to the group's i-th event and commits.  Events to be
 * resent wait retry_delay_ms, with reason kept as the row's last_error.
 * On failure nothing is recorded (the row is sent again later).
 */
cd_status_t cd_outbox_finish(cd_outbox_t *ob, const cd_export_outcome_t *outcomes,
                             int64_t retry_delay_ms, const char *reason, cd_err_t *err);

/* Gives the claimed row back untouched. */
void cd_outbox_abort(cd_outbox_t *ob);

/* *events: events waiting in the outbox, due or not, claimed or not. */
cd_status_t cd_outbox_backlog(cd_outbox_t *ob, int64_t *events, cd_err_t *err);

#endif
