/* export_run.c -- start and end the exporter for a command; see export_run.h. */
#include "export_run.h"

#include <stdio.h>

#include "cli.h"
#include "convdiag/log.h"

int export_run_start(const char *command, const cd_config_t *cfg, int workers,
                     atomic_int *stop, int progress_interval_ms,
                     cd_metrics_t *metrics, bool owns_health, cd_exporter_t **ex)
{
    cd_err_t err;

    *ex = NULL;
    if (cd_exporter_new(cfg, ex, &err) != CD_OK) {
        fprintf(stderr, "convdiag %s: %s\n", command, err.msg);
        return CLI_EXIT_USAGE;
    }
    if (metrics)
        cd_exporter_expose(*ex, metrics, owns_health);
    if (workers > 0 &&
        cd_exporter_start(*ex, workers, stop, progress_interval_ms, &err) != CD_OK) {
        fprintf(stderr, "convdiag %s: %s\n", command, err.msg);
        *stop = 1;
        export_run_finish(command, *ex, false);
        *ex = NULL;
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}

int export_run_finish(const char *command, cd_exporter_t *ex, bool drain)
{
    cd_exporter_stats_t s;
    cd_err_t err;
    int rc = CLI_EXIT_OK;

    if (!ex)
        return rc;
    if (drain) {
        cd_log_info(command, "sending what is left in the export outbox");
        cd_exporter_drain(ex);
    }
    if (cd_exporter_wait(ex, &err) != CD_OK) {
        fprintf(stderr, "convdiag %s: export: %s\n", command, err.msg);
        rc = CLI_EXIT_FAILURE;
    }
    cd_exporter_get_stats(ex, &s);
    if (cd_exporter_workers(ex) > 0)
        printf("export: %llu items accepted by %s, %llu to be sent again, %llu refused for good; "
           "%llu requests, %llu unanswered; %.0f bytes per item on the wire\n",
           (unsigned long long)s.accepted, cd_exporter_url(ex), (unsigned long long)s.resent,
           (unsigned long long)s.failed, (unsigned long long)s.requests,
           (unsigned long long)s.unanswered,
           s.sent ? (double)s.wire_bytes / (double)s.sent : 0.0);
    cd_exporter_free(ex);
    return rc;
}
