/*
 * event.h -- the input event, contract version 1: parsing and validation.
 *
 * cd_event_parse() takes a Kafka payload as received and either fills a
 * cd_event_t or says, in one sentence naming the field, the value and the
 * rule, why the payload is not a valid event.  That sentence is what lands in
 * dead_letters.reason.
 */
#ifndef CONVDIAG_EVENT_H
#define CONVDIAG_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "convdiag/common.h"

struct cJSON;

typedef enum cd_event_status {
    CD_EVENT_STARTED = 0,
    CD_EVENT_COMPLETED,
    CD_EVENT_FAILED,
} cd_event_status_t;

const char *cd_event_status_name(cd_event_status_t status);

typedef struct cd_event_limits {
    size_t max_bytes;      /* whole message */
    size_t max_id_chars;   /* eventId, liveWorkItemId, sessionId, transactionId (code points) */
    size_t max_text_chars; /* failureReason, attribute string values, tracestate */
    size_t max_attributes; /* entries in attributes */
    bool strict_scenarios; /* reject names the catalogue does not know */
} cd_event_limits_t;

/* Defaults: 64 KiB, 128, 8192, 64, not strict. */
void cd_event_limits_init(cd_event_limits_t *limits);

/*
 * A parsed event.  String members point into the parsed JSON tree, which the
 * event owns; they stay valid until cd_event_fini().  Optional members are
 * NULL (or -1 for duration_ms) when absent.
 */
typedef struct cd_event {
    const char *event_id;
    const char *timestamp; /* as received */
    int64_t ts_us;         /* the same instant, µs since the epoch, UTC */
    const char *organization_id;
    const char *live_work_item_id;
    const char *scenario_received; /* the name as sent */
    const char *scenario;          /* canonical name; the received one when unknown */
    const char *category;          /* catalogue category, or "Other" */
    bool scenario_known;
    cd_event_status_t status;
    const char *channel_type;
    const char *participant_type;
    const char *user_id;
    const char *session_id;
    const char *transaction_id;
    const char *traceparent;
    const char *tracestate;
    int64_t duration_ms;
    const char *failure_reason;
    char *attributes_json; /* owned: the attributes object re-serialized, or NULL */

    struct cJSON *root; /* owned */
} cd_event_t;

/*
 * Parses and validates buf[0..len) (not NUL-terminated).  On CD_OK the event
 * must be released with cd_event_fini(); on CD_ERROR nothing needs releasing
 * and err holds the reason.
 */
cd_status_t cd_event_parse(cd_event_t *ev, const char *buf, size_t len,
                           const cd_event_limits_t *limits, cd_err_t *err);

void cd_event_fini(cd_event_t *ev);

/*
 * Points every string of ev at a copy that copy(arg, s, len) makes (a
 * batch's blocks, say) instead of into the parsed tree, and hands the tree
 * over: ev no longer owns it, the caller frees it (or the arena it is in).
 * *tree gets it.  False when a copy cannot be made; ev is then as before.
 */
typedef const char *(*cd_event_copy_fn)(void *arg, const char *s, size_t len);
bool cd_event_detach(cd_event_t *ev, cd_event_copy_fn copy, void *arg, struct cJSON **tree);

#endif
