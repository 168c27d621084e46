/* cmd_export.c -- `convdiag export`: send the export outbox, without consuming. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>

#include "cli.h"
#include "commands.h"
#include "export_run.h"
#include "metrics_run.h"

static atomic_int stop_requested;

static const char help[] =
    "Usage: convdiag export [OPTIONS]\n\n"
    "Sends the events waiting in the export outbox to Application Insights, as\n"
    "`convdiag run` does alongside consuming; several processes share the work.\n"
    "The connection string comes from APPLICATIONINSIGHTS_CONNECTION_STRING\n"
    "(export.connection.string); without one, events go to the local ingestion\n"
    "emulator at http://127.0.0.1:28080/.  SIGINT/SIGTERM: settle the request in\n"
    "hand and exit.\n\n"
    "Options:\n"
    "  --until-drained      exit once the outbox is empty\n"
    "  --workers N          concurrent senders (default export.workers, at least 1)\n"
    "  --progress SECONDS   log progress every SECONDS (default 5, 0 = never)\n\n" CLI_COMMON_HELP;

int cmd_export(int argc, char **argv)
{
    enum { OPT_DRAINED = 1, OPT_WORKERS, OPT_PROGRESS };
    static const struct option opts[] = {
        {"until-drained", no_argument, NULL, OPT_DRAINED},
        {"workers", required_argument, NULL, OPT_WORKERS},
        {"progress", required_argument, NULL, OPT_PROGRESS},
        CLI_COMMON_OPTIONS,
        {0},
    };
    bool until_drained = false;
    long long workers = -1;
    int progress_ms = 5000;
    unsigned long long n;
    cd_exporter_t *ex;
    metrics_run_t mr = {0};
    cli_t cli;
    int opt, rc = CLI_EXIT_OK;

    cli_init(&cli, "export");
    while ((opt = cli_getopt(&cli, argc, argv, opts, help)) > 0) {
        switch (opt) {
        case OPT_DRAINED:
            until_drained = true;
            break;
        case OPT_WORKERS:
            if (!cli_parse_u64(optarg, &n) || n < 1 || n > 16) {
                rc = cli_usage_error(&cli, "--workers: '%s' is not a number from 1 to 16",
                                     optarg);
                goto out;
            }
            workers = (long long)n;
            break;
        case OPT_PROGRESS:
            if ((rc = cli_parse_progress(&cli, optarg, &progress_ms)) != CLI_EXIT_OK)
                goto out;
            break;
        }
    }
    if (opt < 0) {
        rc = cli.exit_code;
        goto out;
    }
    if ((rc = cli_finish(&cli, argc, argv)) != CLI_EXIT_OK)
        goto out;
    if (workers < 0)
        workers = cli.cfg.export_workers > 0 ? cli.cfg.export_workers : 1;

    cli_catch_stop_signals(&stop_requested);
    if ((rc = metrics_run_start("export", &cli.cfg, &mr)) != CLI_EXIT_OK)
        goto out;
    if ((rc = export_run_start("export", &cli.cfg, (int)workers, &stop_requested,
                               progress_ms, mr.metrics, true, &ex)) != CLI_EXIT_OK)
        goto out;
    rc = export_run_finish("export", ex, until_drained);
out:
    metrics_run_stop(&mr);
    cli_fini(&cli);
    return rc;
}
