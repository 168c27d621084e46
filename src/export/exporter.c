/* exporter.c -- the workers that drain the export outbox; see exporter.h. */
#include "convdiag/exporter.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "convdiag/buf.h"
#include "convdiag/export.h"
#include "convdiag/export_policy.h"
#include "convdiag/export_sender.h"
#include "convdiag/export_token.h"
#include "convdiag/log.h"
#include "convdiag/outbox.h"
#include "convdiag/timeutil.h"

#define BACKOFF_MIN_MS 500
#define MAX_WORKERS 16
#define NSTATS 9
/* How often worker 0 reads the outbox's backlog for /metrics. */
#define BACKLOG_EVERY_US (5 * 1000000LL)

typedef struct worker worker_t;

struct cd_exporter {
    const cd_config_t *cfg;
    cd_pg_conf_t db; /* the outbox's database, from cfg */
    cd_export_conn_t conn;
    cd_export_config_t env; /* what every envelope carries */
    char host[256];
    char masked[CD_EXPORT_MASKED_SIZE];
    cd_export_token_t *token; /* NULL: no Entra authentication */
    atomic_int *stop;
    atomic_bool drain;
    /* Where a redirect sent the requests, for as long as its max-age allows;
     * shared by the workers. */
    pthread_mutex_t route_lock;
    char route[CD_EXPORT_URL_MAX + 1]; /* "": the connection string's track URL */
    int64_t route_until_us;            /* cd_mono_us() */
    char route_seen[CD_EXPORT_URL_MAX + 1]; /* the last redirect logged */
    /* The resource's pause as this process last saw it (cd_export_pause_t). */
    atomic_int paused;
    atomic_llong backlog_events;
    _Atomic double backlog_age_s;
    atomic_bool failed;
    cd_err_t failure;
    pthread_mutex_t failure_lock;
    int progress_interval_ms;
    worker_t *workers;
    int nworkers;
    struct {
        atomic_uint_least64_t requests, unanswered, sent, accepted, resent, failed, raw_bytes,
            wire_bytes, pauses;
    } stats;
    cd_metrics_t *metrics; /* NULL unless exposed */
    cd_metric_t *m[NSTATS]; /* the stats in cd_exporter_stats_t's order */
    cd_metric_t *g_paused, *g_backlog, *g_backlog_age;
    cd_histogram_t *h_request; /* request seconds by status code */
    cd_metrics_t *health;  /* NULL unless the workers are the process's liveness */
};

struct worker {
    cd_exporter_t *ex;
    int index;
    pthread_t thread;
    bool started;
    cd_outbox_t *outbox;
    cd_export_sender_t *sender;
    cd_export_backoff_t backoff;
    unsigned seed;
    cd_buf_t body;                 /* the request being built */
    cd_buf_t one;                  /* one envelope */
    size_t *map;                   /* request item -> group item */
    cd_export_outcome_t *outcomes; /* per group item */
    cd_export_outcome_t *answer;   /* per request item */
    size_t cap;
    char bearer[CD_EXPORT_TOKEN_MAX + 1];
    bool have_bearer;
    bool refused_token;            /* the last request's token was refused: fetched anew */
    int64_t backlog_at_us;         /* worker 0: when the backlog was read last */
    /* the requests of the group in hand */
    bool whole_failed;             /* not taken as a whole: wait before the next */
    bool probe;                    /* one request only: is the resource's pause over? */
    bool taken;                    /* the service accepted some item of the group */
    cd_export_pause_t pause;       /* what the answers ask of every sender */
    int64_t retry_after_ms;
    char reason[CD_ERR_MAX];
    char pause_reason[CD_ERR_MAX];
};

cd_status_t cd_exporter_new(const cd_config_t *cfg, cd_exporter_t **out, cd_err_t *err)
{
    const char *cs = cfg->export_connection_string[0] ? cfg->export_connection_string
                                                       : CD_EXPORT_LOCAL_CONNECTION_STRING;
    cd_exporter_t *ex = calloc(1, sizeof(*ex));
    cd_err_t why;

    *out = NULL;
    if (!ex)
        return cd_err_set(err, CD_ERROR, "out of memory");
    if (cd_export_conn_parse(&ex->conn, cs, &why) != CD_OK) {
        free(ex);
        return cd_err_set(err, CD_ERROR, "APPLICATIONINSIGHTS_CONNECTION_STRING: %s", why.msg);
    }
    if (cfg->export_token_file[0] && cfg->export_token_command[0]) {
        free(ex);
        return cd_err_set(err, CD_ERROR,
                          "export.token.file and export.token.command: set one, not both");
    }
    if ((cfg->export_token_file[0] || cfg->export_token_command[0]) &&
        !(ex->token = cd_export_token_new(cfg->export_token_file, cfg->export_token_command,
                                          cfg->export_token_timeout_ms))) {
        free(ex);
        return cd_err_set(err, CD_ERROR, "out of memory");
    }
    if (gethostname(ex->host, sizeof(ex->host)) != 0)
        ex->host[0] = '\0';
    ex->host[sizeof(ex->host) - 1] = '\0';
    ex->cfg = cfg;
    ex->env = (cd_export_config_t){.ikey = ex->conn.ikey,
                                   .cloud_role = cfg->export_cloud_role,
                                   .cloud_role_instance = ex->host,
                                   .sdk_version = CD_EXPORT_SDK_VERSION};
    cd_export_mask_ikey(ex->conn.ikey, ex->masked, sizeof(ex->masked));
    pthread_mutex_init(&ex->failure_lock, NULL);
    pthread_mutex_init(&ex->route_lock, NULL);
    *out = ex;
    return CD_OK;
}

const char *cd_exporter_url(const cd_exporter_t *ex) { return ex->conn.track_url; }

const char *cd_exporter_masked_ikey(const cd_exporter_t *ex) { return ex->masked; }

static void worker_fini(worker_t *w)
{
    cd_outbox_free(w->outbox);
    cd_export_sender_free(w->sender);
    cd_buf_fini(&w->body);
    cd_buf_fini(&w->one);
    if (w->outcomes)
        cd_export_outcomes_clear(w->outcomes, w->cap);
    if (w->answer)
        cd_export_outcomes_clear(w->answer, w->cap);
    free(w->map);
    free(w->outcomes);
    free(w->answer);
}

/* The stats, as the registry renders them. */
static void collect(void *arg)
{
    cd_exporter_t *ex = arg;
    cd_exporter_stats_t s;

    cd_exporter_get_stats(ex, &s);
    const uint64_t v[NSTATS] = {s.requests, s.unanswered, s.sent,       s.accepted, s.resent,
                                s.failed,   s.raw_bytes,  s.wire_bytes, s.pauses};
    for (int i = 0; i < NSTATS; i++)
        cd_metric_set(ex->m[i], (double)v[i]);
    cd_metric_set(ex->g_paused, atomic_load(&ex->paused) != CD_EXPORT_GO);
    cd_metric_set(ex->g_backlog, (double)atomic_load(&ex->backlog_events));
    cd_metric_set(ex->g_backlog_age, atomic_load(&ex->backlog_age_s));
}

void cd_exporter_expose(cd_exporter_t *ex, cd_metrics_t *m, bool health)
{
    static const char *const metrics[NSTATS][2] = {
        {"convdiag_export_requests_total", "Track requests Application Insights answered."},
        {"convdiag_export_unanswered_total",
         "Track requests that got no answer (refused, reset, timed out)."},
        {"convdiag_export_items_sent_total", "Items in answered track requests."},
        {"convdiag_export_items_accepted_total", "Items Application Insights accepted."},
        {"convdiag_export_items_resent_total", "Items left in the outbox for a later attempt."},
        {"convdiag_export_items_refused_total",
         "Items refused for good, kept in export_failures with the reason."},
        {"convdiag_export_body_bytes_total", "Track request bodies before gzip."},
        {"convdiag_export_wire_bytes_total", "Track request bodies as sent."},
        {"convdiag_export_pauses_total",
         "Answers that paused every sender: throttling, a wrong key or token."},
    };
    for (int i = 0; i < NSTATS; i++)
        ex->m[i] = cd_metrics_add(m, CD_METRIC_COUNTER, metrics[i][0], metrics[i][1]);
    ex->g_paused = cd_metrics_add(m, CD_METRIC_GAUGE, "convdiag_export_paused",
                                  "1 while export to the resource is paused (see /readyz).");
    ex->g_backlog = cd_metrics_add(m, CD_METRIC_GAUGE, "convdiag_export_backlog_events",
                                   "Events waiting in the export outbox (read every 5 s).");
    ex->g_backlog_age =
        cd_metrics_add(m, CD_METRIC_GAUGE, "convdiag_export_backlog_oldest_seconds",
                       "Age of the oldest outbox row (read every 5 s); 0 when empty.");
    /* From a fast answer on a kept-alive connection to export.timeout.ms. */
    static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    ex->h_request = cd_metrics_add_histogram(
        m, "convdiag_export_request_seconds",
        "Track requests from sending to the answer (redirects included), by status code; "
        "code=\"none\": no answer.",
        "code", bounds, CD_ARRAY_LEN(bounds));
    if (cd_metrics_add_collector(m, collect, ex))
        ex->metrics = m;
    if (health)
        ex->health = m;
}

void cd_exporter_free(cd_exporter_t *ex)
{
    if (!ex)
        return;
    cd_metrics_remove_collector(ex->metrics, collect, ex);
    for (int i = 0; i < ex->nworkers; i++)
        worker_fini(&ex->workers[i]);
    free(ex->workers);
    cd_export_token_free(ex->token);
    pthread_mutex_destroy(&ex->failure_lock);
    pthread_mutex_destroy(&ex->route_lock);
    explicit_bzero(&ex->conn, sizeof(ex->conn));
    free(ex);
}

static bool stopped(const cd_exporter_t *ex) { return *ex->stop || atomic_load(&ex->failed); }

/* Sleeps ms, waking early when asked to stop. */
static void nap(const cd_exporter_t *ex, int64_t ms)
{
    int64_t until = cd_mono_us() + ms * 1000;
    while (!stopped(ex)) {
        cd_metrics_heartbeat(ex->health); /* waiting on purpose is not being stuck */
        int64_t left = until - cd_mono_us();
        if (left <= 0)
            break;
        struct timespec ts = {0, (left > 50000 ? 50000 : left) * 1000};
        nanosleep(&ts, NULL);
    }
}

static void fatal(cd_exporter_t *ex, const cd_err_t *err)
{
    pthread_mutex_lock(&ex->failure_lock);
    if (!atomic_load(&ex->failed))
        ex->failure = *err;
    atomic_store(&ex->failed, true);
    pthread_mutex_unlock(&ex->failure_lock);
    cd_log_error("export", "exporter stopping: %s", err->msg);
    *ex->stop = 1;
}

/* A warning with the instrumentation key masked, wherever it appears. */
__attribute__((format(printf, 2, 3))) static void warn_masked(const cd_exporter_t *ex,
                                                              const char *fmt, ...)
{
    char line[CD_ERR_MAX + 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    cd_export_mask_ikey_in(line, ex->conn.ikey);
    cd_log_warn("export", "%s", line);
}

static bool ensure_room(worker_t *w, size_t n)
{
    if (n <= w->cap)
        return true;
    size_t *map = realloc(w->map, n * sizeof(*map));
    if (map)
        w->map = map;
    cd_export_outcome_t *o = realloc(w->outcomes, n * sizeof(*o));
    if (o) {
        memset(o + w->cap, 0, (n - w->cap) * sizeof(*o));
        w->outcomes = o;
    }
    cd_export_outcome_t *a = realloc(w->answer, n * sizeof(*a));
    if (a) {
        memset(a + w->cap, 0, (n - w->cap) * sizeof(*a));
        w->answer = a;
    }
    if (!map || !o || !a)
        return false;
    w->cap = n;
    return true;
}

static void set_outcome(cd_export_outcome_t *o, cd_export_fate_t fate, int status,
                        const char *msg)
{
    free(o->message);
    *o = (cd_export_outcome_t){.fate = fate, .status = status, .message = msg ? strdup(msg) : NULL};
}

/* ---- where requests go ---------------------------------------------------------------- */

/* The track URL to send to now: a redirect's while it may be kept, else the configured one. */
static void route_get(cd_exporter_t *ex, char *url, size_t size)
{
    pthread_mutex_lock(&ex->route_lock);
    if (ex->route[0] && cd_mono_us() >= ex->route_until_us) {
        cd_log_info("export", "the redirect to %s has expired: sending to %s again", ex->route,
                    ex->conn.track_url);
        ex->route[0] = '\0';
    }
    snprintf(url, size, "%s", ex->route[0] ? ex->route : ex->conn.track_url);
    pthread_mutex_unlock(&ex->route_lock);
}

/* What a request's trip says of the route: a redirect to keep, or one that no longer serves. */
static void route_learn(cd_exporter_t *ex, const char *sent_to, const cd_export_response_t *res,
                        bool answered)
{
    pthread_mutex_lock(&ex->route_lock);
    bool cached = ex->route[0] && strcmp(sent_to, ex->route) == 0;
    if (cached && (!answered || res->status >= 500 || res->status == 404)) {
        cd_log_warn("export", "the redirected endpoint %s fails (%s): sending to %s again",
                    ex->route, answered ? "an error status" : "no answer", ex->conn.track_url);
        ex->route[0] = '\0';
    } else if (answered && res->redirects > 0) {
        /* Without a max-age the SDKs keep a redirect 12 hours. */
        int64_t keep_s = res->redirect_max_age_s >= 0 ? res->redirect_max_age_s : 12 * 3600;
        if (strcmp(ex->route_seen, res->url) != 0)
            cd_log_info("export", "%s redirects to %s (%d redirect%s), kept for %lld s",
                        sent_to, res->url, res->redirects, res->redirects == 1 ? "" : "s",
                        (long long)keep_s);
        snprintf(ex->route_seen, sizeof(ex->route_seen), "%s", res->url);
        if (keep_s > 0) {
            snprintf(ex->route, sizeof(ex->route), "%s", res->url);
            ex->route_until_us = cd_mono_us() + keep_s * 1000000;
        }
    }
    pthread_mutex_unlock(&ex->route_lock);
}

/* ---- sending ---------------------------------------------------------------------------- */

/* The sender's tick while a request is in flight: the row's lease is renewed. */
static void keep_lease(void *arg)
{
    worker_t *w = arg;
    bool lost = false;
    cd_err_t err;
    if (cd_outbox_renew(w->outbox, &lost, &err) != CD_OK)
        cd_log_debug("export", "%s", err.msg); /* PostgreSQL away: the recording says so */
    else if (lost)
        cd_log_warn("export", "the lease of outbox row %lld was taken over mid-send",
                    (long long)cd_outbox_claimed_id(w->outbox));
}

/* Sends the request built in w->body (n items, w->map) and settles them in w->outcomes. */
static cd_status_t send_request(worker_t *w, size_t n)
{
    cd_exporter_t *ex = w->ex;
    cd_export_response_t res;
    cd_err_t err;
    char url[CD_EXPORT_URL_MAX + 1];

    keep_lease(w);
    route_get(ex, url, sizeof(url));
    int64_t t0 = cd_mono_us();
    cd_status_t st = cd_export_sender_post(w->sender, url, w->body.data, w->body.len,
                                           w->have_bearer ? w->bearer : NULL, &res, &err);
    if (st == CD_ERROR)
        return st; /* memory or zlib: the row is given back whole */
    char code[16] = "none";
    if (st == CD_OK)
        snprintf(code, sizeof(code), "%d", res.status);
    cd_histogram_observe(ex->h_request, code, (double)(cd_mono_us() - t0) / 1e6);
    route_learn(ex, url, &res, st == CD_OK);
    if (st == CD_RETRY) {
        atomic_fetch_add(&ex->stats.unanswered, 1);
        for (size_t k = 0; k < n; k++)
            set_outcome(&w->outcomes[w->map[k]], CD_EXPORT_RESEND, 0, err.msg);
        w->whole_failed = true;
        w->retry_after_ms = -1;
        snprintf(w->reason, sizeof(w->reason), "%s", err.msg);
        return CD_OK;
    }

    char fallback[CD_ERR_MAX];
    cd_export_answer_t answer;
    snprintf(fallback, sizeof(fallback), "HTTP %d from %.200s: %.200s", res.status, res.url,
             res.body);
    cd_export_mask_ikey_in(fallback, ex->conn.ikey);
    if (cd_export_outcomes_from_response(w->answer, n, res.status, res.body, res.body_len,
                                         fallback, &answer) < 0)
        return CD_ERROR;
    uint64_t accepted = 0;
    const char *said = NULL; /* the service's own words for the first item it sends back */
    for (size_t k = 0; k < n; k++) {
        cd_export_outcome_t *o = &w->outcomes[w->map[k]];
        free(o->message);
        *o = w->answer[k];
        w->answer[k].message = NULL;
        accepted += o->fate == CD_EXPORT_ACCEPTED;
        if (o->fate == CD_EXPORT_RESEND && !said)
            said = o->message ? o->message : fallback;
    }
    w->taken |= accepted > 0;
    atomic_fetch_add(&ex->stats.requests, 1);
    atomic_fetch_add(&ex->stats.sent, n);
    atomic_fetch_add(&ex->stats.accepted, accepted);
    atomic_fetch_add(&ex->stats.raw_bytes, w->body.len);
    atomic_fetch_add(&ex->stats.wire_bytes, res.wire_bytes);
    /* A request refused as a whole is told by its status; else by the first item's words. */
    if (cd_export_fate_of_response(res.status) == CD_EXPORT_RESEND)
        snprintf(w->reason, sizeof(w->reason), "%s", fallback);
    else if (said)
        snprintf(w->reason, sizeof(w->reason), "%s", said);
    if (answer.distrust)
        snprintf(w->reason, sizeof(w->reason), "HTTP %d from %.200s not taken as accepted: %s",
                 res.status, res.url, answer.distrust);

    cd_export_pause_t pause = answer.pause;
    if (pause == CD_EXPORT_BAD_CREDENTIALS && ex->token && !w->refused_token) {
        /* A token may expire early: the next request fetches it anew, and only a
         * fresh one refused is the configuration's fault. */
        cd_export_token_invalidate(ex->token);
        pause = CD_EXPORT_GO;
        w->refused_token = true;
    } else if (pause != CD_EXPORT_BAD_CREDENTIALS) {
        w->refused_token = false;
    }
    if (pause > w->pause) {
        w->pause = pause;
        snprintf(w->pause_reason, sizeof(w->pause_reason), "%s", w->reason);
    }
    /* Nothing taken and something to send again (down, distrusted, every item
     * refused for now), or a pause: the rest of the group waits. */
    if (pause != CD_EXPORT_GO || (accepted == 0 && said))
        w->whole_failed = true;
    if (res.retry_after_ms > w->retry_after_ms)
        w->retry_after_ms = res.retry_after_ms; /* a 206 may ask for a pause too */
    return CD_OK;
}
/*
 * Makes the group's events into requests and sends them.  Events the
 * service would refuse anyway (gone, too old, no envelope) are settled
 * without sending.  After a request not taken as a whole, one that paused
 * the resource, or a probe's one request, the rest of the group is left
 * for later.
 */
static cd_status_t send_group(worker_t *w, const cd_outbox_group_t *g)
{
    const cd_exporter_t *ex = w->ex;
    const cd_config_t *cfg = ex->cfg;
    int64_t oldest = cd_now_us() - CD_EXPORT_MAX_AGE_US;
    size_t n = 0;
    cd_status_t st = CD_OK;
    cd_err_t err;
    char msg[CD_ERR_MAX];

    if (!ensure_room(w, g->count))
        return CD_ERROR;
    w->whole_failed = false;
    w->taken = false;
    w->pause = CD_EXPORT_GO;
    w->retry_after_ms = -1;
    w->reason[0] = '\0';
    w->pause_reason[0] = '\0';
    cd_buf_reset(&w->body);
    for (size_t i = 0; i < g->count; i++) {
        const cd_export_item_t *it = &g->items[i];
        cd_export_outcome_t *o = &w->outcomes[i];
        if (w->whole_failed) {
            set_outcome(o, CD_EXPORT_RESEND, 0, w->reason);
            continue;
        }
        if (g->missing[i]) {
            set_outcome(o, CD_EXPORT_FINAL, 0, "the event is no longer stored");
            continue;
        }
        if (it->time_us < oldest) {
            char t[40];
            cd_time_format_utc(it->time_us, 3, t, sizeof(t));
            snprintf(msg, sizeof(msg),
                     "not sent: its time %s is more than 48 h ago, which the service refuses",
                     t);
            set_outcome(o, CD_EXPORT_FINAL, 0, msg);
            continue;
        }
        cd_buf_reset(&w->one);
        st = cd_export_envelope_write(&w->one, &ex->env, it, &err);
        if (st == CD_RETRY)
            return CD_ERROR;
        if (st == CD_ERROR) {
            set_outcome(o, CD_EXPORT_FINAL, 0, err.msg);
            st = CD_OK;
            continue;
        }
        cd_buf_putc(&w->one, '\n');
        if (n > 0 && w->body.len + w->one.len > cfg->export_batch_max_bytes) {
            if ((st = send_request(w, n)) != CD_OK)
                return st;
            cd_buf_reset(&w->body);
            n = 0;
            if (w->probe)
                w->whole_failed = true; /* one request tells whether the pause is over */
            if (w->whole_failed) {
                set_outcome(o, CD_EXPORT_RESEND, 0, w->reason[0] ? w->reason : "not sent yet");
                continue;
            }
        }
        set_outcome(o, CD_EXPORT_ACCEPTED, 0, NULL); /* until the answer says otherwise */
        cd_buf_append(&w->body, w->one.data, w->one.len);
        w->map[n++] = i;
        if (n == cfg->export_batch_max_items) {
            if ((st = send_request(w, n)) != CD_OK)
                return st;
            cd_buf_reset(&w->body);
            n = 0;
            if (w->probe)
                w->whole_failed = true;
        }
    }
    if (w->body.oom || w->one.oom)
        return CD_ERROR;
    if (n > 0)
        st = send_request(w, n);
    return st;
}

static void log_progress(cd_exporter_t *ex, int64_t *last_us, uint64_t *last_accepted)
{
    int64_t now = cd_mono_us();
    if (ex->progress_interval_ms <= 0 ||
        now - *last_us < (int64_t)ex->progress_interval_ms * 1000)
        return;
    cd_exporter_stats_t s;
    cd_exporter_get_stats(ex, &s);
    double secs = (double)(now - *last_us) / 1e6;
    cd_log_info("export",
                "progress: %llu items accepted (%.0f/s), %llu resent, %llu refused for good, "
                "%llu requests, %llu unanswered, %.0f bytes per item on the wire",
                (unsigned long long)s.accepted, (double)(s.accepted - *last_accepted) / secs,
                (unsigned long long)s.resent, (unsigned long long)s.failed,
                (unsigned long long)s.requests, (unsigned long long)s.unanswered,
                s.sent ? (double)s.wire_bytes / (double)s.sent : 0.0);
    *last_us = now;
    *last_accepted = s.accepted;
}

/* ---- the resource's pause --------------------------------------------------------------- */

/* This process's view of the pause: /readyz, the gauge, and a log line per change. */
static void saw_pause(cd_exporter_t *ex, cd_export_pause_t kind, const char *reason)
{
    cd_export_pause_t was = (cd_export_pause_t)atomic_exchange(&ex->paused, (int)kind);
    if (kind == was)
        return;
    if (kind == CD_EXPORT_GO) {
        cd_metrics_set_ready(ex->metrics, "export", true, NULL);
        return;
    }
    char why[CD_ERR_MAX + 64];
    snprintf(why, sizeof(why), "paused (%s): %s", cd_export_pause_name(kind), reason);
    cd_export_mask_ikey_in(why, ex->conn.ikey);
    cd_metrics_set_ready(ex->metrics, "export", false, why);
    warn_masked(ex, "export %s", why);
}

typedef enum { GATE_GO, GATE_WAIT, GATE_PG_DOWN } gate_t;

/* Whether this worker may send now: not paused, or the one probing the pause's end. */
static gate_t gate(worker_t *w, cd_status_t *pg, cd_err_t *err)
{
    cd_exporter_t *ex = w->ex;
    cd_outbox_pause_t p;
    bool won = false;

    w->probe = false;
    if ((*pg = cd_outbox_pause_get(w->outbox, ex->conn.ikey, &p, err)) != CD_OK)
        return GATE_PG_DOWN;
    if (p.kind == CD_EXPORT_GO) {
        saw_pause(ex, CD_EXPORT_GO, NULL);
        return GATE_GO;
    }
    saw_pause(ex, p.kind, p.reason);
    if (p.wait_ms > 0) {
        nap(ex, p.wait_ms < 1000 ? p.wait_ms : 1000);
        return GATE_WAIT;
    }
    /* Over: one sender, of all of them, tries whether it really is. */
    if (!p.probing && (*pg = cd_outbox_pause_probe(w->outbox, ex->conn.ikey,
                                                   ex->cfg->export_timeout_ms + 5000, &won,
                                                   err)) != CD_OK)
        return GATE_PG_DOWN;
    if (!won) {
        nap(ex, 200);
        return GATE_WAIT;
    }
    w->probe = true;
    return GATE_GO;
}

/* Ends the pause this sender probed. */
static cd_status_t end_pause(worker_t *w, cd_err_t *err)
{
    cd_outbox_pause_t was;
    cd_status_t st = cd_outbox_pause_clear(w->outbox, w->ex->conn.ikey, &was, err);
    if (st == CD_OK && was.kind != CD_EXPORT_GO) {
        cd_log_info("export", "export resumed: the pause (%s) lasted %.1f s",
                    cd_export_pause_name(was.kind), was.lasted_s);
        saw_pause(w->ex, CD_EXPORT_GO, NULL);
    }
    return st;
}

/* After the group's requests: pause every sender, or end the pause this probe tested. */
static cd_status_t settle_pause(worker_t *w, cd_err_t *err)
{
    cd_exporter_t *ex = w->ex;
    int64_t wait_ms;

    if (w->pause != CD_EXPORT_GO) {
        /* Throttled: the service's Retry-After, as said, or the floor; a wrong key
         * or token: the floor, doubled per answer in a row. */
        int64_t delay = w->pause == CD_EXPORT_THROTTLED && w->retry_after_ms >= 0
                            ? w->retry_after_ms
                            : ex->cfg->export_throttle_floor_ms;
        cd_status_t st = cd_outbox_pause_set(w->outbox, ex->conn.ikey, w->pause, w->pause_reason,
                                             delay, ex->cfg->export_backoff_max_ms, &wait_ms,
                                             err);
        if (st != CD_OK)
            return st;
        atomic_fetch_add(&ex->stats.pauses, 1);
        saw_pause(ex, w->pause, w->pause_reason);
        cd_log_info("export", "every sender waits %lld ms (%s)", (long long)wait_ms,
                    cd_export_pause_name(w->pause));
        return CD_OK;
    }
    /* Only an answer that took something ends the pause; an unanswered probe
     * says nothing, and the next sender probes once this one's turn runs out. */
    return w->probe && w->taken ? end_pause(w, err) : CD_OK;
}

/* ---- the worker ------------------------------------------------------------------------- */

/* A token for the group's requests, fetched before any row is held. */
static bool get_token(worker_t *w, cd_err_t *err)
{
    w->have_bearer = false;
    if (!w->ex->token)
        return true;
    if (cd_export_token_get(w->ex->token, w->bearer, sizeof(w->bearer), err) != CD_OK)
        return false;
    w->have_bearer = true;
    return true;
}

/* Worker 0 reads the backlog for /metrics now and then, not at every scrape. */
static void read_backlog(worker_t *w)
{
    cd_outbox_backlog_t b;
    cd_err_t err;
    if (w->index != 0 || !w->ex->metrics || cd_mono_us() - w->backlog_at_us < BACKLOG_EVERY_US)
        return;
    w->backlog_at_us = cd_mono_us();
    if (cd_outbox_backlog(w->outbox, &b, &err) != CD_OK)
        return; /* PostgreSQL away: the claim says so */
    atomic_store(&w->ex->backlog_events, b.events);
    atomic_store(&w->ex->backlog_age_s, b.oldest_age_s);
}

/*
 * Records the group's outcomes.  The service's answer is not thrown away
 * for want of PostgreSQL: the recording is tried again (the row stays
 * leased, renewed meanwhile) until it is done or the worker stops.
 */
static cd_status_t record(worker_t *w, const cd_outbox_group_t *g, int64_t delay)
{
    cd_exporter_t *ex = w->ex;
    cd_export_backoff_t backoff = {BACKOFF_MIN_MS, ex->cfg->export_backoff_max_ms, 0};
    bool lost = false, warned = false;
    cd_err_t err;

    for (;;) {
        cd_status_t st = cd_outbox_finish(w->outbox, w->outcomes, delay, w->reason, &lost, &err);
        if (st == CD_OK)
            break;
        if (st == CD_ERROR) {
            fatal(ex, &err);
            return st;
        }
        if (!warned)
            warn_masked(ex, "%s; recording the answer again (the events are not sent again)",
                        err.msg);
        warned = true;
        if (stopped(ex)) {
            warn_masked(ex, "stopping with outbox row %lld unrecorded: it goes out again once "
                            "its lease runs out", (long long)g->id);
            cd_outbox_abort(w->outbox);
            return CD_RETRY;
        }
        nap(ex, cd_export_backoff_next(&backoff, -1, (uint32_t)rand_r(&w->seed)));
        keep_lease(w);
    }
    if (warned)
        cd_log_info("export", "outbox row %lld recorded", (long long)g->id);
    if (lost) {
        warn_masked(ex, "outbox row %lld was taken over by another sender while this one sent "
                        "it: its events may reach the service twice", (long long)g->id);
        return CD_RETRY;
    }
    return CD_OK;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    cd_exporter_t *ex = w->ex;
    int64_t last_progress = cd_mono_us();
    uint64_t last_accepted = 0;
    bool pg_down = false, token_down = false;
    cd_err_t err;

    while (!stopped(ex)) {
        cd_metrics_heartbeat(ex->health);
        if (w->index == 0)
            log_progress(ex, &last_progress, &last_accepted);
        read_backlog(w);

        cd_outbox_group_t *g = NULL;
        cd_status_t st = CD_OK;
        gate_t gt = gate(w, &st, &err);
        if (gt == GATE_WAIT)
            continue;
        if (gt == GATE_GO && !get_token(w, &err)) {
            if (!token_down)
                warn_masked(ex, "export paused: no bearer token: %s", err.msg);
            token_down = true;
            cd_metrics_set_ready(ex->metrics, "export", false, err.msg);
            nap(ex, cd_export_backoff_next(&w->backoff, -1, (uint32_t)rand_r(&w->seed)));
            continue;
        }
        if (token_down) {
            cd_log_info("export", "a bearer token was had again");
            cd_metrics_set_ready(ex->metrics, "export", true, NULL);
        }
        token_down = false;
        if (gt == GATE_GO)
            st = cd_outbox_claim(w->outbox, &g, &err);
        if (st == CD_ERROR) {
            fatal(ex, &err);
            break;
        }
        if (st == CD_RETRY) {
            int64_t d = cd_export_backoff_next(&w->backoff, -1, (uint32_t)rand_r(&w->seed));
            if (!pg_down)
                warn_masked(ex, "%s; trying again in %lld ms", err.msg, (long long)d);
            pg_down = true;
            cd_metrics_set_ready(ex->health, "postgres", false, err.msg);
            nap(ex, d);
            continue;
        }
        if (pg_down)
            cd_log_info("export", "PostgreSQL is back, exporting again");
        pg_down = false;
        cd_metrics_set_ready(ex->health, "postgres", true, NULL);
        if (!g) {
            cd_outbox_backlog_t b = {.events = 1};
            if (w->probe) /* nothing to probe with: the pause has run its course */
                end_pause(w, &err);
            if (atomic_load(&ex->drain) && cd_outbox_backlog(w->outbox, &b, &err) == CD_OK &&
                b.events == 0)
                break;
            nap(ex, ex->cfg->export_poll_ms);
            continue;
        }
        if (g->taken_over_from[0])
            cd_log_warn("export", "outbox row %lld taken over from %s, whose lease ran out",
                        (long long)g->id, g->taken_over_from);

        if (send_group(w, g) != CD_OK) {
            cd_outbox_abort(w->outbox);
            cd_log_warn("export", "out of memory sending %zu events; trying again", g->count);
            nap(ex, BACKOFF_MIN_MS);
            continue;
        }
        if (settle_pause(w, &err) != CD_OK)
            warn_masked(ex, "%s (the pause is not shared with the other senders)", err.msg);
        uint64_t resent = 0, failed = 0;
        for (size_t i = 0; i < g->count; i++) {
            resent += w->outcomes[i].fate == CD_EXPORT_RESEND;
            failed += w->outcomes[i].fate == CD_EXPORT_FINAL;
        }
        size_t count = g->count;
        int64_t delay = 0;
        if (w->pause != CD_EXPORT_GO)
            delay = 0; /* the resource's pause holds every sender back, rows included */
        else if (resent)
            delay = cd_export_backoff_next(&w->backoff, w->retry_after_ms,
                                           (uint32_t)rand_r(&w->seed));
        else
            cd_export_backoff_reset(&w->backoff);
        st = record(w, g, delay);
        if (st == CD_ERROR)
            break;
        if (st != CD_OK)
            continue;
        atomic_fetch_add(&ex->stats.resent, resent);
        atomic_fetch_add(&ex->stats.failed, failed);
        if (failed)
            cd_log_warn("export", "%llu of %zu events refused for good (export_failures)",
                        (unsigned long long)failed, count);
        if (w->whole_failed && w->pause == CD_EXPORT_GO) {
            warn_masked(ex, "export paused: %s; trying again in %lld ms", w->reason,
                        (long long)delay);
            nap(ex, delay);
        }
    }
    return NULL;
}

cd_status_t cd_exporter_start(cd_exporter_t *ex, int workers, atomic_int *stop,
                              int progress_interval_ms, cd_err_t *err)
{
    char sender[128];

    if (workers < 1 || workers > MAX_WORKERS)
        return cd_err_set(err, CD_ERROR, "export workers: %d is not between 1 and %d", workers,
                          MAX_WORKERS);
    if (ex->workers)
        return cd_err_set(err, CD_ERROR, "exporter already started");
    if (!(ex->workers = calloc((size_t)workers, sizeof(*ex->workers))))
        return cd_err_set(err, CD_ERROR, "out of memory");
    ex->stop = stop;
    ex->progress_interval_ms = progress_interval_ms;
    cd_pg_conf_from_config(&ex->db, ex->cfg);
    for (int i = 0; i < workers; i++) {
        worker_t *w = &ex->workers[i];
        *w = (worker_t){.ex = ex,
                        .index = i,
                        .backoff = {BACKOFF_MIN_MS, ex->cfg->export_backoff_max_ms, 0},
                        .seed = (unsigned)(cd_now_us() ^ (i * 7919))};
        cd_buf_init(&w->body);
        cd_buf_init(&w->one);
        ex->nworkers = i + 1;
        /* Unique among the senders of every host: the lease's holder. */
        snprintf(sender, sizeof(sender), "%.64s:%ld:%d", ex->host[0] ? ex->host : "localhost",
                 (long)getpid(), i);
        w->outbox = cd_outbox_new(&ex->db, sender, ex->cfg->export_lease_ms);
        w->sender = cd_export_sender_new(ex->cfg->export_timeout_ms, ex->cfg->export_gzip_level,
                                         keep_lease, w);
        if (!w->outbox || !w->sender)
            return cd_err_set(err, CD_ERROR, "out of memory starting export worker %d", i);
    }
    for (int i = 0; i < workers; i++) {
        worker_t *w = &ex->workers[i];
        int rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc != 0) {
            *stop = 1;
            return cd_err_set(err, CD_ERROR, "starting export worker %d: %s", i, strerror(rc));
        }
        w->started = true;
    }
    cd_log_info("export", "exporting to %s (key %s) with %d worker%s", ex->conn.track_url,
                ex->masked, workers, workers == 1 ? "" : "s");
    return CD_OK;
}

int cd_exporter_workers(const cd_exporter_t *ex) { return ex->nworkers; }

void cd_exporter_drain(cd_exporter_t *ex) { atomic_store(&ex->drain, true); }

cd_status_t cd_exporter_wait(cd_exporter_t *ex, cd_err_t *err)
{
    for (int i = 0; i < ex->nworkers; i++) {
        if (ex->workers[i].started)
            pthread_join(ex->workers[i].thread, NULL);
        ex->workers[i].started = false;
    }
    if (atomic_load(&ex->failed)) {
        *err = ex->failure;
        return CD_ERROR;
    }
    return CD_OK;
}

void cd_exporter_get_stats(cd_exporter_t *ex, cd_exporter_stats_t *out)
{
    out->requests = atomic_load(&ex->stats.requests);
    out->unanswered = atomic_load(&ex->stats.unanswered);
    out->sent = atomic_load(&ex->stats.sent);
    out->accepted = atomic_load(&ex->stats.accepted);
    out->resent = atomic_load(&ex->stats.resent);
    out->failed = atomic_load(&ex->stats.failed);
    out->raw_bytes = atomic_load(&ex->stats.raw_bytes);
    out->wire_bytes = atomic_load(&ex->stats.wire_bytes);
}
