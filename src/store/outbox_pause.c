/* outbox_pause.c -- a resource's export pauses, shared through export_pauses; see outbox.h. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbox_private.h"

/* $1 is the instrumentation key: rows hold its md5, never the key. */
const struct statement cd_outbox_pause_statements[] = {
    {"pause_get",
     "SELECT kind, reason, greatest(0, ceil(extract(epoch FROM paused_until - now()) * 1000))"
     "::bigint, coalesce(probe_until > now(), false), extract(epoch FROM now() - since) "
     "FROM export_pauses WHERE resource = md5(lower($1))",
     1},
    /* $2: the sender; $3: how long its probe may take before another may probe. */
    {"pause_probe",
     "UPDATE export_pauses SET probe_by = $2, "
     "probe_until = now() + make_interval(secs => $3::bigint / 1000.0) "
     "WHERE resource = md5(lower($1)) AND paused_until <= now() "
     "AND (probe_until IS NULL OR probe_until <= now())",
     3},
    /* $4: the delay (a Retry-After, or the first back-off of a configuration
     * error, doubled per answer in a row up to $5).  A longer pause already
     * set is kept. */
    {"pause_set",
     "INSERT INTO export_pauses AS p (resource, kind, reason, paused_until) "
     "VALUES (md5(lower($1)), $2, $3, now() + make_interval(secs => CASE WHEN $2 = 'throttled' "
     "THEN $4::bigint ELSE least($4::bigint, $5::bigint) END / 1000.0)) "
     "ON CONFLICT (resource) DO UPDATE SET kind = excluded.kind, reason = excluded.reason, "
     "failures = p.failures + 1, probe_by = NULL, probe_until = NULL, "
     "paused_until = greatest(p.paused_until, CASE WHEN excluded.kind = 'throttled' "
     "THEN excluded.paused_until ELSE now() + make_interval(secs => least($5::bigint, "
     "$4::bigint * 2 ^ least(p.failures, 30)) / 1000.0) END) "
     "RETURNING greatest(0, ceil(extract(epoch FROM paused_until - now()) * 1000))::bigint",
     5},
    {"pause_clear",
     "DELETE FROM export_pauses WHERE resource = md5(lower($1)) AND probe_by = $2 "
     "RETURNING kind, extract(epoch FROM now() - since)",
     2},
};
const size_t cd_outbox_pause_statement_count = CD_ARRAY_LEN(cd_outbox_pause_statements);

static cd_export_pause_t kind_of(const char *s)
{
    if (strcmp(s, "throttled") == 0)
        return CD_EXPORT_THROTTLED;
    if (strcmp(s, "credentials") == 0)
        return CD_EXPORT_BAD_CREDENTIALS;
    return CD_EXPORT_BAD_KEY;
}

cd_status_t cd_outbox_pause_get(cd_outbox_t *ob, const char *ikey, cd_outbox_pause_t *p,
                                cd_err_t *err)
{
    cd_status_t st;
    *p = (cd_outbox_pause_t){.kind = CD_EXPORT_GO};
    if ((st = cd_outbox_ready(ob, err)) != CD_OK)
        return st;
    const char *vals[1] = {ikey};
    PGresult *res = PQexecPrepared(ob->conn, "pause_get", 1, vals, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return cd_outbox_fail(ob, res, "reading export_pauses", err);
    if (PQntuples(res) == 1) {
        p->kind = kind_of(PQgetvalue(res, 0, 0));
        snprintf(p->reason, sizeof(p->reason), "%s", PQgetvalue(res, 0, 1));
        p->wait_ms = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
        p->probing = PQgetvalue(res, 0, 3)[0] == 't';
        p->lasted_s = strtod(PQgetvalue(res, 0, 4), NULL);
    }
    PQclear(res);
    return CD_OK;
}

cd_status_t cd_outbox_pause_probe(cd_outbox_t *ob, const char *ikey, int probe_ms, bool *won,
                                  cd_err_t *err)
{
    char ms[24];
    cd_status_t st;

    *won = false;
    if ((st = cd_outbox_ready(ob, err)) != CD_OK)
        return st;
    snprintf(ms, sizeof(ms), "%d", probe_ms);
    const char *vals[3] = {ikey, ob->sender, ms};
    PGresult *res = PQexecPrepared(ob->conn, "pause_probe", 3, vals, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return cd_outbox_fail(ob, res, "taking the probe of a pause", err);
    *won = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    return CD_OK;
}

cd_status_t cd_outbox_pause_set(cd_outbox_t *ob, const char *ikey, cd_export_pause_t kind,
                                const char *reason, int64_t delay_ms, int64_t max_ms,
                                int64_t *wait_ms, cd_err_t *err)
{
    char delay[24], max[24];
    cd_status_t st;

    *wait_ms = delay_ms;
    if ((st = cd_outbox_ready(ob, err)) != CD_OK)
        return st;
    snprintf(delay, sizeof(delay), "%lld", (long long)delay_ms);
    snprintf(max, sizeof(max), "%lld", (long long)max_ms);
    const char *vals[5] = {ikey, cd_export_pause_name(kind), reason, delay, max};
    PGresult *res = PQexecPrepared(ob->conn, "pause_set", 5, vals, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return cd_outbox_fail(ob, res, "pausing export in export_pauses", err);
    *wait_ms = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return CD_OK;
}

cd_status_t cd_outbox_pause_clear(cd_outbox_t *ob, const char *ikey, cd_outbox_pause_t *was,
                                  cd_err_t *err)
{
    cd_status_t st;

    *was = (cd_outbox_pause_t){.kind = CD_EXPORT_GO};
    if ((st = cd_outbox_ready(ob, err)) != CD_OK)
        return st;
    const char *vals[2] = {ikey, ob->sender};
    PGresult *res = PQexecPrepared(ob->conn, "pause_clear", 2, vals, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return cd_outbox_fail(ob, res, "ending a pause in export_pauses", err);
    if (PQntuples(res) == 1) {
        was->kind = kind_of(PQgetvalue(res, 0, 0));
        was->lasted_s = strtod(PQgetvalue(res, 0, 1), NULL);
    }
    PQclear(res);
    return CD_OK;
}
