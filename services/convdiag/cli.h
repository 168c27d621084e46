/*
 * cli.h -- what every subcommand shares: exit codes, the common options and
 * the order in which configuration is applied (defaults, --config file,
 * environment, command line).
 */
#ifndef CONVDIAG_CLI_H
#define CONVDIAG_CLI_H

#include <getopt.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "convdiag/config.h"
#include "convdiag/pg.h"

enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAILURE = 1, /* the command ran and failed */
    CLI_EXIT_USAGE = 2,   /* bad command line or configuration */
};

/* Option values of the common options start here, clear of the commands' own. */
#define CLI_OPT_BASE 1000

/* The common options, to be appended to a command's own getopt_long table. */
#define CLI_COMMON_OPTIONS                                    \
    {"config", required_argument, NULL, CLI_OPT_BASE + 0},    \
    {"set", required_argument, NULL, CLI_OPT_BASE + 1},       \
    {"brokers", required_argument, NULL, CLI_OPT_BASE + 2},   \
    {"topic", required_argument, NULL, CLI_OPT_BASE + 3},     \
    {"group", required_argument, NULL, CLI_OPT_BASE + 4},     \
    {"database-url", required_argument, NULL, CLI_OPT_BASE + 5}, \
    {"log-level", required_argument, NULL, CLI_OPT_BASE + 6}, \
    {"help", no_argument, NULL, 'h'}

#define CLI_COMMON_HELP                                                              \
    "Common options:\n"                                                              \
    "  --config FILE        properties file (key = value), applied before the\n"     \
    "                       environment and the command line\n"                      \
    "  --set KEY=VALUE      any setting, e.g. --set kafka.security.protocol=SSL\n"    \
    "  --brokers LIST       kafka.bootstrap.servers\n"                               \
    "  --topic NAME         kafka.topic\n"                                           \
    "  --group ID           kafka.group.id\n"                                        \
    "  --database-url URL   database.url (libpq conninfo or URL; default: PG* vars)\n" \
    "  --log-level LEVEL    error, warn, info or debug\n"                            \
    "  -h, --help           this help\n"

typedef struct cli {
    const char *command;
    bool getopt_started;
    int exit_code; /* when cli_getopt returned -1 */
    const char *config_path;
    char **sets; /* "key=value" in command-line order, applied last */
    int sets_count;
    cd_config_t cfg;
    cd_pg_conf_t db; /* PostgreSQL as cfg says, once the configuration is loaded */
} cli_t;

void cli_init(cli_t *cli, const char *command);
void cli_fini(cli_t *cli);

/*
 * getopt_long for a subcommand: handles --help (prints help) and the common
 * options itself.  Returns the next of the command's own options (> 0), 0 at
 * the end of the options, or -1 when the command must stop now, with
 * cli->exit_code set (0 after --help, 2 after a usage error).
 */
int cli_getopt(cli_t *cli, int argc, char **argv, const struct option *opts, const char *help);

/* Applies file, environment and --set in that order; prints the error and
 * returns false on a bad value. */
bool cli_load_config(cli_t *cli);

/* After getopt_long: refuses leftover arguments, then loads the configuration.
 * Returns CLI_EXIT_OK, or the exit code after printing what is wrong. */
int cli_finish(cli_t *cli, int argc, char **argv);

/* Sets *flag on SIGINT and SIGTERM, for loops that stop at a clean point. */
void cli_catch_stop_signals(atomic_int *flag);

/* Prints "convdiag CMD: message" and "Try 'convdiag CMD --help'." to stderr. */
int cli_usage_error(const cli_t *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses a whole non-negative number argument; false on anything else. */
bool cli_parse_u64(const char *arg, unsigned long long *out);

/* The time of option `name`: RFC 3339, or a date YYYY-MM-DD, its midnight
 * UTC, or with end_of_day the midnight after it, so that --until names the
 * last day included.  CLI_EXIT_OK or, after printing why, the usage error's
 * exit code. */
int cli_parse_time(const cli_t *cli, const char *name, const char *arg, bool end_of_day,
                   int64_t *out_us);

/* --progress SECONDS (0 to 86400) as *interval_ms; CLI_EXIT_OK or, after
 * printing why, the usage error's exit code. */
int cli_parse_progress(const cli_t *cli, const char *arg, int *interval_ms);

#endif
