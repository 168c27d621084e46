/* stats.c -- the analysts' summaries over a time range; see stats.h. */
#include "convdiag/stats.h"

#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "convdiag/timeutil.h"
#include "pg.h"

/* A timestamptz column as UTC RFC 3339 with milliseconds, under its own name. */
#define UTC_MS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS " col

/* $1 since, $2 until, $3 channel (NULL for all); dead letters take no channel. */
static const struct {
    const char *name, *title, *sql;
    int nparams;
} queries[CD_STATS_NSECTIONS] = {
    [CD_STATS_SCENARIO_RUNS] = {
        "scenario_runs", "Scenario runs ended, by UTC day: failures and durations (ms)",
        "SELECT day::text AS day, channel_type, scenario, ended, completed, failed, failure_rate, "
        "p50_ms, p90_ms, p99_ms FROM scenario_run_stats($1, $2, $3) "
        "ORDER BY day, channel_type, scenario", 3},
    [CD_STATS_ABANDONMENT] = {
        "abandonment", "Abandonment, by UTC day the conversation began",
        "SELECT day::text AS day, channel_type, conversations, ended, abandoned, "
        "abandonment_rate FROM abandonment_stats($1, $2, $3) ORDER BY day, channel_type", 3},
    [CD_STATS_AGENT_OFFERS] = {
        "agent_offers", "Agent offers answered, by UTC day: rejections and acceptance time-outs",
        "SELECT day::text AS day, channel_type, offers, accepted, rejected, timed_out, "
        "rejection_rate, timeout_rate FROM agent_offer_stats($1, $2, $3) "
        "ORDER BY day, channel_type", 3},
    [CD_STATS_TIME_TO_ACCEPT] = {
        "time_to_accept", "Time from ConversationInitialized to AgentAccepted (ms), by UTC day",
        "SELECT day::text AS day, channel_type, accepted, p50_ms, p90_ms, p99_ms "
        "FROM time_to_accept_stats($1, $2, $3) ORDER BY day, channel_type", 3},
    [CD_STATS_STALE_RUNS] = {
        "stale_runs", "Stale scenario runs (started in the range, never ended), by scenario",
        "SELECT scenario, category, stale_runs, conversations, " UTC_MS("oldest_start_time") ", "
        UTC_MS("newest_start_time") " FROM stale_runs_by_scenario($1, $2, $3) "
        "ORDER BY stale_runs DESC, scenario", 3},
    [CD_STATS_DEAD_LETTERS] = {
        "dead_letters", "Dead letters received in the range, by reason (all channels)",
        "SELECT reason_class, dead_letters, " UTC_MS("first_received_at") ", "
        UTC_MS("last_received_at") ", example_reason FROM dead_letters_by_reason($1, $2) "
        "ORDER BY dead_letters DESC, reason_class", 2},
};

/* Type OIDs of the number types (fixed in PostgreSQL's catalog, pg_type.dat). */
static bool is_number_type(Oid type)
{
    return type == 20 /* int8 */ || type == 21 /* int2 */ || type == 23 /* int4 */ ||
           type == 700 /* float4 */ || type == 701 /* float8 */ || type == 1700 /* numeric */;
}

static cd_status_t copy_result(const PGresult *res, cd_stats_section_t *s, cd_err_t *err)
{
    s->rows = (size_t)PQntuples(res);
    s->cols = (size_t)PQnfields(res);
    s->columns = calloc(s->cols, sizeof(*s->columns));
    s->numeric = calloc(s->cols, sizeof(*s->numeric));
    s->cells = calloc(s->rows * s->cols + 1, sizeof(*s->cells));
    if (!s->columns || !s->numeric || !s->cells)
        return cd_err_set(err, CD_ERROR, "out of memory for %zu rows of %s", s->rows, s->name);
    for (size_t c = 0; c < s->cols; c++) {
        s->numeric[c] = is_number_type(PQftype(res, (int)c));
        if (!(s->columns[c] = strdup(PQfname(res, (int)c))))
            return cd_err_set(err, CD_ERROR, "out of memory for %s", s->name);
    }
    for (size_t r = 0; r < s->rows; r++) {
        for (size_t c = 0; c < s->cols; c++) {
            if (PQgetisnull(res, (int)r, (int)c))
                continue;
            if (!(s->cells[r * s->cols + c] = strdup(PQgetvalue(res, (int)r, (int)c))))
                return cd_err_set(err, CD_ERROR, "out of memory for %s", s->name);
        }
    }
    return CD_OK;
}

static cd_status_t exec_command(PGconn *conn, const char *sql, cd_err_t *err)
{
    PGresult *res = PQexec(conn, sql);
    char msg[CD_ERR_MAX];
    cd_status_t st = CD_OK;

    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        st = cd_err_set(err, CD_ERROR, "%s failed: %s", sql, cd_pg_error(conn, res, msg, sizeof(msg)));
    PQclear(res);
    return st;
}

cd_status_t cd_stats_load(const cd_pg_conf_t *db, int64_t since_us, int64_t until_us,
                          const char *channel, cd_stats_t *out, cd_err_t *err)
{
    char since[32], until[32], msg[CD_ERR_MAX];
    const char *params[3] = {since, until, channel};
    cd_status_t st = CD_ERROR;
    PGconn *conn = NULL;

    memset(out, 0, sizeof(*out));
    for (int i = 0; i < CD_STATS_NSECTIONS; i++) {
        out->sections[i].name = queries[i].name;
        out->sections[i].title = queries[i].title;
    }
    if (cd_pg_connect(db, "convdiag-stats", &conn, err) != CD_OK)
        goto done;
    cd_time_format_utc(since_us, 6, since, sizeof(since));
    cd_time_format_utc(until_us, 6, until, sizeof(until));
    /* One snapshot for all sections; nothing here writes.  The percentiles
     * sort every run of the range: room to do it in memory, and no JIT,
     * whose compile time outweighs what it saves on these plans. */
    if (exec_command(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", err) != CD_OK ||
        exec_command(conn, "SET LOCAL work_mem = '64MB'", err) != CD_OK ||
        exec_command(conn, "SET LOCAL jit = off", err) != CD_OK)
        goto done;
    for (int i = 0; i < CD_STATS_NSECTIONS; i++) {
        PGresult *res = PQexecParams(conn, queries[i].sql, queries[i].nparams, NULL, params,
                                     NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            cd_err_set(err, CD_ERROR, "reading %s from %s to %s failed: %s", queries[i].name,
                       since, until, cd_pg_error(conn, res, msg, sizeof(msg)));
            PQclear(res);
            goto done;
        }
        cd_status_t copied = copy_result(res, &out->sections[i], err);
        PQclear(res);
        if (copied != CD_OK)
            goto done;
    }
    st = exec_command(conn, "COMMIT", err);
done:
    if (st != CD_OK)
        cd_stats_fini(out);
    PQfinish(conn);
    return st;
}

void cd_stats_fini(cd_stats_t *s)
{
    for (int i = 0; i < CD_STATS_NSECTIONS; i++) {
        cd_stats_section_t *sec = &s->sections[i];
        if (sec->cells)
            for (size_t k = 0; k < sec->rows * sec->cols; k++)
                free(sec->cells[k]);
        if (sec->columns)
            for (size_t c = 0; c < sec->cols; c++)
                free(sec->columns[c]);
        free(sec->cells);
        free(sec->columns);
        free(sec->numeric);
    }
    memset(s, 0, sizeof(*s));
}
