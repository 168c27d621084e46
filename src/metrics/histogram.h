/*
 * histogram.h -- what metrics.c needs of histogram.c: making, rendering and
 * freeing a histogram family (the public half is in convdiag/metrics.h).
 */
#ifndef CONVDIAG_METRICS_HISTOGRAM_H
#define CONVDIAG_METRICS_HISTOGRAM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "convdiag/buf.h"
#include "convdiag/metrics.h"

/* A double kept in an atomic word by its bits (counters, gauges, sums). */
static inline uint64_t cd_metric_bits(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof(b));
    return b;
}

static inline double cd_metric_double(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof(v));
    return v;
}

/* Adds n to the double held in *word, without a lock. */
static inline void cd_metric_atomic_add(_Atomic uint64_t *word, double n)
{
    uint64_t old = atomic_load_explicit(word, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(word, &old,
                                                  cd_metric_bits(cd_metric_double(old) + n),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

/* NULL when out of memory or nbounds is 0 or too many; name, help, label and
 * bounds are copied (bounds must ascend). */
cd_histogram_t *cd_histogram_new(const char *name, const char *help, const char *label,
                                 const double *bounds, size_t nbounds);
const char *cd_histogram_name(const cd_histogram_t *h);
const char *cd_histogram_help(const cd_histogram_t *h);
/* The samples (_bucket, _sum, _count of every series); the HELP and TYPE
 * lines are the registry's. */
void cd_histogram_render(const cd_histogram_t *h, cd_buf_t *out);
void cd_histogram_free(cd_histogram_t *h);

#endif
