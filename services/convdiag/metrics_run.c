/* metrics_run.c -- start and stop the metrics server for a command; see metrics_run.h. */
#include "metrics_run.h"

#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "convdiag/log.h"

int metrics_run_start(const char *command, const cd_config_t *cfg, metrics_run_t *mr)
{
    cd_err_t err;

    memset(mr, 0, sizeof(*mr));
    if (!cfg->metrics_listen[0])
        return CLI_EXIT_OK;
    if (!(mr->metrics = cd_metrics_new(cfg->metrics_live_timeout_ms))) {
        fprintf(stderr, "convdiag %s: out of memory for metrics\n", command);
        return CLI_EXIT_FAILURE;
    }
    if (!(mr->server = cd_metrics_server_start(mr->metrics, cfg->metrics_listen, &err))) {
        fprintf(stderr, "convdiag %s: %s\n", command, err.msg);
        cd_metrics_free(mr->metrics);
        mr->metrics = NULL;
        return CLI_EXIT_FAILURE;
    }
    cd_log_info(command, "metrics and probes on http://%s/ (/metrics, /healthz, /readyz)",
                cd_metrics_server_address(mr->server));
    return CLI_EXIT_OK;
}

void metrics_run_stop(metrics_run_t *mr)
{
    cd_metrics_server_stop(mr->server);
    cd_metrics_free(mr->metrics);
    memset(mr, 0, sizeof(*mr));
}
