/*
 * store.h -- PostgreSQL storage of the ingest: events, conversation state,
 * the export outbox and dead letters, one transaction per batch.
 *
 * A cd_store_t owns one connection, whose every wait is bounded (pg.h).
 * The ingest runs a batch through it in this order (ingest/write.c):
 *
 *   cd_store_prepare_batch   outside any transaction: the partitions of the
 *                            batch's days exist; events of days not kept
 *                            become dead letters
 *   cd_store_begin
 *   cd_store_mark_duplicates events already stored (same eventId and time)
 *   cd_store_load_state      the conversations the tag state lacks
 *   (the tagger, tagging.h, tags the events and updates that state)
 *   cd_store_write_batch     conversations, events, scenario runs, outbox,
 *                            dead letters
 *   cd_store_commit
 *
 * Conversation rows carry a version, one higher with each transaction that
 * changes them: the state written must be the one loaded, or
 * cd_store_write_batch fails with CD_STORE_CONFLICT, so that two writers
 * given the same conversation (a message keyed to the wrong partition, two
 * instances during a rebalance) never lose each other's changes.  Rows are
 * locked in liveWorkItemId order, so writers cannot deadlock on them.
 * After a failure the caller rolls back (cd_store_rollback) and asks
 * cd_store_last_failure what to do.  Only after cd_store_commit returns
 * CD_OK may the batch's Kafka offsets be stored.
 */
#ifndef CONVDIAG_STORE_H
#define CONVDIAG_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "convdiag/batch.h"
#include "convdiag/common.h"
#include "convdiag/pg.h"
#include "convdiag/tagging.h"

typedef struct cd_store cd_store_t;

typedef struct cd_store_conf {
    const cd_pg_conf_t *db; /* borrowed, must outlive the store */
    const char *app;        /* application_name; borrowed */
    int abandon_fd;         /* -1, or readable once every wait must end (shutdown) */
    size_t outbox_group_max; /* eventIds per export_outbox row; 0: no outbox */
    int retention_days;     /* events.retention.days (0 = keep forever) */
    int future_max_days;    /* events.future.max.days (0 = no limit) */
} cd_store_conf_t;

typedef struct cd_store_result {
    size_t inserted;          /* new events */
    size_t duplicates;        /* events whose eventId was already stored */
    size_t dead_letters;      /* messages written to dead_letters */
    size_t unknown_scenarios; /* new events whose scenario the catalogue does not know */
    size_t conversations;     /* conversations written */
    size_t runs;              /* scenario runs written */
} cd_store_result_t;

/* What the last failure of a store call means for its caller. */
typedef enum cd_store_failure {
    CD_STORE_FAILED_NOT = 0,
    CD_STORE_UNAVAILABLE, /* PostgreSQL away, silent, restarting or read-only: wait, retry */
    CD_STORE_CONTENTION,  /* a lock not granted in time, a deadlock: retry soon */
    CD_STORE_CONFLICT,    /* a conversation changed by someone else since it was loaded:
                           * discard the state, load it again, locked */
    CD_STORE_DUPLICATE,   /* an event stored already: write again, duplicates marked */
    CD_STORE_PARTITION,   /* no partition for an event (dropped meanwhile): again */
    CD_STORE_ROW,         /* PostgreSQL refused a value of some row of the batch, in any
                           * table (a data exception, a constraint) */
    CD_STORE_ABANDONED,   /* the abandon fd ended the wait */
    CD_STORE_FATAL,       /* anything else: trying again will not help */
} cd_store_failure_t;

/* NULL only when out of memory.  The store connects on first use. */
cd_store_t *cd_store_new(const cd_store_conf_t *conf);
void cd_store_free(cd_store_t *store);

/* Connects now and prepares the session.  CD_RETRY: the server cannot be
 * reached (yet); CD_ERROR: it can, but refuses, e.g. the schema is missing. */
cd_status_t cd_store_connect(cd_store_t *store, cd_err_t *err);

cd_store_failure_t cd_store_last_failure(const cd_store_t *store);

/* Makes the partitions of the batch's days exist and turns events of days
 * retention no longer keeps, or too far ahead, into dead letters (the
 * record says why).  Not inside a transaction. */
cd_status_t cd_store_prepare_batch(cd_store_t *store, cd_batch_t *batch, cd_err_t *err);

cd_status_t cd_store_begin(cd_store_t *store, cd_err_t *err);

/*
 * Marks duplicate the records with the eventId and timestamp (the key of
 * events) of a record earlier in the batch, or, with check_stored, of a
 * stored event: a replay is the same message, so it has both.  Without
 * check_stored only the batch itself is looked at, and an event stored
 * before shows as CD_STORE_DUPLICATE when written.
 */
cd_status_t cd_store_mark_duplicates(cd_store_t *store, cd_batch_t *batch, bool check_stored,
                                     cd_err_t *err);

/* Loads into st, from PostgreSQL, the conversations of the batch's new
 * events that st does not hold, with their open and unpaired runs; with
 * lock, holds their rows locked until the transaction ends. */
cd_status_t cd_store_load_state(cd_store_t *store, const cd_batch_t *batch, cd_tag_state_t *st,
                                bool lock, cd_err_t *err);

/* Writes the batch as tagged: the conversations st->touched lists (version
 * checked) with their changed runs (new ones get their run_id here), the
 * new events, their outbox rows, the invalid records as dead letters. */
cd_status_t cd_store_write_batch(cd_store_t *store, const cd_batch_t *batch, cd_tag_state_t *st,
                                 cd_store_result_t *res, cd_err_t *err);

cd_status_t cd_store_commit(cd_store_t *store, cd_err_t *err);
void cd_store_rollback(cd_store_t *store);

/* Forgets which partitions are known to exist: the next batch looks again
 * (after CD_STORE_PARTITION). */
void cd_store_forget_partitions(cd_store_t *store);

/*
 * Flags stale the open runs that started longer ago than their scenario's
 * stale time by the wall clock: the runs of conversations that went silent,
 * which no later event of theirs will ever flag.  Their conversations'
 * versions go up, so a writer holding them loads them again.  *flagged gets
 * how many.  tc: the stale times.
 */
cd_status_t cd_store_sweep_stale(cd_store_t *store, const cd_tagger_conf_t *tc, size_t *flagged,
                                 cd_err_t *err);

/* Applies the embedded migrations in order, each in its own transaction;
 * *applied receives how many were new.  Concurrent callers are serialized. */
cd_status_t cd_store_migrate(const cd_pg_conf_t *db, int *applied, cd_err_t *err);

/*
 * ---- events partitions (partitions.c) ----------------------------------
 *
 * events is range-partitioned on event_time, one partition per UTC day,
 * named events_YYYYMMDD (migrations/0005).  Days are counted from
 * 1970-01-01 (day 0), in UTC; partitions exist for the years 0001 to 9999.
 */

/* The UTC day holding a time in microseconds since the epoch. */
int64_t cd_store_partitions_day(int64_t us);

/* The first day retention keeps on day today: today - retention_days, or
 * INT64_MIN for retention_days 0 (keep forever).  A day before it has ended
 * more than retention_days ago. */
int64_t cd_store_partitions_keep_from(int64_t today, int retention_days);

/* The partition name of a day, "events_YYYYMMDD", into buf (16 bytes are
 * enough); false, with buf empty, for a day outside the years 0001-9999. */
bool cd_store_partitions_name(int64_t day, char *buf, size_t size);

/* The day of a partition name; false when name is not events_YYYYMMDD of a
 * real date. */
bool cd_store_partitions_parse_name(const char *name, int64_t *day);

typedef struct cd_store_partitions_result {
    size_t created; /* partitions created ahead of time */
    size_t dropped; /* partitions dropped by retention */
    size_t skipped; /* drops put off to the next pass: the table was busy */
} cd_store_partitions_result_t;

/*
 * Maintenance, on a connection of its own: creates the partitions of
 * yesterday to today + ahead_days that are missing, then, unless
 * retention_days is 0, drops the partitions whose day ended more than
 * retention_days ago (each logged at info with its name and row estimate).
 * A drop that cannot get its lock within a few seconds is left to the next
 * pass and counted in skipped.
 */
cd_status_t cd_store_partitions_maintain(const cd_pg_conf_t *db, int abandon_fd, int ahead_days,
                                         int retention_days,
                                         cd_store_partitions_result_t *res, cd_err_t *err);

#endif
