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

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convdiag/log.h"
#include "convdiag/timeutil.h"
#include "store_private.h"

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

/* Adds "partition <name>" and the migrate hint to a failure's message. */
static cd_status_t pg_fail(cd_status_t st, const cd_pg_t *pg, const char *name, cd_err_t *err)
{
    if (st == CD_OK)
        return st;
    cd_err_t why = *err;
    return cd_err_set(err, st, "%s (partition %s)%s", why.msg, name,
                      strcmp(pg->sqlstate, "42P01") == 0 || strcmp(pg->sqlstate, "42809") == 0
                          ? " (has `convdiag migrate` been run?)"
                          : "");
}

/* Runs statements in order, in the current transaction; pg->sqlstate tells a failure's. */
static cd_status_t exec_all(cd_pg_t *pg, const char *const *sql, size_t n, const char *name,
                            cd_err_t *err)
{
    cd_status_t st = CD_OK;
    for (size_t i = 0; i < n && st == CD_OK; i++)
        st = cd_pg_exec(pg, sql[i], err);
    /* A lock not granted in time is contention: tried again later. */
    if (st == CD_ERROR && cd_pg_is_contention(pg->sqlstate))
        st = CD_RETRY;
    return pg_fail(st, pg, name, err);
}

/* Is name a partition of events? */
static cd_status_t partition_exists(cd_pg_t *pg, const char *name, bool *exists, cd_err_t *err)
{
    PGresult *res = NULL;
    cd_status_t st = cd_pg_query(pg, "looking up a partition",
                                 "SELECT 1 FROM pg_inherits AS i JOIN pg_class AS c "
                                 "ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass "
                                 "AND c.relname = $1",
                                 false, 1, &name, NULL, NULL, &res, err);
    if (st != CD_OK)
        return pg_fail(st, pg, name, err);
    *exists = PQntuples(res) > 0;
    PQclear(res);
    return CD_OK;
}

/*
 * Creates the partition of a day unless it exists, in a short transaction
 * of its own (creating a partition locks the whole events table, so it must
 * not happen inside a batch's transaction).  Another instance creating it
 * first is not a failure.  *created tells whether this call created it.
 * CD_RETRY: transient (the connection, a lock not granted within a few
 * seconds); CD_ERROR: PostgreSQL refuses (e.g. events is not partitioned:
 * `convdiag migrate` has not been run).
 */
static cd_status_t create_partition(cd_pg_t *pg, int64_t day, bool *created, cd_err_t *err)
{
    char name[32], from[CD_TIME_UTC_MAX + 1], to[CD_TIME_UTC_MAX + 1], date[11], comment[160];
    bool exists = false;
    cd_status_t st;

    *created = false;
    if (!cd_store_partitions_name(day, name, sizeof(name)))
        return cd_err_set(err, CD_ERROR, "no partition for day %lld: outside the years 0001-9999",
                          (long long)day);
    if ((st = partition_exists(pg, name, &exists, err)) != CD_OK || exists)
        return st;

    cd_time_format_utc(day * DAY_US, 3, from, sizeof(from));
    cd_time_format_utc((day + 1) * DAY_US, 3, to, sizeof(to));
    format_date(day, date);
    snprintf(comment, sizeof(comment),
             "Events of %s (UTC): a partition of events, dropped whole by retention "
             "(events.retention.days).",
             date);
    /* Names and dates of our own making: only the comment needs quoting. */
    char *lcomment = PQescapeLiteral(pg->conn, comment, strlen(comment));
    char create[SQL_MAX], describe[SQL_MAX], analyze[SQL_MAX];
    if (lcomment) {
        snprintf(create, sizeof(create),
                 "CREATE TABLE %s PARTITION OF events FOR VALUES FROM ('%s') TO ('%s')", name,
                 from, to);
        snprintf(describe, sizeof(describe), "COMMENT ON TABLE %s IS %s", name, lcomment);
        /* ANALYZE: the planner takes a never-analyzed table for ten pages of
         * rows, so each empty partition ahead would inflate every estimate. */
        snprintf(analyze, sizeof(analyze), "ANALYZE %s", name);
        const char *sql[] = {"BEGIN", LOCK_TIMEOUT, create, describe, analyze, "COMMIT"};
        st = exec_all(pg, sql, CD_ARRAY_LEN(sql), name, err);
    } else {
        st = cd_err_set(err, CD_RETRY, "creating partition %s: out of memory", name);
        pg->sqlstate[0] = '\0';
    }
    PQfreemem(lcomment);
    if (st == CD_OK) {
        *created = true;
        return CD_OK;
    }
    char state[6];
    memcpy(state, pg->sqlstate, sizeof(state));
    cd_pg_rollback(pg);
    /* Another instance got there first: its name is taken (42P07, or 23505 on
     * the catalogs when both ran at once), or a partition of another name
     * already covers the day (42P17). */
    if (strcmp(state, "42P17") == 0)
        return CD_OK;
    if (strcmp(state, "42P07") == 0 || strcmp(state, "23505") == 0) {
        cd_err_t why = *err;
        if ((st = partition_exists(pg, name, &exists, err)) != CD_OK)
            return st;
        return exists ? CD_OK
                      : cd_err_set(err, CD_ERROR, "%s (a table of that name is not a partition "
                                                  "of events)", why.msg);
    }
    return st;
}

/* Drops the partitions of the days before keep_from. */
static cd_status_t drop_expired(cd_pg_t *pg, int64_t keep_from, int retention_days,
                                cd_store_partitions_result_t *r, cd_err_t *err)
{
    PGresult *res = NULL;
    cd_status_t st = cd_pg_query(pg, "listing the partitions of events",
                                 "SELECT c.relname, c.reltuples::bigint FROM pg_inherits AS i "
                                 "JOIN pg_class AS c ON c.oid = i.inhrelid "
                                 "WHERE i.inhparent = 'events'::regclass ORDER BY c.relname",
                                 false, 0, NULL, NULL, NULL, &res, err);
    if (st != CD_OK)
        return pg_fail(st, pg, "events", err);
    for (int row = 0; row < PQntuples(res) && st == CD_OK; row++) {
        const char *name = PQgetvalue(res, row, 0);
        long long rows = strtoll(PQgetvalue(res, row, 1), NULL, 10);
        int64_t day;
        char drop[SQL_MAX], date[11];
        /* Only the daily partitions named as convdiag names them: others were made by hand. */
        if (!cd_store_partitions_parse_name(name, &day) || day >= keep_from)
            continue;
        snprintf(drop, sizeof(drop), "DROP TABLE IF EXISTS %s", name);
        const char *sql[] = {"BEGIN", LOCK_TIMEOUT, drop, "COMMIT"};
        cd_err_t why;
        st = exec_all(pg, sql, CD_ARRAY_LEN(sql), name, &why);
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
        bool busy = cd_pg_is_contention(pg->sqlstate);
        cd_pg_rollback(pg);
        if (busy && cd_pg_is_open(pg)) {
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

cd_status_t cd_store_partitions_maintain(const cd_pg_conf_t *db, int abandon_fd, int ahead_days,
                                         int retention_days,
                                         cd_store_partitions_result_t *res, cd_err_t *err)
{
    cd_pg_t pg;
    int64_t today = cd_store_partitions_day(cd_now_us());
    cd_status_t st;

    memset(res, 0, sizeof(*res));
    cd_pg_init(&pg, db, "convdiag-partitions", abandon_fd);
    if ((st = cd_pg_open(&pg, err)) != CD_OK)
        goto done;
    if ((st = cd_pg_exec(&pg, "SET client_min_messages = warning", err)) != CD_OK)
        goto done;
    for (int64_t day = today - 1; day <= today + ahead_days && st == CD_OK; day++) {
        bool created;
        char name[32];
        if ((st = create_partition(&pg, day, &created, err)) == CD_OK && created) {
            res->created++;
            cd_store_partitions_name(day, name, sizeof(name));
            cd_log_info("partitions", "created partition %s ahead of time", name);
        }
    }
    if (st == CD_OK && retention_days > 0)
        st = drop_expired(&pg, cd_store_partitions_keep_from(today, retention_days),
                          retention_days, res, err);
done:
    cd_pg_close(&pg);
    return st;
}

/* ---- the partitions of a batch ----------------------------------------- */

static bool day_known(const cd_store_t *s, int64_t day)
{
    for (size_t i = 0; i < s->days_count; i++)
        if (s->days[i] == day)
            return true;
    return false;
}

void cd_store_forget_partitions(cd_store_t *s) { s->days_count = 0; }

/*
 * Makes sure the partitions of the batch's days exist, before its
 * transaction.  An event of a day retention no longer keeps becomes a dead
 * letter: storing it would create a partition only for the next pass to drop
 * it, the event with it, an hour later at most and silently; a dead letter
 * keeps its bytes and says why, and it can be replayed with a longer
 * retention.  It also keeps a producer with a wrong clock from making
 * partitions of long-gone days; events.future.max.days does the same for
 * days far ahead, each of which would otherwise be a partition of its own.
 */
cd_status_t cd_store_ensure_partitions(cd_store_t *s, cd_batch_t *batch, cd_err_t *err)
{
    int64_t today = cd_store_partitions_day(cd_now_us());
    int64_t keep_from = cd_store_partitions_keep_from(today, s->retention_days);
    int64_t last_day = s->future_max_days ? today + s->future_max_days : INT64_MAX;
    int64_t last = INT64_MIN; /* the last day checked: batches run in time order, mostly */
    char name[32], reason[256];
    cd_status_t st;

    /* Days retention has let go stay out of the list: it remains a few entries long. */
    size_t kept = 0;
    for (size_t i = 0; i < s->days_count; i++)
        if (s->days[i] >= keep_from)
            s->days[kept++] = s->days[i];
    s->days_count = kept;

    for (size_t i = 0; i < batch->count; i++) {
        cd_record_t *rec = &batch->records[i];
        if (!rec->valid)
            continue;
        int64_t day = cd_store_partitions_day(rec->event.ts_us);
        if (day == last)
            continue;
        if (day < keep_from) {
            snprintf(reason, sizeof(reason),
                     "timestamp: '%.64s' is older than the retention period "
                     "(events.retention.days = %d): its day is no longer kept",
                     rec->event.timestamp, s->retention_days);
            cd_record_reject(rec, reason);
            continue;
        }
        if (day > last_day) {
            snprintf(reason, sizeof(reason),
                     "timestamp: '%.64s' is more than %d days ahead of this host's clock "
                     "(events.future.max.days = %d): its day gets no partition",
                     rec->event.timestamp, s->future_max_days, s->future_max_days);
            cd_record_reject(rec, reason);
            continue;
        }
        if (!cd_store_partitions_name(day, name, sizeof(name))) {
            snprintf(reason, sizeof(reason),
                     "timestamp: '%.64s' is outside the years 0001 to 9999 (UTC) that events "
                     "are kept for", rec->event.timestamp);
            cd_record_reject(rec, reason);
            continue;
        }
        if (!day_known(s, day)) {
            bool created;
            if ((st = create_partition(&s->pg, day, &created, err)) != CD_OK)
                return st;
            if (created)
                cd_log_info("store", "created partition %s for an event of that day", name);
            if (s->days_count == s->days_cap) {
                size_t cap = s->days_cap ? 2 * s->days_cap : 16;
                int64_t *d = realloc(s->days, cap * sizeof(*d));
                if (!d)
                    return cd_err_set(err, CD_RETRY, "out of memory listing partitions");
                s->days = d;
                s->days_cap = cap;
            }
            s->days[s->days_count++] = day;
        }
        last = day;
    }
    return CD_OK;
}
