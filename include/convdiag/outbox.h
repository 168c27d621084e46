/*
 * outbox.h -- the exporter's side of export_outbox and export_pauses
 * (migrations/0004_outbox.sql, 0013_export_leases_pauses.sql).
 *
 * A cd_outbox_t owns one libpq connection and names one sender.
 * cd_outbox_claim() leases the oldest due row to that sender (an UPDATE
 * that commits at once, so no transaction stays open across the HTTP
 * request) and reads its events; cd_outbox_renew() keeps the lease while
 * the request is in flight; cd_outbox_finish() records what the service
 * made of each event, in one transaction: accepted events leave the row,
 * refused ones go to export_failures, the rest stay with the row for a
 * later attempt.  A sender killed mid-request leaves its row leased: once
 * the lease runs out another sender takes it over and sends it again
 * (the at-least-once window: the requests in flight).
 *
 * The pauses are the resource's: when the service throttles or refuses the
 * key or the token, every sender of every instance waits, and one at a
 * time probes whether the pause is over.
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
    char taken_over_from[128]; /* the sender whose lease had run out, "" when none */
    size_t count;
    cd_export_item_t *items;
    bool *missing;        /* missing[i]: no longer stored; items[i] has only event_id */
} cd_outbox_group_t;

/* An outbox of the database db (borrowed, must outlive it) for the sender
 * named `sender` (copied; unique among all senders, e.g. host:pid:worker),
 * whose leases last lease_ms.  Connects on first use.  NULL only when out
 * of memory. */
cd_outbox_t *cd_outbox_new(const cd_pg_conf_t *db, const char *sender, int lease_ms);
void cd_outbox_free(cd_outbox_t *ob);

/*
 * Leases the oldest due row (not waiting out a back-off, not leased) and
 * reads its events.  CD_OK with *group NULL: none is due.  CD_RETRY:
 * PostgreSQL cannot be reached or failed transiently; CD_ERROR: it refuses,
 * e.g. the schema is missing.  A row claimed before and not finished is
 * given back first.
 */
cd_status_t cd_outbox_claim(cd_outbox_t *ob, cd_outbox_group_t **group, cd_err_t *err);

/*
 * Renews the claimed row's lease once a third of it has gone (a cheap no-op
 * before that): call it while a request is in flight.  *lost: another
 * sender holds the row now.
 */
cd_status_t cd_outbox_renew(cd_outbox_t *ob, bool *lost, cd_err_t *err);

/*
 * Applies outcomes[i] to the group's i-th event and commits.  Events to be
 * resent wait retry_delay_ms, with reason kept as the row's last_error.
 * *lost: the lease had run out and another sender had taken the row over;
 * nothing is recorded (that sender records), CD_OK.  On failure nothing is
 * recorded and the row stays claimed: call again (the service's answer is
 * not to be lost for want of a connection), or give it back with abort.
 */
cd_status_t cd_outbox_finish(cd_outbox_t *ob, const cd_export_outcome_t *outcomes,
                             int64_t retry_delay_ms, const char *reason, bool *lost,
                             cd_err_t *err);

/* The id of the row claimed, -1 when none is. */
int64_t cd_outbox_claimed_id(const cd_outbox_t *ob);

/* Gives the claimed row back untouched (best effort: else its lease runs out). */
void cd_outbox_abort(cd_outbox_t *ob);

typedef struct cd_outbox_backlog {
    int64_t events;      /* waiting, due or not, claimed or not */
    double oldest_age_s; /* since the oldest waiting row was stored; 0 when none */
} cd_outbox_backlog_t;

cd_status_t cd_outbox_backlog(cd_outbox_t *ob, cd_outbox_backlog_t *out, cd_err_t *err);

/* ---- the resource's pauses (ikey: the instrumentation key; stored as its md5) ---- */

typedef struct cd_outbox_pause {
    cd_export_pause_t kind; /* CD_EXPORT_GO: not paused */
    char reason[CD_ERR_MAX];
    int64_t wait_ms;        /* > 0: no sender sends for this long */
    bool probing;           /* over, and another sender is probing */
    double lasted_s;        /* since the pause began */
} cd_outbox_pause_t;

cd_status_t cd_outbox_pause_get(cd_outbox_t *ob, const char *ikey, cd_outbox_pause_t *p,
                                cd_err_t *err);

/* The pause is over and no sender is probing: *won, this sender probes, for
 * at most probe_ms before another may. */
cd_status_t cd_outbox_pause_probe(cd_outbox_t *ob, const char *ikey, int probe_ms, bool *won,
                                  cd_err_t *err);

/*
 * Pauses the resource's export (kind not GO) with reason, for delay_ms when
 * throttled (the Retry-After, or the floor); for a configuration error,
 * delay_ms doubled per such answer in a row, at most max_ms.  A longer pause
 * already set stays.  *wait_ms: how long it now lasts.
 */
cd_status_t cd_outbox_pause_set(cd_outbox_t *ob, const char *ikey, cd_export_pause_t kind,
                                const char *reason, int64_t delay_ms, int64_t max_ms,
                                int64_t *wait_ms, cd_err_t *err);

/* This sender's probe was accepted: the pause ends.  *was: its kind and how
 * long it lasted (kind GO: there was none, or another sender's probe). */
cd_status_t cd_outbox_pause_clear(cd_outbox_t *ob, const char *ikey, cd_outbox_pause_t *was,
                                  cd_err_t *err);

#endif
