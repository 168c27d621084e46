/*
 * pg.h -- how convdiag connects to PostgreSQL: the connection string and the
 * bounds every connection gets, whatever it is for (ingest writers,
 * partition maintenance, the exporter, the commands).
 *
 * A connection that the network leaves silent must not wait forever, nor
 * for the kernel's fifteen minutes: libpq gets connect_timeout, TCP
 * keepalives and tcp_user_timeout, and the session statement_timeout and
 * lock_timeout.  They are sent ahead of the user's own connection string,
 * so anything that string (or PGCONNECT_TIMEOUT, PGOPTIONS) says wins; a
 * setting of 0 leaves libpq's or the server's own value.  Connections that
 * wait through the bounded calls of the store also give up on their own
 * once the server has not answered within the statement timeout plus
 * CD_PG_ANSWER_GRACE_MS: the only way to notice a peer that a proxy keeps
 * acknowledging while nothing comes back.
 */
#ifndef CONVDIAG_PG_H
#define CONVDIAG_PG_H

#include "convdiag/config.h"

/* Time the server has, beyond the statement timeout, to report it. */
#define CD_PG_ANSWER_GRACE_MS 5000

typedef struct cd_pg_conf {
    const char *url;          /* borrowed: conninfo or URL; "": libpq's PG* environment */
    int connect_timeout_ms;   /* database.connect.timeout.ms */
    int statement_timeout_ms; /* database.statement.timeout.ms */
    int lock_timeout_ms;      /* database.lock.timeout.ms */
    int tcp_user_timeout_ms;  /* database.tcp.user.timeout.ms */
    int keepalives_idle_ms;   /* database.keepalives.idle.ms; probes every third of it,
                               * three before the connection is dropped */
} cd_pg_conf_t;

/* The settings of cfg; pg borrows cfg's strings. */
void cd_pg_conf_from_config(cd_pg_conf_t *pg, const cd_config_t *cfg);

/* How long a bounded call waits for an answer: the statement timeout plus
 * the grace, or connect_timeout_ms plus the grace when there is no
 * statement timeout; 0 when neither is set (no bound). */
int cd_pg_answer_timeout_ms(const cd_pg_conf_t *pg);

#endif
