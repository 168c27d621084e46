/*
 * outbox_private.h -- what outbox.c (claims, leases, outcomes) and
 * outbox_pause.c (the resource's pauses) share: one connection per sender.
 */
#ifndef CONVDIAG_STORE_OUTBOX_PRIVATE_H
#define CONVDIAG_STORE_OUTBOX_PRIVATE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "convdiag/buf.h"
#include "convdiag/outbox.h"
#include "pg.h"

/* A statement prepared on every connection of an outbox. */
struct statement {
    const char *name;
    const char *sql;
    int nparams;
};

struct cd_outbox {
    PGconn *conn;
    const cd_pg_conf_t *db;
    char *sender;      /* claimed_by and probe_by: host:pid:worker */
    int lease_ms;
    bool ready;        /* connected, statements prepared */
    PGresult *claimed; /* the claimed row's events, NULL when none is claimed */
    int64_t renewed_us; /* cd_mono_us() of the claim or its last renewal */
    cd_outbox_group_t group;
    size_t cap;
    cd_buf_t ids;
};

/* outbox_pause.c's statements, prepared with outbox.c's. */
extern const struct statement cd_outbox_pause_statements[];
extern const size_t cd_outbox_pause_statement_count;

/* Connects and prepares unless done; CD_RETRY while PostgreSQL is away. */
cd_status_t cd_outbox_ready(cd_outbox_t *ob, cd_err_t *err);

/* Classifies a failed result (CD_RETRY when transient or the connection is
 * gone), fills err with what failed, clears the result. */
cd_status_t cd_outbox_fail(cd_outbox_t *ob, PGresult *res, const char *what, cd_err_t *err);

#endif
