/* export_run.h -- the exporter as `convdiag run` and `convdiag export` start and end it. */
#ifndef CONVDIAG_EXPORT_RUN_H
#define CONVDIAG_EXPORT_RUN_H

#include <stdatomic.h>

#include "convdiag/config.h"
#include "convdiag/exporter.h"

/*
 * Checks the export settings and starts `workers` workers (none: the
 * settings are still checked), publishing their counts in metrics (NULL:
 * none), and with owns_health their heartbeat and PostgreSQL's readiness,
 * the process being only the exporter.  Returns a CLI exit code; on CLI_EXIT_OK *ex is the exporter (owned
 * by the caller, for export_run_finish).  A bad connection string is a
 * configuration error (exit 2).
 */
int export_run_start(const char *command, const cd_config_t *cfg, int workers,
                     atomic_int *stop, int progress_interval_ms,
                     cd_metrics_t *metrics, bool owns_health, cd_exporter_t **ex);

/* Drains the outbox first when drain is true, waits for the workers, prints
 * the summary line, frees ex.  Returns a CLI exit code. */
int export_run_finish(const char *command, cd_exporter_t *ex, bool drain);

#endif
