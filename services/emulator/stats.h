/* stats.h -- traffic counters for GET /api/stats and the periodic log line. */
#ifndef EMU_STATS_H
#define EMU_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "convdiag/buf.h"

#define EMU_STATUS_MAX 600

typedef struct emu_stats {
    uint64_t requests;       /* to /v2/track and /v2.1/track */
    uint64_t bytes_received; /* their bodies, as sent */
    uint64_t items_received;
    uint64_t items_accepted;
    uint64_t duplicates; /* accepted items whose envelope text was accepted before */
    uint64_t responses[EMU_STATUS_MAX]; /* by HTTP status */
    uint64_t refused[EMU_STATUS_MAX];   /* items, by their own status */
    bool full_warned; /* the log has said the store is full */
} emu_stats_t;

void emu_stats_reset(emu_stats_t *st);

/* Counts one track request's outcome. */
void emu_stats_count_status(uint64_t counts[EMU_STATUS_MAX], int status);

/* The counters as JSON; stored, max_items and conversations come from the store. */
void emu_stats_to_json(const emu_stats_t *st, size_t stored, size_t max_items,
                       size_t conversations, cd_buf_t *out);

/* Items refused in all, whatever their status. */
uint64_t emu_stats_refused_total(const emu_stats_t *st);

#endif
