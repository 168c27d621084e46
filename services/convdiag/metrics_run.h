/* metrics_run.h -- the metrics server as `run` and `export` start and stop it. */
#ifndef CONVDIAG_METRICS_RUN_H
#define CONVDIAG_METRICS_RUN_H

#include "convdiag/config.h"
#include "convdiag/metrics.h"

typedef struct metrics_run {
    cd_metrics_t *metrics;       /* NULL when metrics.listen is empty */
    cd_metrics_server_t *server;
} metrics_run_t;

/* Starts serving /metrics, /healthz and /readyz when metrics.listen is set.
 * Returns a CLI exit code (1 when it cannot listen). */
int metrics_run_start(const char *command, const cd_config_t *cfg, metrics_run_t *mr);

/* Stops the server, then frees the registry: whatever registered collectors
 * must have removed them (freed) before. */
void metrics_run_stop(metrics_run_t *mr);

#endif
