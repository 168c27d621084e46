/*
 * export_policy.h -- what the exporter does with each answer of the
 * ingestion service: the brief's response policy, as pure functions.
 *
 *   200, 206   every item accepted but those the errors name, if the body is
 *              the service's answer and its counts agree; else none is
 *              per item: 408, 429, 439, 500, 502, 503, 504 are sent again,
 *              and so are 401 and 403 (the token, not the item, was refused);
 *              206 (sampled) is accepted; any other code is final
 *   400, 402   final for every item not named otherwise; the reason is kept,
 *              except for a wrong key or a token where none is taken: a
 *              configuration error, and every item waits for its fix
 *   408, 429, 439, 5xx, no answer at all
 *              sent again after an exponential back-off with jitter, or
 *              after Retry-After (seconds or an HTTP-date) if that is later
 *   401, 403   sent again (the token is fetched anew first)
 *   other      sent again, backing off: a misconfigured endpoint must not
 *              lose data; items past the service's 48 h window end as final
 * Items older than the service accepts are final before they are sent.
 */
#ifndef CONVDIAG_EXPORT_POLICY_H
#define CONVDIAG_EXPORT_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "convdiag/common.h"

/* The service refuses items whose time is older than this: 48 hours. */
#define CD_EXPORT_MAX_AGE_US (48LL * 3600 * 1000000)

typedef enum cd_export_fate {
    CD_EXPORT_ACCEPTED = 0, /* taken (or sampled away) by the service: done */
    CD_EXPORT_RESEND,       /* to be sent again later */
    CD_EXPORT_FINAL,        /* refused for good: recorded, never sent again */
} cd_export_fate_t;

/* The fate a whole response's status gives its items when it names none. */
cd_export_fate_t cd_export_fate_of_response(int http_status);

/* The fate of an item the response lists with its own status code. */
cd_export_fate_t cd_export_fate_of_item(int item_status);

/* One item's outcome; message is owned (NULL when the service gave none). */
typedef struct cd_export_outcome {
    cd_export_fate_t fate;
    int status;    /* the item's own code, else the response's; 0: no response */
    char *message;
} cd_export_outcome_t;

/* What an answer asks of every sender of the resource, not only of its items. */
typedef enum cd_export_pause {
    CD_EXPORT_GO = 0,          /* carry on */
    CD_EXPORT_THROTTLED,       /* 429/439, for the request or an item: the resource's rate or
                                * quota is spent; every sender waits out the Retry-After */
    CD_EXPORT_BAD_CREDENTIALS, /* 401/403, for the request or an item: the token (or its
                                * absence) is refused */
    CD_EXPORT_BAD_KEY,         /* "Invalid instrumentation key", or "Authentication not
                                * supported" (a token sent where the service takes none) */
} cd_export_pause_t;

/* Names a pause for logs and /metrics: "throttled", "credentials", "key"; "" for GO. */
const char *cd_export_pause_name(cd_export_pause_t p);

/* What cd_export_outcomes_from_response made of an answer as a whole. */
typedef struct cd_export_answer {
    int applied;             /* errors entries applied to an item */
    cd_export_pause_t pause;
    /* Why a 200 or 206 was not taken at its word (static text), NULL when it was:
     * a body that is not the service's answer, an itemsReceived that is not the
     * number of items sent, or an itemsAccepted below the items no entry names. */
    const char *distrust;
} cd_export_answer_t;

/*
 * Fills outcomes[0..count) from a response to a request of count items.
 *
 * A 200 or 206 counts items as accepted only on the service's word: its body
 * must be a JSON object whose itemsReceived is count, whose itemsAccepted is
 * a number and whose errors is an array.  Then each errors entry
 * ({"index","statusCode","message"}) gives its item its own fate and the
 * items it does not name are accepted, unless itemsAccepted says fewer were
 * (it counts the items taken without comment): which ones is then unknown,
 * and they are all sent again.  Any other 200 or
 * 206 (no body, cut short, a proxy's page) accepts nothing: every item is
 * sent again, and answer->distrust says why.
 *
 * Any other status gives every item its fate (with message `fallback`,
 * copied, for the final and resent ones), and an errors array, when the body
 * has one, then sets the items it names; a body that is not the service's
 * JSON leaves the status alone to decide, which is what an answer from a
 * proxy or a load balancer needs.
 *
 * Entries whose index is not a whole number naming one of the items, or whose
 * statusCode is not a number, are ignored.  A pause other than THROTTLED means
 * the configuration, not the data, is wrong: no item is final then, they all
 * wait for the fix.  Returns 0, or -1 when memory ran out (outcomes are then
 * freed).
 */
int cd_export_outcomes_from_response(cd_export_outcome_t *outcomes, size_t count,
                                     int http_status, const char *body, size_t body_len,
                                     const char *fallback, cd_export_answer_t *answer);

/* Frees the messages of outcomes[0..count). */
void cd_export_outcomes_clear(cd_export_outcome_t *outcomes, size_t count);

/*
 * Reads a Retry-After value: delta-seconds ("120") or an HTTP-date ("Fri, 31
 * Dec 1999 23:59:59 GMT", also the obsolete forms curl_getdate knows), as a
 * delay in ms from now_us (0 for a date already past).  false when it is
 * neither.
 */
bool cd_export_retry_after_parse(const char *value, int64_t now_us, int64_t *delay_ms);

/* Exponential back-off: min_ms doubled per consecutive failure up to max_ms. */
typedef struct cd_export_backoff {
    int min_ms;
    int max_ms;
    int failures;
} cd_export_backoff_t;

/*
 * The delay before the next try after one more failure: the back-off with
 * full jitter in its upper half ([d/2, d]) so that instances do not retry in
 * step, or retry_after_ms when the service asked for longer (never less than
 * it asked; capped at one hour so a bad header cannot park data for days).
 * retry_after_ms < 0: none given.  random: a fresh random number for each
 * call (it draws the jitter).
 */
int64_t cd_export_backoff_next(cd_export_backoff_t *b, int64_t retry_after_ms, uint32_t random);

/* A success: the next failure starts again from min_ms. */
static inline void cd_export_backoff_reset(cd_export_backoff_t *b) { b->failures = 0; }

#endif
