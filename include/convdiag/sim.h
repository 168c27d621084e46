/*
 * sim.h -- deterministic generator of realistic conversations.
 *
 * Walks flows through the scenario catalogue (bot-handled, escalated, routed,
 * accepted, rejected then accepted, acceptance timed out, abandoned,
 * force-closed, ...) over a channel mix, and yields their events as JSON
 * objects of the event contract v1, keyed by liveWorkItemId.  The same seed,
 * start time and options always yield the same messages, byte for byte.
 *
 * What real producers do to a stream can be mixed in, each in a configurable
 * proportion: events out of order within their conversation, duplicates,
 * events arriving late (after later conversations), scenario names sent under
 * their aliases, and malformed messages in place of events.  All of it is off
 * by default, and then the output is exactly the orderly stream.
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

    /*
     * Disorder, each a probability from 0 to 1 applied to every planned event
     * (values outside that range are clamped).  Timestamps are never changed:
     * only the order and the form in which events reach the topic.
     */
    double p_reorder;   /* held back behind the next 1 to 3 events of its conversation,
                         * so that an end may arrive before its start */
    double p_duplicate; /* sent again, same eventId and same bytes, within the next few
                         * messages (malformed messages are not repeated) */
    double p_late;      /* held back until 1 to 3 later conversations have been sent */
    double p_alias;     /* scenario sent under one of its aliases (events whose scenario has
                         * none keep the canonical name) */
    double p_malformed; /* replaced by a message the validator must reject (see
                         * cd_sim_malformed_t); the event it replaces is never sent valid */
} cd_sim_conf_t;

/* Fills conf with defaults: seed 1, start now, 100 conversations, no event
 * limit, 5 conversations a second, no disorder. */
void cd_sim_conf_init(cd_sim_conf_t *conf);

/* Sets a realistic mix of disorder: 5% reordered, 2% duplicated, 1% late,
 * 10% aliased, 0.5% malformed. */
void cd_sim_conf_disorder(cd_sim_conf_t *conf);

/* What happened to a message on its way, as bits of cd_sim_event_t.flags. */
enum {
    CD_SIM_REORDERED = 1u << 0, /* held back within its conversation: sent after an event
                                 * planned after it */
    CD_SIM_DUPLICATE = 1u << 1, /* a repeat of an earlier message: same eventId, same bytes;
                                 * it carries the flags of that message too */
    CD_SIM_LATE = 1u << 2,      /* sent after later conversations */
    CD_SIM_ALIAS = 1u << 3,     /* scenario under an alias, not its canonical name */
    CD_SIM_MALFORMED = 1u << 4, /* not a valid event; cd_sim_event_t.malformed says how */
};

/* How a malformed message is broken.  None contains a newline byte. */
typedef enum cd_sim_malformed {
    CD_SIM_WELL_FORMED = 0,
    CD_SIM_BAD_TRUNCATED,     /* the JSON text cut short */
    CD_SIM_BAD_TYPE,          /* a field of the wrong JSON type */
    CD_SIM_BAD_MISSING,       /* a required field left out */
    CD_SIM_BAD_STATUS,        /* status "Done" */
    CD_SIM_BAD_UTF8,          /* invalid UTF-8 bytes in the scenario name */
    CD_SIM_BAD_UNKNOWN_FIELD, /* a field the contract does not have */
    CD_SIM_BAD_KINDS          /* count of the kinds above, CD_SIM_WELL_FORMED included */
} cd_sim_malformed_t;

typedef struct cd_sim cd_sim_t;

/* One message.  Every pointer stays valid until the next cd_sim_next or cd_sim_free. */
typedef struct cd_sim_event {
    const char *key;  /* liveWorkItemId, NUL-terminated */
    const char *json; /* one event, NUL-terminated, no newline; when malformed, the bytes
                       * as sent, which may hold invalid UTF-8 but never a NUL or newline */
    size_t json_len;
    uint64_t conversation; /* 0-based index of the conversation it belongs to */
    const char *event_id;  /* eventId of the planned event behind the message; for a
                            * malformed one, that of the event it replaced */
    unsigned flags;        /* CD_SIM_* bits; 0 for an event sent as planned */
    cd_sim_malformed_t malformed; /* CD_SIM_WELL_FORMED unless flags has CD_SIM_MALFORMED */
} cd_sim_event_t;

/* Returns NULL only on allocation failure. The caller frees with cd_sim_free. */
cd_sim_t *cd_sim_new(const cd_sim_conf_t *conf);
void cd_sim_free(cd_sim_t *sim);

/* Next event: returns 1 and fills *out (valid until the next call or cd_sim_free),
 * or 0 when the configured limits are reached. */
int cd_sim_next(cd_sim_t *sim, cd_sim_event_t *out);

/* Totals so far.  Events emitted counts messages, duplicates and malformed ones
 * included; conf.max_events limits the same count.  A run limited by
 * conversations ends once the late events of its last conversations are out. */
uint64_t cd_sim_events_emitted(const cd_sim_t *sim);
uint64_t cd_sim_conversations_started(const cd_sim_t *sim);

/* Messages emitted so far that carry `flag`, one CD_SIM_* bit (0 for any other value). */
uint64_t cd_sim_messages_flagged(const cd_sim_t *sim, unsigned flag);

#endif
