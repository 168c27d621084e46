/*
 * migrate.c -- applies the embedded migrations/ in version order.
 *
 * Each migration runs in its own transaction together with its row in
 * schema_migrations, so it is either wholly applied and recorded or not at
 * all.  An advisory lock serializes instances that start at the same time.
 * Migration files must not contain transaction control of their own.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "convdiag/log.h"
#include "convdiag/store.h"
#include "pg.h"
#include "store/migrations.h"

#define MIGRATE_LOCK_KEY "7472536112001" /* any constant; shared by all instances */

static cd_status_t result_error(PGconn *conn, PGresult *res, const char *what, cd_err_t *err)
{
    char msg[CD_ERR_MAX];
    cd_err_set(err, CD_ERROR, "%s: %s", what, cd_pg_error(conn, res, msg, sizeof(msg)));
    PQclear(res);
    return CD_ERROR;
}

static cd_status_t run(PGconn *conn, const char *sql, const char *what, cd_err_t *err)
{
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        return result_error(conn, res, what, err);
    PQclear(res);
    return CD_OK;
}

static void checksum(const char *sql, char out[9])
{
    uLong crc = crc32(0L, (const Bytef *)sql, (uInt)strlen(sql));
    snprintf(out, 9, "%08lx", crc);
}

/* Applies one migration with its bookkeeping row, or leaves the database as it was. */
static cd_status_t apply(PGconn *conn, const cd_migration_t *m, cd_err_t *err)
{
    char sum[9], what[160];

    checksum(m->sql, sum);
    snprintf(what, sizeof(what), "migration %s failed, nothing of it was applied", m->name);
    if (run(conn, "BEGIN", what, err) != CD_OK)
        return CD_ERROR;
    if (run(conn, m->sql, what, err) != CD_OK) {
        PQclear(PQexec(conn, "ROLLBACK"));
        return CD_ERROR;
    }
    const char *vals[3] = {m->version, m->name, sum};
    PGresult *res = PQexecParams(conn,
                                 "INSERT INTO schema_migrations (version, name, checksum) "
                                 "VALUES ($1, $2, $3)",
                                 3, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        result_error(conn, res, what, err);
        PQclear(PQexec(conn, "ROLLBACK"));
        return CD_ERROR;
    }
    PQclear(res);
    return run(conn, "COMMIT", what, err);
}

cd_status_t cd_store_migrate(const cd_pg_conf_t *db, int *applied, cd_err_t *err)
{
    PGconn *conn = NULL;
    PGresult *res = NULL;
    cd_status_t st = CD_ERROR;

    *applied = 0;
    if (cd_pg_connect(db, "convdiag-migrate", &conn, err) != CD_OK) {
        st = CD_RETRY;
        goto done;
    }
    PQclear(PQexec(conn, "SET client_min_messages = warning"));
    if (run(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", "taking the migration lock",
            err) != CD_OK ||
        run(conn,
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())",
            "creating schema_migrations", err) != CD_OK)
        goto done;

    res = PQexec(conn, "SELECT version, checksum FROM schema_migrations");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        result_error(conn, res, "reading schema_migrations", err);
        res = NULL;
        goto done;
    }

    for (size_t i = 0; i < cd_migrations_count; i++) {
        const cd_migration_t *m = &cd_migrations[i];
        const char *recorded = NULL;
        for (int r = 0; r < PQntuples(res); r++)
            if (strcmp(PQgetvalue(res, r, 0), m->version) == 0)
                recorded = PQgetvalue(res, r, 1);
        if (recorded) {
            char sum[9];
            checksum(m->sql, sum);
            if (strcmp(sum, recorded) != 0)
                cd_log_warn("migrate", "%s was changed after it was applied (checksum %s, "
                            "applied %s); applied migrations are never re-run",
                            m->name, sum, recorded);
            continue;
        }
        if (apply(conn, m, err) != CD_OK)
            goto done;
        cd_log_info("migrate", "applied %s", m->name);
        (*applied)++;
    }
    st = CD_OK;

done:
    PQclear(res);
    PQfinish(conn); /* also releases the advisory lock */
    return st;
}
