/*
 * partitions.c -- the daily partitions of events: naming, creation ahead of
 * time and on demand, retention; see store.h.
 *
 * Creating or dropping a partition takes an ACCESS EXCLUSIVE lock on events,
 * which waits for every transaction reading or writing it and makes the
 * ones that come later wait in turn.  So each runs in a short transaction
 * of its own with a lock timeout: a long analyst query delays the work
 * (retried later) instead of stalling ingestion behind it.
 */
#include "convdiag/store.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convdiag/log.h"
#include "convdiag/timeutil.h"
#include "pg_error.h"

#define DAY_US (86400LL * 1000000)
/* 0001-01-01 and 9999-12-31, as days from 1970-01-01: the four-digit years. */
#define FIRST_DAY (-719162LL)
#define LAST_DAY 2932896LL
#define LOCK_TIMEOUT "SET LOCAL lock_timeout = '5s'"
#define PREFIX "events_"
#define SQL_MAX 512 /* a statement about one partition: names and dates of our own making */

int64_t cd_store_partitions_day(int64_t us)
{
    int64_t q = us / DAY_US;
    return us % DAY_US < 0 ? q - 1 : q; /* rounded down: before 1970 too */
}

int64_t cd_store_partitions_keep_from(int64_t today, int retention_days)
{
    return retention_days > 0 ? today - retention_days : INT64_MIN;
}

/* "YYYY-MM-DD" of a day within FIRST_DAY..LAST_DAY into date (11 bytes). */
static void format_date(int64_t day, char date[11])
{
    char t[CD_TIME_UTC_MAX + 1];
    cd_time_format_utc(day * DAY_US, 3, t, sizeof(t));
    memcpy(date, t, 10);
    date[10] = '\0';
}

bool cd_store_partitions_name(int64_t day, char *buf, size_t size)
{
    char d[11];

    if (size)
        buf[0] = '\0';
    if (day < FIRST_DAY || day > LAST_DAY || size < sizeof(PREFIX "YYYYMMDD"))
        return false;
    format_date(day, d);
    snprintf(buf, size, PREFIX "%.4s%.2s%.2s", d, d + 5, d + 8);
    return true;
}

bool cd_store_partitions_parse_name(const char *name, int64_t *day)
{
    const char *p = name + strlen(PREFIX);
    char t[32];
    int64_t us;
    cd_err_t err;

    if (strncmp(name, PREFIX, strlen(PREFIX)) != 0 || strlen(p) != 8 ||
        strspn(p, "0123456789") != 8)
        return false;
    snprintf(t, sizeof(t), "%.4s-%.2s-%.2sT00:00:00Z", p, p + 4, p + 6);
    if (cd_time_parse_rfc3339(t, 0, &us, &err) != CD_OK)
        return false; /* no such date */
    *day = cd_store_partitions_day(us);
    return *day >= FIRST_DAY && *day <= LAST_DAY;
}

/* ---- SQL --------------------------------------------------------------- */

/* Lock timeouts and lost connections are worth another try; refusals are not. */
static cd_status_t pg_fail(PGconn *conn, PGresult *res, const char *what, const char *name,
                           cd_err_t *err)
{
    char msg[CD_ERR_MAX];
    const char *state = cd_pg_sqlstate(res);
    bool transient = PQstatus(conn) != CONNECTION_OK || cd_pg_is_transient(state) ||
                     strcmp(state, "55P03") == 0;
    cd_status_t st = transient ? CD_RETRY : CD_ERROR;

    cd_err_set(err, st, "%s %s failed: %s%s", what, name, cd_pg_error(conn, res, msg, sizeof(msg)),
               strcmp(state, "42P01") == 0 || strcmp(state, "42809") == 0
                   ? " (has `convdiag migrate` been run?)"
                   : "");
    PQclear(res);
    return st;
}

static void rollback(PGconn *conn)
{
    if (PQtransactionStatus(conn) != PQTRANS_IDLE && PQstatus(conn) == CONNECTION_OK)
        PQclear(PQexec(conn, "ROLLBACK"));
}

/* Runs statements in order, in the current transaction; *sqlstate gets that of a failure. */
static cd_status_t exec_all(PGconn *conn, const char *const *sql, size_t n, const char *what,
                            const char *name, char sqlstate[6], cd_err_t *err)
{
    sqlstate[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        PGresult *res = PQexec(conn, sql[i]);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            snprintf(sqlstate, 6, "%s", cd_pg_sqlstate(res));
            return pg_fail(conn, res, what, name, err);
        }
        PQclear(res);
    }
    return CD_OK;
}

/* Is name a partition of events? */
static cd_status_t partition_exists(PGconn *conn, const char *name, bool *exists, cd_err_t *err)
{
    PGresult *res = PQexecParams(conn,
                                 "SELECT 1 FROM pg_inherits AS i JOIN pg_class AS c "
                                 "ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass "
                                 "AND c.relname = $1",
                                 1, NULL, &name, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return pg_fail(conn, res, "looking up partition", name, err);
    *exists = PQntuples(res) > 0;
    PQclear(res);
    return CD_OK;
}

cd_status_t cd_store_partitions_create(struct pg_conn *conn, int64_t day, bool *created,
                                       cd_err_t *err)
{
    char name[32], from[CD_TIME_UTC_MAX + 1], to[CD_TIME_UTC_MAX + 1], date[11], comment[160];
    char state[6];
    bool exists = false;
    cd_status_t st;

    *created = false;
    if (!cd_store_partitions_name(day, name, sizeof(name)))
        return cd_err_set(err, CD_ERROR, "no partition for day %lld: outside the years 0001-9999",
                          (long long)day);
    if ((st = partition_exists(conn, name, &exists, err)) != CD_OK || exists)
        return st;

    cd_time_format_utc(day * DAY_US, 3, from, sizeof(from));
    cd_time_format_utc((day + 1) * DAY_US, 3, to, sizeof(to));
    format_date(day, date);
    snprintf(comment, sizeof(comment),
             "Events of %s (UTC): a partition of events, dropped whole by retention "
             "(events.retention.days).",
             date);
    char *ident = PQescapeIdentifier(conn, name, strlen(name));
    char *lfrom = PQescapeLiteral(conn, from, strlen(from));
    char *lto = PQescapeLiteral(conn, to, strlen(to));
    char *lcomment = PQescapeLiteral(conn, comment, strlen(comment));
    char create[SQL_MAX], describe[SQL_MAX], analyze[SQL_MAX];
    if (ident && lfrom && lto && lcomment) {
        snprintf(create, sizeof(create),
                 "CREATE TABLE %s PARTITION OF events FOR VALUES FROM (%s) TO (%s)", ident, lfrom,
                 lto);
        snprintf(describe, sizeof(describe), "COMMENT ON TABLE %s IS %s", ident, lcomment);
        /* ANALYZE: the planner takes a never-analyzed table for ten pages of
         * rows, so each empty partition ahead would inflate every estimate. */
        snprintf(analyze, sizeof(analyze), "ANALYZE %s", ident);
        const char *sql[] = {"BEGIN", LOCK_TIMEOUT, create, describe, analyze, "COMMIT"};
        st = exec_all(conn, sql, CD_ARRAY_LEN(sql), "creating partition", name, state, err);
    } else {
        st = cd_err_set(err, CD_RETRY, "creating partition %s: out of memory", name);
        state[0] = '\0';
    }
    PQfreemem(ident);
    PQfreemem(lfrom);
    PQfreemem(lto);
    PQfreemem(lcomment);
    if (st == CD_OK) {
        *created = true;
        return CD_OK;
    }
    rollback(conn);
    /* Another instance got there first: its name is taken (42P07, or 23505 on
     * the catalogs when both ran at once), or a partition of another name
     * already covers the day (42P17). */
    if (strcmp(state, "42P17") == 0)
        return CD_OK;
    if (strcmp(state, "42P07") == 0 || strcmp(state, "23505") == 0) {
        cd_err_t why = *err;
        if ((st = partition_exists(conn, name, &exists, err)) != CD_OK)
            return st;
        return exists ? CD_OK
                      : cd_err_set(err, CD_ERROR, "%s (a table of that name is not a partition "
                                                  "of events)", why.msg);
    }
    return st;
}

/* Drops the partitions of the days before keep_from. */
static cd_status_t drop_expired(PGconn *conn, int64_t keep_from, int retention_days,
                                cd_store_partitions_result_t *r, cd_err_t *err)
{
    PGresult *res = PQexec(conn, "SELECT c.relname, c.reltuples::bigint FROM pg_inherits AS i "
                                 "JOIN pg_class AS c ON c.oid = i.inhrelid "
                                 "WHERE i.inhparent = 'events'::regclass ORDER BY c.relname");
    cd_status_t st = CD_OK;

    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return pg_fail(conn, res, "listing the partitions of", "events", err);
    for (int row = 0; row < PQntuples(res) && st == CD_OK; row++) {
        const char *name = PQgetvalue(res, row, 0);
        long long rows = strtoll(PQgetvalue(res, row, 1), NULL, 10);
        int64_t day;
        char state[6], *ident, drop[SQL_MAX], date[11];
        /* Only the daily partitions named as convdiag names them: others were made by hand. */
        if (!cd_store_partitions_parse_name(name, &day) || day >= keep_from)
            continue;
        if (!(ident = PQescapeIdentifier(conn, name, strlen(name)))) {
            st = cd_err_set(err, CD_RETRY, "dropping partition %s: out of memory", name);
            break;
        }
        snprintf(drop, sizeof(drop), "DROP TABLE IF EXISTS %s", ident);
        PQfreemem(ident);
        const char *sql[] = {"BEGIN", LOCK_TIMEOUT, drop, "COMMIT"};
        cd_err_t why;
        st = exec_all(conn, sql, CD_ARRAY_LEN(sql), "dropping partition", name, state, &why);
        format_date(day, date);
        if (st == CD_OK) {
            r->dropped++;
            if (rows >= 0)
                cd_log_info("partitions", "dropped partition %s (events of %s, about %lld rows): "
                            "older than events.retention.days = %d", name, date, rows,
                            retention_days);
            else
                cd_log_info("partitions", "dropped partition %s (events of %s, rows not "
                            "estimated yet): older than events.retention.days = %d", name, date,
                            retention_days);
            continue;
        }
        rollback(conn);
        if (strcmp(state, "55P03") == 0) {
            r->skipped++;
            cd_log_warn("partitions", "partition %s not dropped yet, events is busy: %s; "
                        "tried again at the next pass", name, why.msg);
            st = CD_OK;
        } else {
            *err = why;
        }
    }
    PQclear(res);
    return st;
}

cd_status_t cd_store_partitions_maintain(const char *conninfo, int ahead_days,
                                         int retention_days,
                                         cd_store_partitions_result_t *res, cd_err_t *err)
{
    PGconn *conn = NULL;
    int64_t today = cd_store_partitions_day(cd_now_us());
    cd_status_t st = CD_OK;

    memset(res, 0, sizeof(*res));
    if ((st = cd_pg_connect(conninfo, "convdiag-partitions", &conn, err)) != CD_OK)
        goto done;
    PQclear(PQexec(conn, "SET client_min_messages = warning"));
    for (int64_t day = today - 1; day <= today + ahead_days && st == CD_OK; day++) {
        bool created;
        char name[32];
        if ((st = cd_store_partitions_create(conn, day, &created, err)) == CD_OK && created) {
            res->created++;
            cd_store_partitions_name(day, name, sizeof(name));
            cd_log_info("partitions", "created partition %s ahead of time", name);
        }
    }
    if (st == CD_OK && retention_days > 0)
        st = drop_expired(conn, cd_store_partitions_keep_from(today, retention_days),
                          retention_days, res, err);
done:
    PQfinish(conn);
    return st;
}
