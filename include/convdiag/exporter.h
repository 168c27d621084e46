/*
 * exporter.h -- sends the export outbox to Application Insights.
 *
 * An exporter runs workers, each a thread with its own PostgreSQL connection
 * (outbox.h) and HTTP connection (export_sender.h).  A worker claims an
 * outbox row, makes its events into envelopes (export.h), sends them in
 * requests of at most export.batch.max.items items and
 * export.batch.max.bytes bytes, and settles each item as the response
 * policy says (export_policy.h).  After a request the service did not take
 * as a whole (down, unreachable) the worker waits out the back-off before
 * its next request, so an outage costs one request per back-off period and
 * per worker; meanwhile the outbox grows and nothing is lost.  Throttling
 * and a refused key or token are the resource's: they pause every worker of
 * every process through export_pauses (outbox.h), and one request per pause
 * probes whether it is over.  A 307/308 is followed and, for its
 * Cache-Control max-age (12 hours without one, as the SDKs keep it), the
 * workers send where it pointed.
 */
#ifndef CONVDIAG_EXPORTER_H
#define CONVDIAG_EXPORTER_H

#include <stdatomic.h>
#include <stdint.h>

#include "convdiag/common.h"
#include "convdiag/config.h"
#include "convdiag/metrics.h"

/* Where export goes without a connection string: the local ingestion emulator
 * (services/emulator), which takes any key of GUID form. */
#define CD_EXPORT_LOCAL_CONNECTION_STRING                                                  \
    "InstrumentationKey=00000000-0000-0000-0000-000000000000;"                              \
    "IngestionEndpoint=http://127.0.0.1:28080/"

typedef struct cd_exporter_stats {
    uint64_t requests;   /* track requests that got an answer */
    uint64_t unanswered; /* requests that got none (refused, reset, timed out) */
    uint64_t sent;       /* items in answered requests */
    uint64_t accepted;   /* items the service took */
    uint64_t resent;     /* items left for a later attempt */
    uint64_t failed;     /* items refused for good (export_failures) */
    uint64_t raw_bytes;  /* request bodies before gzip */
    uint64_t wire_bytes; /* request bodies as sent */
    uint64_t pauses;     /* answers that paused every sender (export_pauses) */
} cd_exporter_stats_t;

typedef struct cd_exporter cd_exporter_t;

/*
 * An exporter for cfg (borrowed; must outlive it): the connection string
 * (cfg->export_connection_string, else CD_EXPORT_LOCAL_CONNECTION_STRING) is
 * parsed here, so a malformed one is an error before anything starts.
 */
cd_status_t cd_exporter_new(const cd_config_t *cfg, cd_exporter_t **out, cd_err_t *err);
void cd_exporter_free(cd_exporter_t *ex);

/* The track URL requests go to, and the key as logs may show it. */
const char *cd_exporter_url(const cd_exporter_t *ex);
const char *cd_exporter_masked_ikey(const cd_exporter_t *ex);

/*
 * Starts `workers` threads.  They stop, each after settling the row in
 * hand, when *stop becomes non-zero; a worker that meets an error retrying
 * cannot mend (the schema missing) logs it, sets *stop so that the whole
 * service ends, and cd_exporter_wait reports it.  progress_interval_ms > 0:
 * a progress line that often.
 */
cd_status_t cd_exporter_start(cd_exporter_t *ex, int workers, atomic_int *stop,
                              int progress_interval_ms, cd_err_t *err);

/* How many workers were started. */
int cd_exporter_workers(const cd_exporter_t *ex);

/* Asks the workers to end once the outbox is empty (events being retried
 * keep them going until sent or refused). */
void cd_exporter_drain(cd_exporter_t *ex);

/* Waits for the workers.  CD_ERROR: one stopped on an error (in err). */
cd_status_t cd_exporter_wait(cd_exporter_t *ex, cd_err_t *err);

void cd_exporter_get_stats(cd_exporter_t *ex, cd_exporter_stats_t *out);

/* Publishes the stats as convdiag_export_* counters of m (borrowed; must
 * outlive ex), until cd_exporter_free.  health: the exporter is the whole
 * process (`convdiag export`): its workers beat m's heartbeat and report
 * PostgreSQL's readiness. */
void cd_exporter_expose(cd_exporter_t *ex, cd_metrics_t *m, bool health);

#endif
