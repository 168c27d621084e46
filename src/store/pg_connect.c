/* pg_connect.c -- connecting with convdiag's bounds; see convdiag/pg.h and pg.h. */
#include "pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cd_pg_conf_from_config(cd_pg_conf_t *pg, const cd_config_t *cfg)
{
    pg->url = cfg->database_url;
    pg->connect_timeout_ms = cfg->database_connect_timeout_ms;
    pg->statement_timeout_ms = cfg->database_statement_timeout_ms;
    pg->lock_timeout_ms = cfg->database_lock_timeout_ms;
    pg->tcp_user_timeout_ms = cfg->database_tcp_user_timeout_ms;
    pg->keepalives_idle_ms = cfg->database_keepalives_idle_ms;
}

int cd_pg_answer_timeout_ms(const cd_pg_conf_t *pg)
{
    if (pg->statement_timeout_ms > 0)
        return pg->statement_timeout_ms + CD_PG_ANSWER_GRACE_MS;
    if (pg->connect_timeout_ms > 0)
        return pg->connect_timeout_ms + CD_PG_ANSWER_GRACE_MS;
    return 0;
}

static void add(cd_pg_params_t *p, size_t *n, const char *key, const char *val)
{
    p->keys[*n] = key;
    p->vals[*n] = val;
    (*n)++;
}

/* ms as whole seconds, rounded up (libpq counts seconds there). */
static const char *secs(cd_pg_params_t *p, int slot, int ms)
{
    snprintf(p->text[slot], sizeof(p->text[slot]), "%d", (ms + 999) / 1000);
    return p->text[slot];
}

void cd_pg_params_init(cd_pg_params_t *p, const cd_pg_conf_t *conf, const char *app)
{
    size_t n = 0;
    const char *env_options = getenv("PGOPTIONS");

    memset(p, 0, sizeof(*p));
    /* An environment variable of libpq's own is the user's choice too. */
    if (conf->connect_timeout_ms > 0 && !getenv("PGCONNECT_TIMEOUT"))
        add(p, &n, "connect_timeout", secs(p, 0, conf->connect_timeout_ms));
    if (conf->keepalives_idle_ms > 0) {
        int idle = (conf->keepalives_idle_ms + 999) / 1000;
        add(p, &n, "keepalives", "1");
        add(p, &n, "keepalives_idle", secs(p, 1, conf->keepalives_idle_ms));
        add(p, &n, "keepalives_interval", secs(p, 2, idle >= 3 ? idle / 3 * 1000 : 1000));
        add(p, &n, "keepalives_count", "3");
    }
    if (conf->tcp_user_timeout_ms > 0) {
        snprintf(p->text[3], sizeof(p->text[3]), "%d", conf->tcp_user_timeout_ms);
        add(p, &n, "tcp_user_timeout", p->text[3]);
    }
    /* Session settings through the startup packet: no round trip of their
     * own.  PGOPTIONS comes after ours, so its -c settings win. */
    char opts[160] = "";
    size_t o = 0;
    if (conf->statement_timeout_ms > 0)
        o += (size_t)snprintf(opts + o, sizeof(opts) - o, "-c statement_timeout=%d ",
                              conf->statement_timeout_ms);
    if (conf->lock_timeout_ms > 0)
        o += (size_t)snprintf(opts + o, sizeof(opts) - o, "-c lock_timeout=%d ",
                              conf->lock_timeout_ms);
    if (o || env_options) {
        if (asprintf(&p->options, "%s%s", opts, env_options ? env_options : "") >= 0)
            add(p, &n, "options", p->options);
        else
            p->options = NULL; /* out of memory: the server's own timeouts apply */
    }
    add(p, &n, "fallback_application_name", app);
    /* Last, expanded: whatever the user's connection string says wins. */
    add(p, &n, "dbname", conf->url && conf->url[0] ? conf->url : NULL);
    add(p, &n, NULL, NULL);
}

void cd_pg_params_fini(cd_pg_params_t *p) { free(p->options); }

cd_status_t cd_pg_connect(const cd_pg_conf_t *conf, const char *app, PGconn **conn,
                          cd_err_t *err)
{
    cd_pg_params_t p;
    char msg[CD_ERR_MAX];

    cd_pg_params_init(&p, conf, app);
    *conn = PQconnectdbParams(p.keys, p.vals, 1);
    cd_pg_params_fini(&p);
    if (PQstatus(*conn) == CONNECTION_OK)
        return CD_OK;
    cd_err_set(err, CD_RETRY, "cannot connect to PostgreSQL: %s",
               cd_pg_error(*conn, NULL, msg, sizeof(msg)));
    PQfinish(*conn);
    *conn = NULL;
    return CD_RETRY;
}
