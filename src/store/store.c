/*
 * store.c -- the store: its connection and session, the batch's
 * transaction, what a failure means, and the wall-clock stale sweep; see
 * store.h.  The rows themselves are written by the files store_private.h
 * lists.
 */
#include "store_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convdiag/log.h"

/* $1/$2: scenarios with their own stale time (as arrays: name, ms); $3: the
 * default.  The conversations of the runs flagged get a new version, so a
 * writer holding one in memory loads it again rather than overwrite the flag. */
static const cd_store_statement_t sweep_statement = {
    "sweep_stale",
    "WITH flagged AS (UPDATE scenario_runs AS r SET stale = true, updated_at = now() "
    "WHERE state = 'open' AND NOT stale AND start_time < now() - make_interval(secs => "
    "coalesce((SELECT o.ms FROM unnest($1::text[], $2::bigint[]) AS o(scenario, ms) "
    "WHERE o.scenario = r.scenario), $3::bigint) / 1000.0) RETURNING live_work_item_id), "
    "bumped AS (UPDATE conversations AS c SET version = c.version + 1 "
    "WHERE c.live_work_item_id IN (SELECT live_work_item_id FROM flagged) RETURNING 1) "
    "SELECT (SELECT count(*) FROM flagged), (SELECT count(*) FROM bumped)",
    3,
};

/*
 * The session: every statement of a batch looks rows up by key, and none may
 * read a whole table, however the planner sees it.  It sees a partition made
 * (and analyzed) empty as holding nothing long after it holds millions, and
 * a table never analyzed as ten pages, and with those statistics a scan
 * looks cheapest.  Without seqscans on offer it takes the index.  No JIT:
 * disabled scans cost 1e10 to the planner, far over jit_above_cost, and
 * compiling costs a statement of a few rows tens of milliseconds.
 */
static const struct {
    const char *what; /* for messages, which must stay short enough for a probe */
    const char *sql;
} session_setup[] = {
    {"SET enable_seqscan", "SET enable_seqscan = off"},
    {"SET jit", "SET jit = off"},
};

cd_store_t *cd_store_new(const cd_store_conf_t *conf)
{
    cd_store_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    cd_pg_init(&s->pg, conf->db, conf->app ? conf->app : "convdiag", conf->abandon_fd);
    cd_copy_init(&s->copy, &s->pg);
    s->outbox_group_max = conf->outbox_group_max;
    s->retention_days = conf->retention_days;
    s->future_max_days = conf->future_max_days;
    cd_buf_init(&s->ids);
    cd_buf_init(&s->times);
    cd_buf_init(&s->keys);
    for (size_t i = 0; i < CD_ARRAY_LEN(s->cols); i++)
        cd_buf_init(&s->cols[i]);
    cd_strmap_init(&s->seen);
    return s;
}

void cd_store_free(cd_store_t *s)
{
    if (!s)
        return;
    cd_pg_close(&s->pg);
    cd_copy_fini(&s->copy);
    cd_buf_fini(&s->ids);
    cd_buf_fini(&s->times);
    cd_buf_fini(&s->keys);
    for (size_t i = 0; i < CD_ARRAY_LEN(s->cols); i++)
        cd_buf_fini(&s->cols[i]);
    cd_strmap_fini(&s->seen);
    free(s->probe);
    free(s->days);
    free(s);
}

cd_store_failure_t cd_store_last_failure(const cd_store_t *s) { return s->failure; }

cd_status_t cd_store_fail(cd_store_t *s, cd_status_t st)
{
    const char *state = s->pg.sqlstate;

    if (st == CD_OK)
        s->failure = CD_STORE_FAILED_NOT;
    else if (s->pg.abandoned)
        s->failure = CD_STORE_ABANDONED;
    else if (cd_pg_is_contention(state))
        s->failure = CD_STORE_CONTENTION;
    else if (st == CD_RETRY)
        s->failure = CD_STORE_UNAVAILABLE;
    else if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0)
        s->failure = CD_STORE_ROW; /* a data exception or integrity violation: a row's */
    else
        s->failure = CD_STORE_FATAL;
    if (!cd_pg_is_open(&s->pg))
        s->prepared = false;
    return st;
}

static const struct {
    const cd_store_statement_t *list;
    const size_t *count;
} statement_lists[] = {
    {cd_store_duplicate_statements, &cd_store_duplicate_statements_count},
    {cd_store_state_statements, &cd_store_state_statements_count},
    {cd_store_dead_letter_statements, &cd_store_dead_letter_statements_count},
    {&sweep_statement, NULL},
};

static cd_status_t prepare_session(cd_store_t *s, cd_err_t *err)
{
    cd_status_t st;

    if (s->prepared && cd_pg_is_open(&s->pg))
        return CD_OK;
    s->prepared = false;
    if ((st = cd_pg_open(&s->pg, err)) != CD_OK)
        return st;
    for (size_t i = 0; i < CD_ARRAY_LEN(session_setup); i++)
        if ((st = cd_pg_query(&s->pg, session_setup[i].what, session_setup[i].sql, false, 0,
                              NULL, NULL, NULL, NULL, err)) != CD_OK)
            return st;
    for (size_t l = 0; l < CD_ARRAY_LEN(statement_lists); l++) {
        size_t n = statement_lists[l].count ? *statement_lists[l].count : 1;
        for (size_t i = 0; i < n; i++) {
            const cd_store_statement_t *p = &statement_lists[l].list[i];
            if ((st = cd_pg_prepare(&s->pg, p->name, p->sql, p->nparams, err)) != CD_OK)
                return st;
        }
    }
    s->prepared = true;
    return CD_OK;
}

cd_status_t cd_store_connect(cd_store_t *s, cd_err_t *err)
{
    cd_err_t why;
    cd_status_t st = cd_store_fail(s, prepare_session(s, &why));
    if (st == CD_OK)
        return CD_OK;
    return cd_err_set(err, st, "%s%s", why.msg,
                      st == CD_ERROR && (strcmp(s->pg.sqlstate, "42P01") == 0 ||
                                         strcmp(s->pg.sqlstate, "42703") == 0)
                          ? " (has `convdiag migrate` been run?)"
                          : "");
}

cd_status_t cd_store_query(cd_store_t *s, const char *stmt, int n, const char *const *vals,
                           PGresult **res, cd_err_t *err)
{
    return cd_store_fail(s, cd_pg_query(&s->pg, stmt, stmt, true, n, vals, NULL, NULL, res, err));
}

cd_status_t cd_store_prepare_batch(cd_store_t *s, cd_batch_t *batch, cd_err_t *err)
{
    cd_status_t st = cd_store_connect(s, err);
    if (st != CD_OK)
        return st;
    return cd_store_fail(s, cd_store_ensure_partitions(s, batch, err));
}

cd_status_t cd_store_begin(cd_store_t *s, cd_err_t *err)
{
    cd_status_t st = cd_store_connect(s, err);
    if (st != CD_OK)
        return st;
    return cd_store_fail(s, cd_pg_exec(&s->pg, "BEGIN", err));
}

cd_status_t cd_store_commit(cd_store_t *s, cd_err_t *err)
{
    return cd_store_fail(s, cd_pg_exec(&s->pg, "COMMIT", err));
}

void cd_store_rollback(cd_store_t *s) { cd_pg_rollback(&s->pg); }

cd_status_t cd_store_write_batch(cd_store_t *s, const cd_batch_t *batch, cd_tag_state_t *st,
                                 cd_store_result_t *r, cd_err_t *err)
{
    cd_status_t rc;

    memset(r, 0, sizeof(*r));
    /* Conversations first: their version check fails early, before the
     * events are sent, and their row locks are the conversation locks. */
    if ((rc = cd_store_write_state(s, st, r, err)) != CD_OK ||
        (rc = cd_store_write_events(s, batch, r, err)) != CD_OK ||
        (rc = cd_store_write_outbox(s, batch, err)) != CD_OK ||
        (rc = cd_store_write_dead_letters(s, batch, &r->dead_letters, err)) != CD_OK)
        return rc;
    return CD_OK;
}

cd_status_t cd_store_sweep_stale(cd_store_t *s, const cd_tagger_conf_t *tc, size_t *flagged,
                                 cd_err_t *err)
{
    cd_buf_t names, ms;
    char def[24];
    cd_status_t st;
    PGresult *res = NULL;

    *flagged = 0;
    if ((st = cd_store_connect(s, err)) != CD_OK)
        return st;
    cd_buf_init(&names);
    cd_buf_init(&ms);
    for (size_t i = 0; i < tc->overrides_count; i++) {
        char n[24];
        cd_array_put(&names, tc->overrides[i].scenario);
        cd_write_i64(n, tc->overrides[i].after_ms);
        cd_buf_putc(&ms, ms.len ? ',' : '{');
        cd_buf_puts(&ms, n);
    }
    cd_array_close(&names);
    cd_array_close(&ms);
    cd_write_i64(def, cd_tagger_stale_after_ms(tc, ""));
    if (names.oom || ms.oom) {
        st = cd_err_set(err, CD_RETRY, "sweeping stale runs: out of memory");
    } else {
        const char *vals[3] = {names.data, ms.data, def};
        st = cd_store_query(s, sweep_statement.name, 3, vals, &res, err);
    }
    if (st == CD_OK)
        *flagged = (size_t)strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    cd_buf_fini(&names);
    cd_buf_fini(&ms);
    return st;
}
