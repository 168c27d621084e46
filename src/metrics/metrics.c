/* metrics.c -- counters, gauges and health for the probes; see metrics.h. */
#include "convdiag/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convdiag/json.h"
#include "histogram.h"

#define MAX_DEPENDENCIES 8

struct cd_metric {
    cd_metric_type_t type;
    char *name, *help;
    _Atomic uint64_t value; /* a double by its bits: one word, written without a lock */
};

typedef struct collector {
    cd_metrics_collect_fn fn;
    void *arg;
} collector_t;

typedef struct dependency {
    char name[32];
    bool up;
    char why[256];
} dependency_t;

struct cd_metrics {
    pthread_mutex_t lock; /* the lists and the dependencies, not the values */
    cd_metric_t **metrics;
    size_t count, cap;
    collector_t *collectors;
    size_t ncollectors;
    cd_histogram_t **histograms;
    size_t nhistograms;
    dependency_t deps[MAX_DEPENDENCIES];
    size_t ndeps;
    int live_timeout_ms;
    _Atomic int64_t heartbeat_us; /* monotonic */
};

cd_metrics_t *cd_metrics_new(int live_timeout_ms)
{
    cd_metrics_t *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    m->live_timeout_ms = live_timeout_ms;
    /* Starting counts as a beat: alive until the loop has had time to run. */
    atomic_store(&m->heartbeat_us, cd_mono_us());
    return m;
}

void cd_metrics_free(cd_metrics_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->count; i++) {
        free(m->metrics[i]->name);
        free(m->metrics[i]->help);
        free(m->metrics[i]);
    }
    free(m->metrics);
    free(m->collectors);
    for (size_t i = 0; i < m->nhistograms; i++)
        cd_histogram_free(m->histograms[i]);
    free(m->histograms);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static bool valid_name(const char *name)
{
    if (!name[0] || (name[0] >= '0' && name[0] <= '9'))
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == ':'))
            return false;
    return true;
}

/* With m's lock held: whether a metric or a histogram already has the name. */
static bool name_taken(const cd_metrics_t *m, const char *name)
{
    for (size_t i = 0; i < m->count; i++)
        if (strcmp(m->metrics[i]->name, name) == 0)
            return true;
    for (size_t i = 0; i < m->nhistograms; i++)
        if (strcmp(cd_histogram_name(m->histograms[i]), name) == 0)
            return true;
    return false;
}

cd_metric_t *cd_metrics_add(cd_metrics_t *m, cd_metric_type_t type, const char *name,
                            const char *help)
{
    cd_metric_t *metric = NULL;

    if (!m || !valid_name(name))
        return NULL;
    pthread_mutex_lock(&m->lock);
    if (name_taken(m, name))
        goto out;
    if (m->count == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 32;
        cd_metric_t **grown = realloc(m->metrics, cap * sizeof(*grown));
        if (!grown)
            goto out;
        m->metrics = grown;
        m->cap = cap;
    }
    if (!(metric = calloc(1, sizeof(*metric))) || !(metric->name = strdup(name)) ||
        !(metric->help = strdup(help))) {
        if (metric) {
            free(metric->name);
            free(metric);
        }
        metric = NULL;
        goto out;
    }
    metric->type = type;
    m->metrics[m->count++] = metric;
out:
    pthread_mutex_unlock(&m->lock);
    return metric;
}

cd_histogram_t *cd_metrics_add_histogram(cd_metrics_t *m, const char *name, const char *help,
                                         const char *label, const double *bounds, size_t nbounds)
{
    cd_histogram_t *h = NULL;

    if (!m || !valid_name(name) || !valid_name(label))
        return NULL;
    pthread_mutex_lock(&m->lock);
    if (name_taken(m, name))
        goto out;
    cd_histogram_t **grown = realloc(m->histograms, (m->nhistograms + 1) * sizeof(*grown));
    if (!grown)
        goto out;
    m->histograms = grown;
    if ((h = cd_histogram_new(name, help, label, bounds, nbounds)))
        m->histograms[m->nhistograms++] = h;
out:
    pthread_mutex_unlock(&m->lock);
    return h;
}

void cd_metric_add(cd_metric_t *c, double n)
{
    if (!c)
        return;
    cd_metric_atomic_add(&c->value, n);
}

void cd_metric_set(cd_metric_t *g, double v)
{
    if (g)
        atomic_store_explicit(&g->value, cd_metric_bits(v), memory_order_relaxed);
}

bool cd_metrics_add_collector(cd_metrics_t *m, cd_metrics_collect_fn fn, void *arg)
{
    bool ok = false;

    if (!m)
        return false;
    pthread_mutex_lock(&m->lock);
    collector_t *grown = realloc(m->collectors, (m->ncollectors + 1) * sizeof(*grown));
    if (grown) {
        m->collectors = grown;
        m->collectors[m->ncollectors++] = (collector_t){fn, arg};
        ok = true;
    }
    pthread_mutex_unlock(&m->lock);
    return ok;
}

void cd_metrics_remove_collector(cd_metrics_t *m, cd_metrics_collect_fn fn, void *arg)
{
    if (!m)
        return;
    /* Rendering calls the collectors under the lock: taking it waits for them. */
    pthread_mutex_lock(&m->lock);
    size_t kept = 0;
    for (size_t i = 0; i < m->ncollectors; i++)
        if (m->collectors[i].fn != fn || m->collectors[i].arg != arg)
            m->collectors[kept++] = m->collectors[i];
    m->ncollectors = kept;
    pthread_mutex_unlock(&m->lock);
}

/* HELP text escaped as the format asks: backslash and newline. */
static void put_help(cd_buf_t *out, const char *help)
{
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            cd_buf_puts(out, "\\\\");
        else if (*p == '\n')
            cd_buf_puts(out, "\\n");
        else
            cd_buf_putc(out, *p);
    }
}

void cd_metrics_render(cd_metrics_t *m, cd_buf_t *out)
{
    char num[32];

    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->ncollectors; i++)
        m->collectors[i].fn(m->collectors[i].arg);
    for (size_t i = 0; i < m->count; i++) {
        const cd_metric_t *metric = m->metrics[i];
        double v = cd_metric_double(atomic_load_explicit(&metric->value, memory_order_relaxed));
        cd_buf_printf(out, "# HELP %s ", metric->name);
        put_help(out, metric->help);
        cd_buf_printf(out, "\n# TYPE %s %s\n%s %s\n", metric->name,
                      metric->type == CD_METRIC_COUNTER ? "counter" : "gauge", metric->name,
                      cd_json_number_text(v, num, sizeof(num)));
    }
    for (size_t i = 0; i < m->nhistograms; i++) {
        const cd_histogram_t *h = m->histograms[i];
        cd_buf_printf(out, "# HELP %s ", cd_histogram_name(h));
        put_help(out, cd_histogram_help(h));
        cd_buf_printf(out, "\n# TYPE %s histogram\n", cd_histogram_name(h));
        cd_histogram_render(h, out);
    }
    pthread_mutex_unlock(&m->lock);
}

void cd_metrics_heartbeat(cd_metrics_t *m)
{
    if (m)
        atomic_store(&m->heartbeat_us, cd_mono_us());
}

void cd_metrics_set_ready(cd_metrics_t *m, const char *dependency, bool up, const char *why)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    dependency_t *d = NULL;
    for (size_t i = 0; i < m->ndeps && !d; i++)
        if (strcmp(m->deps[i].name, dependency) == 0)
            d = &m->deps[i];
    if (!d && m->ndeps < MAX_DEPENDENCIES) {
        d = &m->deps[m->ndeps++];
        snprintf(d->name, sizeof(d->name), "%s", dependency);
    }
    if (d) {
        d->up = up;
        snprintf(d->why, sizeof(d->why), "%s", up || !why ? "" : why);
    }
    pthread_mutex_unlock(&m->lock);
}

bool cd_metrics_alive(cd_metrics_t *m, cd_buf_t *out)
{
    int64_t ago_ms = (cd_mono_us() - atomic_load(&m->heartbeat_us)) / 1000;
    bool alive = ago_ms <= m->live_timeout_ms;

    cd_buf_printf(out,
                  "{\"status\": \"%s\", \"last_heartbeat_ms_ago\": %lld, \"timeout_ms\": %d}\n",
                  alive ? "alive" : "stalled", (long long)ago_ms, m->live_timeout_ms);
    return alive;
}

bool cd_metrics_ready(cd_metrics_t *m, cd_buf_t *out)
{
    bool ready;

    pthread_mutex_lock(&m->lock);
    ready = m->ndeps > 0;
    for (size_t i = 0; i < m->ndeps; i++)
        ready = ready && m->deps[i].up;
    cd_buf_printf(out, "{\"status\": \"%s\", \"dependencies\": {",
                  ready ? "ready" : m->ndeps ? "not ready" : "starting");
    for (size_t i = 0; i < m->ndeps; i++) {
        const dependency_t *d = &m->deps[i];
        cd_buf_puts(out, i ? ", " : "");
        cd_json_put_string(out, d->name);
        cd_buf_printf(out, ": {\"up\": %s", d->up ? "true" : "false");
        if (!d->up) {
            cd_buf_puts(out, ", \"why\": ");
            cd_json_put_string(out, d->why);
        }
        cd_buf_putc(out, '}');
    }
    cd_buf_puts(out, "}}\n");
    pthread_mutex_unlock(&m->lock);
    return ready;
}
