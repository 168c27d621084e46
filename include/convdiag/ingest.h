/*
 * ingest.h -- `run`: Kafka -> parse/validate -> tag -> PostgreSQL.
 *
 * A polling thread routes each message to the writer owning its partition
 * (writer.h) and hands batches over as writers get free; each writer
 * writes its batches in one transaction each and only then stores their
 * offsets.  When PostgreSQL is unavailable the writers retry with backoff
 * and their partitions are paused, while the polling thread keeps serving
 * the group.
 */
#ifndef CONVDIAG_INGEST_H
#define CONVDIAG_INGEST_H

#include <stdatomic.h>
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
    atomic_int *stop;     /* set by a signal handler: finish the batch and return */
    int progress_interval_ms;        /* 0: no progress lines */
    cd_metrics_t *metrics;           /* NULL, or where the counters, the loop's heartbeat
                                        and PostgreSQL's and Kafka's readiness go (borrowed) */
} cd_ingest_opts_t;

/* Runs until stopped or caught up; CD_ERROR with err on a failure that
 * retrying cannot fix (bad configuration, missing schema, fatal Kafka error). */
cd_status_t cd_ingest_run(const cd_config_t *cfg, const cd_ingest_opts_t *opts,
                          cd_ingest_stats_t *stats, cd_err_t *err);

#endif
