/*
 * api.h -- everything but ingestion: GET/POST /control (the fault switches),
 * GET /api/stats, GET /api/conversations, GET /api/traces, DELETE /api/items
 * and the page at GET /.
 */
#ifndef EMU_API_H
#define EMU_API_H

#include <stddef.h>

#include "emulator.h"

void emu_api_control_get(emu_t *emu, emu_reply_t *reply);
void emu_api_control_set(emu_t *emu, const char *body, size_t len, emu_reply_t *reply);

void emu_api_stats(emu_t *emu, emu_reply_t *reply);
/* filter, offset and limit are the query arguments q, offset and limit (NULL when absent). */
void emu_api_conversations(emu_t *emu, const char *filter, const char *offset, const char *limit,
                           emu_reply_t *reply);
void emu_api_traces(emu_t *emu, const char *conversation, emu_reply_t *reply);
/* Forgets every item and resets the counters; the fault switches stay. */
void emu_api_delete_items(emu_t *emu, emu_reply_t *reply);

void emu_api_page(emu_reply_t *reply);

#endif
