/* cmd_stats.c -- `convdiag stats`: the analysts' summaries over a time range. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "convdiag/buf.h"
#include "convdiag/json.h"
#include "convdiag/stats.h"
#include "convdiag/timeutil.h"

static const char help[] =
    "Usage: convdiag stats [OPTIONS]\n\n"
    "Summarizes the scenario history in a time range, one section each: scenario\n"
    "runs (failure rate, duration percentiles), abandonment, agent rejections and\n"
    "acceptance time-outs, time from ConversationInitialized to AgentAccepted,\n"
    "stale scenario runs and dead letters by reason, per channel and UTC day.\n"
    "These are the SQL functions of docs/queries.md, which analysts can call too.\n\n"
    "Options:\n"
    "  --since TIME         start of the range, included: RFC 3339\n"
    "                       (2026-11-20T08:00:00Z) or a date (2026-11-20, its\n"
    "                       midnight UTC); default: 7 days before --until\n"
    "  --until TIME         end of the range, excluded; a date includes that whole\n"
    "                       day; default: now\n"
    "  --channel NAME       only conversations of this channelType (dead letters\n"
    "                       have no channel and are all shown)\n"
    "  --json               print one JSON document instead of tables\n\n" CLI_COMMON_HELP;

#define DAY_US (86400LL * 1000000)

static void print_table(const cd_stats_section_t *s)
{
    size_t *width = calloc(s->cols ? s->cols : 1, sizeof(*width));

    printf("%s\n", s->title);
    if (!width)
        return;
    for (size_t c = 0; c < s->cols; c++)
        width[c] = strlen(s->columns[c]);
    for (size_t r = 0; r < s->rows; r++) {
        for (size_t c = 0; c < s->cols; c++) {
            const char *v = cd_stats_cell(s, r, c);
            if (v && strlen(v) > width[c])
                width[c] = strlen(v);
        }
    }
    for (size_t r = 0; r <= s->rows; r++) { /* row 0: the headers */
        for (size_t c = 0; c < s->cols; c++) {
            const char *v = r ? cd_stats_cell(s, r - 1, c) : s->columns[c];
            if (!v)
                v = "";
            bool last = c + 1 == s->cols;
            if (s->numeric[c])
                printf("%*s%s", (int)width[c], v, last ? "\n" : "  ");
            else if (last)
                printf("%s\n", v);
            else
                printf("%-*s  ", (int)width[c], v);
        }
    }
    printf("(%zu rows)\n\n", s->rows);
    free(width);
}

/* Numbers as PostgreSQL wrote them, so that rates keep their exact decimals. */
static void put_section_json(cd_buf_t *b, const cd_stats_section_t *s)
{
    cd_buf_printf(b, ",\n  \"%s\": [", s->name);
    for (size_t r = 0; r < s->rows; r++) {
        cd_buf_puts(b, r ? ",\n    {" : "\n    {");
        for (size_t c = 0; c < s->cols; c++) {
            const char *v = cd_stats_cell(s, r, c);
            if (c)
                cd_buf_puts(b, ", ");
            cd_json_put_string(b, s->columns[c]);
            cd_buf_puts(b, ": ");
            if (!v)
                cd_buf_puts(b, "null");
            else if (s->numeric[c])
                cd_buf_puts(b, v);
            else
                cd_json_put_string(b, v);
        }
        cd_buf_putc(b, '}');
    }
    cd_buf_puts(b, s->rows ? "\n  ]" : "]");
}

static int print_json(const cd_stats_t *st, const char *since, const char *until,
                      const char *channel)
{
    cd_buf_t b;

    cd_buf_init(&b);
    cd_buf_puts(&b, "{\n  \"since\": ");
    cd_json_put_string(&b, since);
    cd_buf_puts(&b, ",\n  \"until\": ");
    cd_json_put_string(&b, until);
    cd_buf_puts(&b, ",\n  \"channel\": ");
    if (channel)
        cd_json_put_string(&b, channel);
    else
        cd_buf_puts(&b, "null");
    for (int i = 0; i < CD_STATS_NSECTIONS; i++)
        put_section_json(&b, &st->sections[i]);
    cd_buf_puts(&b, "\n}");
    int rc = CLI_EXIT_OK;
    if (b.oom) {
        fprintf(stderr, "convdiag stats: out of memory writing the JSON document\n");
        rc = CLI_EXIT_FAILURE;
    } else {
        puts(b.data);
    }
    cd_buf_fini(&b);
    return rc;
}

int cmd_stats(int argc, char **argv)
{
    enum { OPT_SINCE = 1, OPT_UNTIL, OPT_CHANNEL, OPT_JSON };
    static const struct option opts[] = {
        {"since", required_argument, NULL, OPT_SINCE},
        {"until", required_argument, NULL, OPT_UNTIL},
        {"channel", required_argument, NULL, OPT_CHANNEL},
        {"json", no_argument, NULL, OPT_JSON},
        CLI_COMMON_OPTIONS,
        {0},
    };
    const char *since_arg = NULL, *until_arg = NULL, *channel = NULL;
    int64_t since_us = 0, until_us = 0;
    bool json = false;
    char since[32], until[32];
    cd_stats_t st = {0};
    cd_err_t err;
    cli_t cli;
    int opt, rc = CLI_EXIT_OK;

    cli_init(&cli, "stats");
    while ((opt = cli_getopt(&cli, argc, argv, opts, help)) > 0) {
        switch (opt) {
        case OPT_SINCE: since_arg = optarg; break;
        case OPT_UNTIL: until_arg = optarg; break;
        case OPT_CHANNEL: channel = optarg; break;
        case OPT_JSON: json = true; break;
        }
    }
    if (opt < 0) {
        rc = cli.exit_code;
        goto out;
    }
    if ((since_arg && (rc = cli_parse_time(&cli, "--since", since_arg, false, &since_us))) ||
        (until_arg && (rc = cli_parse_time(&cli, "--until", until_arg, true, &until_us))))
        goto out;
    if (!until_arg)
        until_us = cd_now_us();
    if (!since_arg)
        since_us = until_us - 7 * DAY_US;
    cd_time_format_utc(since_us, 6, since, sizeof(since));
    cd_time_format_utc(until_us, 6, until, sizeof(until));
    if (since_us >= until_us) {
        rc = cli_usage_error(&cli, "the range is empty: --since %s is not before --until %s",
                             since, until);
        goto out;
    }
    if (channel && !channel[0]) {
        rc = cli_usage_error(&cli, "--channel: give a channelType, e.g. voice");
        goto out;
    }
    if ((rc = cli_finish(&cli, argc, argv)) != CLI_EXIT_OK)
        goto out;
    if (cd_stats_load(&cli.db, since_us, until_us, channel, &st, &err) != CD_OK) {
        fprintf(stderr, "convdiag stats: %s\n", err.msg);
        rc = CLI_EXIT_FAILURE;
        goto out;
    }
    if (json) {
        rc = print_json(&st, since, until, channel);
    } else {
        printf("From %s to %s, %s%s\n\n", since, until, channel ? "channel " : "all channels",
               channel ? channel : "");
        for (int i = 0; i < CD_STATS_NSECTIONS; i++)
            print_table(&st.sections[i]);
    }
out:
    cd_stats_fini(&st);
    cli_fini(&cli);
    return rc;
}
