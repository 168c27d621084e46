/* cmd_run.c -- `convdiag run`: the consumer group member. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "convdiag/ingest.h"
#include "convdiag/log.h"
#include "export_run.h"
#include "metrics_run.h"

static atomic_int stop_requested;

static const char help[] =
    "Usage: convdiag run [OPTIONS]\n\n"
    "Joins the consumer group, validates each event and stores batches in\n"
    "PostgreSQL, one transaction per batch; offsets are committed only after\n"
    "the transaction that holds their messages.  Invalid messages go to\n"
    "dead_letters.  Stored events are exported to Application Insights\n"
    "(APPLICATIONINSIGHTS_CONNECTION_STRING; without one, the local ingestion\n"
    "emulator at http://127.0.0.1:28080/) by export.workers senders; set\n"
    "export.enabled=false not to export.  SIGINT/SIGTERM: finish the batch,\n"
    "commit, leave the group.\n\n"
    "Options:\n"
    "  --until-caught-up    exit once every assigned partition has been read and\n"
    "                       the export outbox sent\n"
    "  --progress SECONDS   log progress every SECONDS (default 5, 0 = never)\n\n" CLI_COMMON_HELP;

int cmd_run(int argc, char **argv)
{
    enum { OPT_UNTIL = 1, OPT_PROGRESS };
    static const struct option opts[] = {
        {"until-caught-up", no_argument, NULL, OPT_UNTIL},
        {"progress", required_argument, NULL, OPT_PROGRESS},
        CLI_COMMON_OPTIONS,
        {0},
    };
    cd_ingest_opts_t iopts = {.stop = &stop_requested, .progress_interval_ms = 5000};
    metrics_run_t mr = {0};
    cli_t cli;
    int opt, rc = CLI_EXIT_OK;

    cli_init(&cli, "run");
    while ((opt = cli_getopt(&cli, argc, argv, opts, help)) > 0) {
        switch (opt) {
        case OPT_UNTIL:
            iopts.until_caught_up = true;
            break;
        case OPT_PROGRESS:
            if ((rc = cli_parse_progress(&cli, optarg, &iopts.progress_interval_ms)) !=
                CLI_EXIT_OK)
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

    cli_catch_stop_signals(&stop_requested);
    if ((rc = metrics_run_start("run", &cli.cfg, &mr)) != CLI_EXIT_OK)
        goto out;
    iopts.metrics = mr.metrics;
    cd_exporter_t *ex = NULL;
    if (cli.cfg.export_enabled &&
        (rc = export_run_start("run", &cli.cfg, cli.cfg.export_workers, &stop_requested,
                               iopts.progress_interval_ms, mr.metrics, false, &ex)) !=
            CLI_EXIT_OK)
        goto out;

    char masked[512];
    cd_log_info("run", "starting: brokers=%s topic=%s group=%s database=%s batch=%zu",
                cli.cfg.kafka_brokers, cli.cfg.kafka_topic, cli.cfg.kafka_group,
                cli.cfg.database_url[0]
                    ? cd_config_masked_url(cli.cfg.database_url, masked, sizeof(masked))
                    : "(PG* environment)",
                cli.cfg.batch_max_events);

    int64_t t0 = cd_mono_us();
    cd_ingest_stats_t stats;
    cd_err_t err;
    if (cd_ingest_run(&cli.cfg, &iopts, &stats, &err) != CD_OK) {
        fprintf(stderr, "convdiag run: %s\n", err.msg);
        stop_requested = 1;
        export_run_finish("run", ex, false);
        rc = CLI_EXIT_FAILURE;
        goto out;
    }
    bool caught_up = !stop_requested;
    double secs = (double)(cd_mono_us() - t0) / 1e6;
    printf("run: %s after %.1f s: %llu messages, %llu events stored, %llu duplicates, "
           "%llu dead letters, %llu unknown scenarios, %llu runs flagged stale\n",
           stop_requested ? "stopped" : "caught up", secs, (unsigned long long)stats.messages,
           (unsigned long long)stats.inserted, (unsigned long long)stats.duplicates,
           (unsigned long long)stats.dead_letters, (unsigned long long)stats.unknown_scenarios,
           (unsigned long long)stats.stale_runs);
    fflush(stdout);
    rc = export_run_finish("run", ex, caught_up);
out:
    metrics_run_stop(&mr);
    cli_fini(&cli);
    return rc;
}
