/*
 * sim.h -- deterministic generator of realistic conversations.
 *
 * Walks flows through the scenario catalogue (bot-handled, escalated, routed,
 * accepted, rejected then accepted, acceptance timed out, abandoned,
 * force-closed, ...) over a channel mix, and yields their events as JSON
 * objects of the event contract v1, keyed by liveWorkItemId.  The same seed
 * and start time always yield the same events, byte for byte.
 */
#ifndef CONVDIAG_SIM_H
#define CONVDIAG_SIM_H

#include <stdint.h>
#include <stddef.h>

typedef struct cd_sim_conf {
    uint64_t seed;
    int64_t start_us;       /* timestamp of the first conversation, µs since epoch */
    uint64_t conversations; /* stop after this many conversations (0: no limit) */
    uint64_t max_events;    /* stop after this many events (0: no limit) */
    double conv_per_sec;    /* simulated arrival rate of conversations (event time, not wall time) */
} cd_sim_conf_t;

/* Fills conf with defaults: seed 1, start now, 100 conversations, no event limit. */
void cd_sim_conf_init(cd_sim_conf_t *conf);

typedef struct cd_sim cd_sim_t;

typedef struct cd_sim_event {
    const char *key;  /* liveWorkItemId, NUL-terminated */
    const char *json; /* one event, NUL-terminated, no newline */
    size_t json_len;
    uint64_t conversation; /* 0-based index of the conversation it belongs to */
} cd_sim_event_t;

/* Returns NULL only on allocation failure. The caller frees with cd_sim_free. */
cd_sim_t *cd_sim_new(const cd_sim_conf_t *conf);
void cd_sim_free(cd_sim_t *sim);

/* Next event: returns 1 and fills *out (valid until the next call or cd_sim_free),
 * or 0 when the configured limits are reached. */
int cd_sim_next(cd_sim_t *sim, cd_sim_event_t *out);

/* Totals so far. */
uint64_t cd_sim_events_emitted(const cd_sim_t *sim);
uint64_t cd_sim_conversations_started(const cd_sim_t *sim);

#endif
