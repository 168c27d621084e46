/* cmd_migrate.c -- `convdiag migrate`: applies the embedded migrations. */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"
#include "commands.h"
#include "convdiag/store.h"

static const char help[] =
    "Usage: convdiag migrate [OPTIONS]\n\n"
    "Creates or upgrades the PostgreSQL schema.  Migrations are applied in order,\n"
    "each in its own transaction, and recorded in schema_migrations; running it\n"
    "again changes nothing.  A failing migration leaves the database as it was.\n"
    "Then the daily partitions of events from yesterday to\n"
    "events.partition.ahead.days ahead are created, and those older than\n"
    "events.retention.days dropped.\n\n" CLI_COMMON_HELP;

int cmd_migrate(int argc, char **argv)
{
    static const struct option opts[] = {CLI_COMMON_OPTIONS, {0}};
    cli_t cli;
    int rc = CLI_EXIT_OK;

    cli_init(&cli, "migrate");
    if (cli_getopt(&cli, argc, argv, opts, help) < 0) {
        rc = cli.exit_code;
        goto out;
    }
    if ((rc = cli_finish(&cli, argc, argv)) != CLI_EXIT_OK)
        goto out;

    cd_err_t err;
    int applied;
    if (cd_store_migrate(&cli.db, &applied, &err) != CD_OK) {
        fprintf(stderr, "convdiag migrate: %s\n", err.msg);
        rc = CLI_EXIT_FAILURE;
        goto out;
    }
    printf("migrate: %d migration(s) applied, schema up to date\n", applied);
    cd_store_partitions_result_t parts;
    if (cd_store_partitions_maintain(&cli.db, -1, cli.cfg.events_partition_ahead_days,
                                     cli.cfg.events_retention_days, &parts, &err) != CD_OK) {
        fprintf(stderr, "convdiag migrate: %s\n", err.msg);
        rc = CLI_EXIT_FAILURE;
        goto out;
    }
    printf("migrate: partitions of events: %zu created, %zu dropped by retention%s\n",
           parts.created, parts.dropped,
           parts.skipped ? ", some left for the next pass (events was busy)" : "");
out:
    cli_fini(&cli);
    return rc;
}
