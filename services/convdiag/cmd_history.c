/* cmd_history.c -- `convdiag history <liveWorkItemId>`: a conversation's timeline. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "convdiag/history.h"

static const char help[] =
    "Usage: convdiag history [OPTIONS] LIVE_WORK_ITEM_ID\n\n"
    "Shows a conversation's timeline as the Traces table of Application Insights\n"
    "shows it: the entries whose operation_ParentId is the conversation, or whose\n"
    "operation_Id is one of its operation IDs, by time.  Exit code 1 when the\n"
    "conversation is unknown.\n\n"
    "Options:\n"
    "  --json               print a JSON array with every column, customDimensions\n"
    "                       included, instead of a table\n\n" CLI_COMMON_HELP;

/* The table shows these columns; Duration, ParticipantType and failureReason
 * come out of customDimensions. */
enum { T_TIME, T_MESSAGE, T_SCENARIO, T_DURATION, T_PARTICIPANT, T_FAILURE, T_OPERATION,
       T_USER, T_NCOLS };
static const char *const table_headers[T_NCOLS] = {
    "timestamp [UTC]", "message", "operation_Name", "Duration", "ParticipantType",
    "failureReason", "operation_Id", "user_Id",
};

static const char *dimension(const cJSON *dims, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(dims, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static void print_table(const cd_history_t *h)
{
    const char **cells = calloc(h->rows * T_NCOLS, sizeof(*cells));
    cJSON **dims = calloc(h->rows ? h->rows : 1, sizeof(*dims));
    size_t width[T_NCOLS];

    if (!cells || !dims)
        goto out;
    for (int c = 0; c < T_NCOLS; c++)
        width[c] = strlen(table_headers[c]);
    for (size_t r = 0; r < h->rows; r++) {
        const char *cd = cd_history_cell(h, r, CD_HISTORY_CUSTOM_DIMENSIONS);
        dims[r] = cJSON_Parse(cd ? cd : "{}");
        const char *row[T_NCOLS] = {
            cd_history_cell(h, r, CD_HISTORY_TIMESTAMP),
            cd_history_cell(h, r, CD_HISTORY_MESSAGE),
            cd_history_cell(h, r, CD_HISTORY_OPERATION_NAME),
            dimension(dims[r], "Duration"),
            dimension(dims[r], "ParticipantType"),
            dimension(dims[r], "failureReason"),
            cd_history_cell(h, r, CD_HISTORY_OPERATION_ID),
            cd_history_cell(h, r, CD_HISTORY_USER_ID),
        };
        for (int c = 0; c < T_NCOLS; c++) {
            cells[r * T_NCOLS + c] = row[c] ? row[c] : "";
            size_t w = strlen(cells[r * T_NCOLS + c]);
            if (w > width[c])
                width[c] = w;
        }
    }
    for (size_t r = 0; r <= h->rows; r++) { /* row 0: the headers */
        for (int c = 0; c < T_NCOLS; c++) {
            const char *v = r ? cells[(r - 1) * T_NCOLS + c] : table_headers[c];
            if (c + 1 < T_NCOLS)
                printf("%-*s  ", (int)width[c], v);
            else
                printf("%s\n", v);
        }
    }
    printf("(%zu entries)\n", h->rows);
out:
    for (size_t r = 0; dims && r < h->rows; r++)
        cJSON_Delete(dims[r]);
    free(dims);
    free(cells);
}

static void print_json(const cd_history_t *h)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t r = 0; r < h->rows; r++) {
        cJSON *o = cJSON_CreateObject();
        for (int c = 0; c < CD_HISTORY_NCOLS; c++) {
            const char *v = cd_history_cell(h, r, c);
            if (!v)
                cJSON_AddNullToObject(o, cd_history_columns[c]);
            else if (c == CD_HISTORY_CUSTOM_DIMENSIONS)
                cJSON_AddItemToObject(o, cd_history_columns[c], cJSON_Parse(v));
            else if (c == CD_HISTORY_SEVERITY_LEVEL)
                cJSON_AddNumberToObject(o, cd_history_columns[c], atoi(v));
            else
                cJSON_AddStringToObject(o, cd_history_columns[c], v);
        }
        cJSON_AddItemToArray(arr, o);
    }
    char *s = cJSON_Print(arr);
    if (s)
        puts(s);
    cJSON_free(s);
    cJSON_Delete(arr);
}

int cmd_history(int argc, char **argv)
{
    enum { OPT_JSON = 1 };
    static const struct option opts[] = {{"json", no_argument, NULL, OPT_JSON},
                                         CLI_COMMON_OPTIONS, {0}};
    bool json = false;
    cd_history_t h = {0};
    cd_err_t err;
    cli_t cli;
    int opt, rc = CLI_EXIT_OK;

    cli_init(&cli, "history");
    while ((opt = cli_getopt(&cli, argc, argv, opts, help)) > 0)
        json = opt == OPT_JSON || json;
    if (opt < 0) {
        rc = cli.exit_code;
        goto out;
    }
    if (optind >= argc) {
        rc = cli_usage_error(&cli, "which conversation? Give a liveWorkItemId");
        goto out;
    }
    const char *lwi = argv[optind++];
    if ((rc = cli_finish(&cli, argc, argv)) != CLI_EXIT_OK)
        goto out;
    if (cd_history_load(&cli.db, lwi, &h, &err) != CD_OK) {
        fprintf(stderr, "convdiag history: %s\n", err.msg);
        rc = CLI_EXIT_FAILURE;
        goto out;
    }
    if (h.rows == 0) {
        fprintf(stderr, "convdiag history: no conversation '%s' (no stored event has that "
                        "liveWorkItemId)\n", lwi);
        rc = CLI_EXIT_FAILURE;
        goto out;
    }
    if (json)
        print_json(&h);
    else
        print_table(&h);
out:
    cd_history_fini(&h);
    cli_fini(&cli);
    return rc;
}
