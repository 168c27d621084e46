/* cmd_version.c -- `convdiag version`: the version of convdiag and of its libraries. */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <getopt.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>

#include "cli.h"
#include "commands.h"

static const char help[] = "Usage: convdiag version\n\nPrints the version of convdiag and its "
                          "libraries.\n";

int cmd_version(int argc, char **argv)
{
    cli_t cli;
    cli_init(&cli, "version");
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {0}};
    int rc = CLI_EXIT_OK;

    if (cli_getopt(&cli, argc, argv, opts, help) < 0) {
        rc = cli.exit_code;
        goto out;
    }
    if (optind < argc) {
        rc = cli_usage_error(&cli, "unexpected argument '%s'", argv[optind]);
        goto out;
    }
    printf("convdiag %s (librdkafka %s, libpq %d, cJSON %s, %s)\n", CD_VERSION,
           rd_kafka_version_str(), PQlibVersion(), cJSON_Version(), curl_version());
out:
    cli_fini(&cli);
    return rc;
}
