/* cli.c -- options and configuration shared by the subcommands; see cli.h. */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convdiag/log.h"
#include "convdiag/timeutil.h"

static const char *const option_keys[] = {
    [2] = "kafka.bootstrap.servers", [3] = "kafka.topic", [4] = "kafka.group.id",
    [5] = "database.url",            [6] = "log.level",
};

void cli_init(cli_t *cli, const char *command)
{
    memset(cli, 0, sizeof(*cli));
    cli->command = command;
    cd_config_init(&cli->cfg);
}

void cli_fini(cli_t *cli)
{
    for (int i = 0; i < cli->sets_count; i++)
        free(cli->sets[i]);
    free(cli->sets);
    cd_config_fini(&cli->cfg);
}

/* Records "key=value"; with key NULL, value is already of that form (--set). */
static void add_set(cli_t *cli, const char *key, const char *value)
{
    char **s = realloc(cli->sets, (size_t)(cli->sets_count + 1) * sizeof(*s));
    char *kv = malloc((key ? strlen(key) + 1 : 0) + strlen(value) + 1);
    if (!s || !kv) {
        fprintf(stderr, "convdiag: out of memory\n");
        exit(CLI_EXIT_FAILURE);
    }
    sprintf(kv, "%s%s%s", key ? key : "", key ? "=" : "", value);
    cli->sets = s;
    cli->sets[cli->sets_count++] = kv;
}

/* Records a common option; false if opt is not one. */
static bool common_option(cli_t *cli, int opt, const char *arg)
{
    int i = opt - CLI_OPT_BASE;
    if (i == 0)
        cli->config_path = arg;
    else if (i == 1)
        add_set(cli, NULL, arg);
    else if (i >= 2 && i < (int)(sizeof(option_keys) / sizeof(option_keys[0])))
        add_set(cli, option_keys[i], arg);
    else
        return false;
    return true;
}

int cli_getopt(cli_t *cli, int argc, char **argv, const struct option *opts, const char *help)
{
    if (!cli->getopt_started) {
        optind = 1;
        cli->getopt_started = true;
    }
    for (;;) {
        int opt = getopt_long(argc, argv, "h", opts, NULL);
        if (opt == -1)
            return 0;
        if (opt == 'h') {
            fputs(help, stdout);
            cli->exit_code = CLI_EXIT_OK;
            return -1;
        }
        if (opt == '?' || opt == ':') { /* getopt has said what is wrong */
            cli->exit_code = cli_usage_error(cli, "invalid option");
            return -1;
        }
        if (!common_option(cli, opt, optarg))
            return opt;
    }
}

bool cli_load_config(cli_t *cli)
{
    cd_err_t err;

    if (cli->config_path && cd_config_load_file(&cli->cfg, cli->config_path, &err) != CD_OK)
        goto bad;
    if (cd_config_load_env(&cli->cfg, &err) != CD_OK)
        goto bad;
    for (int i = 0; i < cli->sets_count; i++) {
        char *kv = cli->sets[i];
        char *eq = strchr(kv, '=');
        if (!eq || eq == kv) {
            cli_usage_error(cli, "--set expects KEY=VALUE, got '%s'", kv);
            return false;
        }
        *eq = '\0';
        cd_status_t st = cd_config_set(&cli->cfg, kv, eq + 1, &err);
        *eq = '=';
        if (st != CD_OK)
            goto bad;
    }
    cd_log_set_level(cli->cfg.log_level);
    cd_pg_conf_from_config(&cli->db, &cli->cfg);
    return true;

bad:
    fprintf(stderr, "convdiag %s: configuration: %s\n", cli->command, err.msg);
    return false;
}

int cli_finish(cli_t *cli, int argc, char **argv)
{
    if (optind < argc)
        return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
    return cli_load_config(cli) ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

static atomic_int *stop_flag;

static void on_stop_signal(int sig)
{
    (void)sig;
    *stop_flag = 1;
}

void cli_catch_stop_signals(atomic_int *flag)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    stop_flag = flag;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int cli_usage_error(const cli_t *cli, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "convdiag %s: ", cli->command);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'convdiag %s --help'.\n", cli->command);
    return CLI_EXIT_USAGE;
}

bool cli_parse_u64(const char *arg, unsigned long long *out)
{
    char *end;
    if (!arg[0] || arg[0] == '-')
        return false;
    errno = 0;
    *out = strtoull(arg, &end, 10);
    return errno == 0 && *end == '\0';
}

int cli_parse_progress(const cli_t *cli, const char *arg, int *interval_ms)
{
    unsigned long long n;
    if (!cli_parse_u64(arg, &n) || n > 86400)
        return cli_usage_error(cli, "--progress: '%s' is not a number of seconds", arg);
    *interval_ms = (int)n * 1000;
    return CLI_EXIT_OK;
}

int cli_parse_time(const cli_t *cli, const char *name, const char *arg, bool end_of_day,
                   int64_t *out_us)
{
    cd_err_t err;

    if (strlen(arg) == 10 && arg[4] == '-' && arg[7] == '-') {
        char midnight[32];
        snprintf(midnight, sizeof(midnight), "%sT00:00:00Z", arg);
        if (cd_time_parse_rfc3339(midnight, 0, out_us, &err) == CD_OK) {
            *out_us += end_of_day ? 86400LL * 1000000 : 0;
            return CLI_EXIT_OK;
        }
        cd_err_set(&err, CD_ERROR, "'%s' is not a date", arg);
    } else if (cd_time_parse_rfc3339(arg, 0, out_us, &err) == CD_OK) {
        return CLI_EXIT_OK;
    }
    return cli_usage_error(cli, "%s: %s; give YYYY-MM-DD or an RFC 3339 date-time", name,
                           err.msg);
}
