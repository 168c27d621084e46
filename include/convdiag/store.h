/*
 * store.h -- PostgreSQL storage of events and dead letters.
 *
 * A cd_store_t owns one libpq connection.  cd_store_write_batch() writes a
 * whole batch in one transaction: new events, tagged, into `events` (an
 * eventId already stored is a duplicate and changes nothing), the state of
 * their conversations into `conversations` and `scenario_runs`, and the
 * messages that are not valid events into `dead_letters` with their raw
 * bytes, Kafka coordinates and reason; the new events are also named in
 * the export outbox when exporting.  Conversations are locked for the
 * transaction, so instances sharing a topic never interleave on one.  Only
 * after it returns CD_OK may the batch's Kafka offsets be stored.
 */
#ifndef CONVDIAG_STORE_H
#define CONVDIAG_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "convdiag/batch.h"
#include "convdiag/common.h"
#include "convdiag/tagging.h"

typedef struct cd_store cd_store_t;

typedef struct cd_store_result {
    size_t inserted;          /* new events */
    size_t duplicates;        /* events whose eventId was already stored */
    size_t dead_letters;      /* messages written to dead_letters */
    size_t unknown_scenarios; /* new events whose scenario the catalogue does not know */
    size_t conversations;     /* conversations written */
    size_t runs;              /* scenario runs written */
    size_t stale_runs;        /* open runs this batch flagged stale */
} cd_store_result_t;

/* A store for a libpq conninfo string or URL ("" = libpq's PG* environment);
 * it connects on first use.  tc (borrowed, must outlive the store) gives the
 * tagger's settings.  NULL only when out of memory. */
cd_store_t *cd_store_new(const char *conninfo, const cd_tagger_conf_t *tc);
void cd_store_free(cd_store_t *store);

/* Names every new event in the export outbox (export_outbox), group_max
 * eventIds to a row, in the batch's transaction; 0 (the default) writes no
 * outbox, for a service that does not export. */
void cd_store_set_outbox(cd_store_t *store, size_t group_max);

/* Connects now and prepares the session.  CD_RETRY: the server cannot be
 * reached (yet); CD_ERROR: it can, but refuses, e.g. the schema is missing. */
cd_status_t cd_store_connect(cd_store_t *store, cd_err_t *err);

/*
 * CD_OK: committed.  CD_RETRY: the server could not be reached or the
 * transaction hit a transient failure; nothing was committed, call again
 * later with the same batch (the store reconnects by itself).  CD_ERROR:
 * nothing was committed and trying again will not help.
 *
 * A record that PostgreSQL itself refuses (a value it cannot hold) is not
 * allowed to block the batch: it is moved to dead_letters with the server's
 * message, and the record is changed to say so.
 */
cd_status_t cd_store_write_batch(cd_store_t *store, cd_batch_t *batch, cd_store_result_t *res,
                                 cd_err_t *err);

/*
 * Flags stale the open runs that started longer ago than their scenario's
 * stale time by the wall clock: the runs of conversations that went silent,
 * which no later event of theirs will ever flag.  *flagged gets how many.
 */
cd_status_t cd_store_sweep_stale(cd_store_t *store, size_t *flagged, cd_err_t *err);

/* Applies the embedded migrations in order, each in its own transaction;
 * *applied receives how many were new.  Concurrent callers are serialized. */
cd_status_t cd_store_migrate(const char *conninfo, int *applied, cd_err_t *err);

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

/*
 * Creates the partition of a day unless it exists, in a short transaction
 * of its own (creating a partition locks the whole events table, so it must
 * not happen inside a batch's transaction): conn must not be in one.  Another
 * instance creating it first is not a failure.  *created tells whether this
 * call created it.  CD_RETRY: transient (the connection, a lock not granted
 * within a few seconds); CD_ERROR: PostgreSQL refuses (e.g. events is not
 * partitioned: `convdiag migrate` has not been run).  conn is libpq's PGconn.
 */
struct pg_conn;
cd_status_t cd_store_partitions_create(struct pg_conn *conn, int64_t day, bool *created,
                                       cd_err_t *err);

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
cd_status_t cd_store_partitions_maintain(const char *conninfo, int ahead_days,
                                         int retention_days,
                                         cd_store_partitions_result_t *res, cd_err_t *err);

/*
 * The days the store takes events of: an event of a day retention no longer
 * keeps (events.retention.days, 0 = keep forever) is written to dead_letters,
 * with the reason, instead of creating a partition that the next pass would
 * drop; so is one of a day more than future_max_days after today
 * (events.future.max.days, 0 = no limit), instead of creating a partition
 * for a producer's wrong clock.
 */
void cd_store_partitions_set_window(cd_store_t *store, int retention_days, int future_max_days);

#endif
