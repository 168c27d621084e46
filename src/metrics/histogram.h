/*
 * histogram.h -- what metrics.c needs of histogram.c: making, rendering and
 * freeing a histogram family (the public half is in convdiag/metrics.h).
 */
#ifndef CONVDIAG_METRICS_HISTOGRAM_H
#define CONVDIAG_METRICS_HISTOGRAM_H

#include <stddef.h>

#include "convdiag/buf.h"
#include "convdiag/metrics.h"

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
