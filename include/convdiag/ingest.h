/*
 * ingest.h -- the `run` loop: Kafka -> parse/validate -> PostgreSQL.
 *
 * Per batch: poll up to batch.max.events messages (or batch.max.wait.ms),
 * parse them, write them in one transaction, and only then store their
 * offsets.  When PostgreSQL is unavailable the assignment is paused (the poll
 * loop keeps serving the group) and the batch is retried with backoff.
 */
#ifndef CONVDIAG_INGEST_H
#define CONVDIAG_INGEST_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "convdiag/common.h"
#include "convdiag/config.h"
#include "convdiag/metrics.h"

typedef struct cd_ingest_stats {
    uint64_t messages;
    uint64_t inserted;
    uint64_t duplicates;
    uint64_t dead_letters;
    uint64_t unknown_scenarios;
    uint64_t stale_runs;
    uint64_t batches;
} cd_ingest_stats_t;

typedef struct cd_ingest_opts {
    bool until_caught_up;            /* return once every assigned partition is read */
    volatile sig_atomic_t *stop;     /* set by a signal handler: finish the batch and return */
    int progress_interval_ms;        /* 0: no progress lines */
    cd_metrics_t *metrics;           /* NULL, or where the counters, the loop's heartbeat
                                        and PostgreSQL's and Kafka's readiness go (borrowed) */
} cd_ingest_opts_t;

/* Runs until stopped or caught up; CD_ERROR with err on a failure that
 * retrying cannot fix (bad configuration, missing schema, fatal Kafka error). */
cd_status_t cd_ingest_run(const cd_config_t *cfg, const cd_ingest_opts_t *opts,
                          cd_ingest_stats_t *stats, cd_err_t *err);

#endif
