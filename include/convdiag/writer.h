/*
 * writer.h -- the ingest's writers: long-lived threads, each with its own
 * PostgreSQL connection and the conversation state of its own partitions,
 * writing the batches the polling thread hands them, one transaction each.
 *
 * Hand-off: the polling thread fills a batch per writer; when the writer is
 * idle it swaps that batch for the writer's empty one (cd_writer_submit).
 * The writer parses, tags and stores it, stores its Kafka offsets once the
 * transaction has committed, empties it, and says it is done
 * through done_fd; the polling thread then collects the outcome.  The
 * polling thread never waits on a writer, except, bounded, while
 * partitions are being revoked and at shutdown.
 *
 * While PostgreSQL is away a writer keeps its batch and tries again with
 * backoff, so its partitions fill up and get paused; at shutdown it
 * finishes its batch until the deadline, when the abandon fd ends every wait
 * and the batch is given up, uncommitted, its offsets never stored.
 */
#ifndef CONVDIAG_WRITER_H
#define CONVDIAG_WRITER_H

#include <stdbool.h>
#include <stdint.h>

#include "convdiag/batch.h"
#include "convdiag/common.h"
#include "convdiag/event.h"
#include "convdiag/kafka.h"
#include "convdiag/pg.h"
#include "convdiag/store.h"
#include "convdiag/tagging.h"

/* ---- one batch, one transaction (write_batch.c) ----------------------- */

typedef struct cd_writer_totals {
    cd_store_result_t store;
    size_t stale_runs; /* open runs the tagger flagged stale */
    size_t refused;    /* records PostgreSQL refused, dead-lettered */
} cd_writer_totals_t;

/*
 * Writes a parsed batch through the steps store.h lists, in one
 * transaction, the tag state st kept in step with what commits.  What a
 * failed attempt teaches is acted on at once: an event stored already
 * (write again with the stored ones marked), a partition gone (made again),
 * a conversation changed by another writer (its state loaded again,
 * locked).  Rows PostgreSQL refuses are found by writing the batch in
 * halves, each its own transaction, and become dead letters.  *check_stored
 * says whether to look up stored events first, and is left saying whether
 * the next batch should.  CD_OK: all committed; otherwise
 * cd_store_last_failure(store) says why.
 */
cd_status_t cd_writer_write_batch(cd_store_t *store, cd_tag_state_t *st,
                                  const cd_tagger_conf_t *tc, bool *check_stored,
                                  cd_batch_t *batch, cd_writer_totals_t *totals, cd_err_t *err);

/* ---- the thread (writer.c) --------------------------------------------- */

typedef struct cd_writer cd_writer_t;

/* PostgreSQL usable or not, as a writer found it (why: NULL when up). */
typedef void (*cd_writer_health_fn)(void *arg, int writer, bool up, const char *why);

typedef struct cd_writer_conf {
    int index;
    const cd_pg_conf_t *db;          /* all borrowed: they outlive the writer */
    const cd_tagger_conf_t *tagger;
    const cd_event_limits_t *limits;
    cd_kafka_consumer_t *consumer;   /* offsets are stored through it */
    size_t outbox_group_max;
    int retention_days, future_max_days;
    size_t state_bytes;              /* its share of ingest.state.cache.bytes */
    cd_batch_t *batch;               /* an empty batch, the writer's until the first
                                      * cd_writer_submit swaps it (owned by the caller) */
    int done_fd;                     /* a byte is written to it when a batch is done */
    int abandon_fd;                  /* readable once every wait must end */
    cd_writer_health_fn health;
    void *health_arg;
} cd_writer_conf_t;

/* The outcome of a batch. */
typedef struct cd_writer_result {
    cd_status_t status; /* CD_OK: committed, offsets stored; CD_RETRY: given up at
                         * shutdown, nothing stored; CD_ERROR: fatal, err says why */
    cd_err_t err;
    size_t messages;
    cd_writer_totals_t totals;
    int64_t write_us; /* from hand-over to commit */
} cd_writer_result_t;

/* Starts the thread; NULL with err when it cannot. */
cd_writer_t *cd_writer_new(const cd_writer_conf_t *conf, cd_err_t *err);
/* Stops the thread (after the batch it has, which the abandon fd may cut
 * short) and frees it. */
void cd_writer_free(cd_writer_t *w);

/* Idle: no batch handed, or its outcome collected. */
bool cd_writer_idle(cd_writer_t *w);
/* Hands batch to an idle writer; returns the writer's own, empty, which the
 * caller fills next. */
cd_batch_t *cd_writer_submit(cd_writer_t *w, cd_batch_t *batch);
/* The outcome of the batch handed, once done; false while it is not. */
bool cd_writer_collect(cd_writer_t *w, cd_writer_result_t *out);
/* Waits until the batch handed is done, at most until deadline_us (on
 * cd_mono_us()); true if it is. */
bool cd_writer_wait(cd_writer_t *w, int64_t deadline_us);

/* Requests, carried out before the writer's next batch. */
void cd_writer_forget(cd_writer_t *w, uint64_t source);   /* a partition revoked */
void cd_writer_assigned(cd_writer_t *w);                  /* replays are likely now */
void cd_writer_sweep(cd_writer_t *w);                     /* the wall-clock stale sweep */
void cd_writer_maintain(cd_writer_t *w, int ahead_days);  /* partitions ahead, retention */
/* Runs flagged stale by sweeps since the last call. */
size_t cd_writer_swept(cd_writer_t *w);
/* True once the writer is idle and has carried out every request. */
bool cd_writer_settled(cd_writer_t *w);

#endif
