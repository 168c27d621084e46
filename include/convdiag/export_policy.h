/*
 * export_policy.h -- what the exporter does with each answer of the
 * ingestion service: the brief's response policy, as pure functions.
 *
 *   200        every item accepted (per-item errors, if any, still count)
 *   206        per item: 408, 429, 439, 500, 502, 503, 504 are sent again,
 *              and so are 401 and 403 (the token, not the item, was refused);
 *              206 (sampled) is accepted; any other code is final
 *   400, 402   final for every item not named otherwise; the reason is kept
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

/*
 * Fills outcomes[0..count) from a response to a request of count items:
 * first every item gets the fate of http_status (with message `fallback`,
 * copied, for the final and resent ones), then each entry of the body's
 * "errors" array ({"index","statusCode","message"}) sets its item's own.
 * A body that is not the service's JSON leaves the first step alone, which
 * is what an answer from a proxy or a load balancer needs.  Entries whose
 * index is not a whole number naming one of the items, or whose statusCode
 * is not a number, are ignored.  Returns the number of errors entries
 * applied, or -1 when memory ran out (outcomes are then freed).
 */
int cd_export_outcomes_from_response(cd_export_outcome_t *outcomes, size_t count,
                                     int http_status, const char *body, size_t body_len,
                                     const char *fallback);

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
