/* histogram.c -- histograms with one label, lock-free to observe; see metrics.h. */
#include "histogram.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convdiag/json.h"

typedef struct series {
    char value[CD_HISTOGRAM_VALUE_MAX + 1];
    _Atomic uint64_t buckets[CD_HISTOGRAM_MAX_BOUNDS + 1]; /* per bucket; the last is +Inf */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_bits; /* a double by its bits */
} series_t;

struct cd_histogram {
    char *name, *help, *label;
    double bounds[CD_HISTOGRAM_MAX_BOUNDS];
    size_t nbounds;
    pthread_mutex_t lock; /* adding a series; a series once published never moves */
    series_t series[CD_HISTOGRAM_MAX_SERIES];
    _Atomic size_t nseries;
};

cd_histogram_t *cd_histogram_new(const char *name, const char *help, const char *label,
                                 const double *bounds, size_t nbounds)
{
    if (nbounds == 0 || nbounds > CD_HISTOGRAM_MAX_BOUNDS)
        return NULL;
    for (size_t i = 1; i < nbounds; i++)
        if (!(bounds[i - 1] < bounds[i]))
            return NULL;
    cd_histogram_t *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    if (!(h->name = strdup(name)) || !(h->help = strdup(help)) || !(h->label = strdup(label))) {
        cd_histogram_free(h);
        return NULL;
    }
    memcpy(h->bounds, bounds, nbounds * sizeof(*bounds));
    h->nbounds = nbounds;
    pthread_mutex_init(&h->lock, NULL);
    return h;
}

void cd_histogram_free(cd_histogram_t *h)
{
    if (!h)
        return;
    if (h->label)
        pthread_mutex_destroy(&h->lock);
    free(h->name);
    free(h->help);
    free(h->label);
    free(h);
}

const char *cd_histogram_name(const cd_histogram_t *h) { return h->name; }

const char *cd_histogram_help(const cd_histogram_t *h) { return h->help; }

static series_t *find(cd_histogram_t *h, const char *value, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(h->series[i].value, value) == 0)
            return &h->series[i];
    return NULL;
}

/* The series of value, made on first use; once full, the values that come
 * later share the series "other". */
static series_t *series_of(cd_histogram_t *h, const char *label_value)
{
    char value[CD_HISTOGRAM_VALUE_MAX + 1];
    snprintf(value, sizeof(value), "%s", label_value); /* cut as it is kept */
    series_t *s = find(h, value, atomic_load_explicit(&h->nseries, memory_order_acquire));
    if (s)
        return s;
    pthread_mutex_lock(&h->lock);
    size_t n = atomic_load_explicit(&h->nseries, memory_order_relaxed);
    if (!(s = find(h, value, n)) && n >= CD_HISTOGRAM_MAX_SERIES - 1) {
        /* the last series is kept for all the values past the others */
        snprintf(value, sizeof(value), "other");
        s = find(h, value, n);
    }
    if (!s) { /* n < CD_HISTOGRAM_MAX_SERIES: "other" came last */
        s = &h->series[n];
        memcpy(s->value, value, strlen(value) + 1);
        atomic_store_explicit(&h->nseries, n + 1, memory_order_release);
    }
    pthread_mutex_unlock(&h->lock);
    return s;
}

void cd_histogram_observe(cd_histogram_t *h, const char *label_value, double v)
{
    if (!h)
        return;
    series_t *s = series_of(h, label_value);
    if (!s)
        return;
    size_t b = 0;
    while (b < h->nbounds && v > h->bounds[b])
        b++;
    atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
    cd_metric_atomic_add(&s->sum_bits, v);
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
}

/* A label value as the text format quotes it. */
static void put_label(cd_buf_t *out, const char *label, const char *value)
{
    cd_buf_printf(out, "%s=\"", label);
    for (const char *p = value; *p; p++) {
        if (*p == '\\' || *p == '"')
            cd_buf_putc(out, '\\');
        if (*p == '\n')
            cd_buf_puts(out, "\\n");
        else
            cd_buf_putc(out, *p);
    }
    cd_buf_putc(out, '"');
}

void cd_histogram_render(const cd_histogram_t *h, cd_buf_t *out)
{
    char num[32];
    size_t n = atomic_load_explicit(&h->nseries, memory_order_acquire);

    for (size_t i = 0; i < n; i++) {
        const series_t *s = &h->series[i];
        uint64_t cumulative = 0;
        for (size_t b = 0; b <= h->nbounds; b++) {
            cumulative += atomic_load_explicit(&s->buckets[b], memory_order_relaxed);
            cd_buf_printf(out, "%s_bucket{", h->name);
            put_label(out, h->label, s->value);
            cd_buf_printf(out, ",le=\"%s\"} %llu\n",
                          b < h->nbounds ? cd_json_number_text(h->bounds[b], num, sizeof(num))
                                         : "+Inf",
                          (unsigned long long)cumulative);
        }
        cd_buf_printf(out, "%s_sum{", h->name);
        put_label(out, h->label, s->value);
        cd_buf_printf(out, "} %s\n%s_count{", cd_json_number_text(cd_metric_double(atomic_load_explicit(
                                                                   &s->sum_bits,
                                                                   memory_order_relaxed)),
                                                               num, sizeof(num)),
                      h->name);
        put_label(out, h->label, s->value);
        /* The count of the +Inf bucket, so that a scrape between the two adds agrees. */
        cd_buf_printf(out, "} %llu\n", (unsigned long long)cumulative);
    }
}
