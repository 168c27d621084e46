/* stats.c -- traffic counters; see stats.h. */
#include "stats.h"

#include <inttypes.h>
#include <string.h>

void emu_stats_reset(emu_stats_t *st) { memset(st, 0, sizeof(*st)); }

void emu_stats_count_status(uint64_t counts[EMU_STATUS_MAX], int status)
{
    if (status >= 0 && status < EMU_STATUS_MAX)
        counts[status]++;
}

/* {"200":5,"206":1}: only the statuses seen. */
static void put_by_status(cd_buf_t *out, const uint64_t counts[EMU_STATUS_MAX])
{
    const char *sep = "";
    cd_buf_putc(out, '{');
    for (int s = 0; s < EMU_STATUS_MAX; s++) {
        if (!counts[s])
            continue;
        cd_buf_printf(out, "%s\"%d\":%" PRIu64, sep, s, counts[s]);
        sep = ",";
    }
    cd_buf_putc(out, '}');
}

void emu_stats_to_json(const emu_stats_t *st, size_t stored, size_t max_items,
                       size_t conversations, cd_buf_t *out)
{
    cd_buf_printf(out,
                  "{\"requests\":%" PRIu64 ",\"bytesReceived\":%" PRIu64
                  ",\"itemsReceived\":%" PRIu64 ",\"itemsAccepted\":%" PRIu64
                  ",\"itemsRefused\":%" PRIu64 ",\"duplicates\":%" PRIu64 ",\"responses\":",
                  st->requests, st->bytes_received, st->items_received, st->items_accepted,
                  emu_stats_refused_total(st), st->duplicates);
    put_by_status(out, st->responses);
    cd_buf_puts(out, ",\"refusedByStatus\":");
    put_by_status(out, st->refused);
    cd_buf_printf(out, ",\"stored\":%zu,\"maxItems\":%zu,\"storeFull\":%s,\"conversations\":%zu}",
                  stored, max_items, stored >= max_items ? "true" : "false", conversations);
}

uint64_t emu_stats_refused_total(const emu_stats_t *st)
{
    uint64_t n = 0;
    for (int s = 0; s < EMU_STATUS_MAX; s++)
        n += st->refused[s];
    return n;
}
