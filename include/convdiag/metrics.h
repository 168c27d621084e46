/*
 * metrics.h -- what a running convdiag tells Prometheus and the
 * orchestrator: counters, gauges and histograms in the Prometheus text format, and the
 * state liveness and readiness probes read.
 *
 * Metrics are registered once, before threads use them, and updated from
 * any thread without a lock (atomics); rendering reads them from the HTTP
 * server's thread.  Every update function takes a NULL metric and does
 * nothing, so code instrumented for a registry runs unchanged without one.
 */
#ifndef CONVDIAG_METRICS_H
#define CONVDIAG_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "convdiag/buf.h"
#include "convdiag/common.h"

typedef enum { CD_METRIC_COUNTER, CD_METRIC_GAUGE } cd_metric_type_t;

typedef struct cd_metric cd_metric_t;
typedef struct cd_metrics cd_metrics_t;

/* live_timeout_ms: how long the loop may go without a heartbeat before the
 * process is reported not alive. */
cd_metrics_t *cd_metrics_new(int live_timeout_ms);
void cd_metrics_free(cd_metrics_t *m);

/*
 * Registers a metric (owned by the registry) named as Prometheus names them
 * ([a-zA-Z_:][a-zA-Z0-9_:]*, counters ending in _total).  NULL when m is
 * NULL, the name is invalid or taken, or memory runs out.
 */
cd_metric_t *cd_metrics_add(cd_metrics_t *m, cd_metric_type_t type, const char *name,
                            const char *help);

void cd_metric_add(cd_metric_t *c, double n); /* a counter grows by n (>= 0) */
/* A gauge's value; for a counter, the running total of a count kept
 * elsewhere (which must never go down). */
void cd_metric_set(cd_metric_t *g, double v);

/*
 * A histogram family with one label (e.g. "code"), owned by the registry:
 * bounds are the buckets' upper bounds in base units, ascending, at most
 * CD_HISTOGRAM_MAX_BOUNDS (copied); a series per label value is made on first
 * use, at most CD_HISTOGRAM_MAX_SERIES (later values share "other").  NULL
 * when m is NULL, the name is invalid or taken, or memory runs out.
 * Observing takes no lock but the first time a value is seen.
 */
#define CD_HISTOGRAM_MAX_BOUNDS 16
#define CD_HISTOGRAM_MAX_SERIES 16
#define CD_HISTOGRAM_VALUE_MAX 31
typedef struct cd_histogram cd_histogram_t;
cd_histogram_t *cd_metrics_add_histogram(cd_metrics_t *m, const char *name, const char *help,
                                         const char *label, const double *bounds,
                                         size_t nbounds);
/* One observation v of the series label_value (cut to CD_HISTOGRAM_VALUE_MAX). */
void cd_histogram_observe(cd_histogram_t *h, const char *label_value, double v);

/* Called before every rendering to bring metrics kept elsewhere up to date
 * (with cd_metric_set); arg is borrowed.  False when memory runs out. */
typedef void (*cd_metrics_collect_fn)(void *arg);
bool cd_metrics_add_collector(cd_metrics_t *m, cd_metrics_collect_fn fn, void *arg);
/* Once it returns, fn is not running and is not called again with arg: arg
 * may be freed. */
void cd_metrics_remove_collector(cd_metrics_t *m, cd_metrics_collect_fn fn, void *arg);

/* Every metric in the Prometheus text exposition format 0.0.4. */
void cd_metrics_render(cd_metrics_t *m, cd_buf_t *out);

/* The main loop is alive: called at least every live_timeout_ms. */
void cd_metrics_heartbeat(cd_metrics_t *m);

/*
 * Whether a dependency the service needs is usable (name: up to 31
 * characters; at most 8 of them), with why not.  The service is ready when
 * it has reported at least one and all are up.
 */
void cd_metrics_set_ready(cd_metrics_t *m, const char *dependency, bool up, const char *why);

/* Liveness and readiness as the probes see them, with a JSON body saying
 * why into out. */
bool cd_metrics_alive(cd_metrics_t *m, cd_buf_t *out);
bool cd_metrics_ready(cd_metrics_t *m, cd_buf_t *out);

/*
 * An HTTP server on its own thread answering GET /metrics, /healthz
 * (liveness: 200 or 503) and /readyz (readiness: 200 or 503); m is borrowed
 * and must outlive it.  addr: HOST:PORT (port 0: any free one).
 */
typedef struct cd_metrics_server cd_metrics_server_t;

cd_metrics_server_t *cd_metrics_server_start(cd_metrics_t *m, const char *addr, cd_err_t *err);
/* The address bound, with the port filled in. */
const char *cd_metrics_server_address(const cd_metrics_server_t *s);
void cd_metrics_server_stop(cd_metrics_server_t *s);

#endif
