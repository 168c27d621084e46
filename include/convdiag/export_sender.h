/*
 * export_sender.h -- one HTTP connection to the ingestion service: a body of
 * envelopes in, gzip on the wire, the service's answer out.
 *
 * A sender owns a libcurl easy handle, so the connection is kept alive from
 * one request to the next, and a zlib stream reused for every body.  TLS is
 * verified (libcurl's default, never turned off here).  Not thread-safe: one
 * sender per thread.
 */
#ifndef CONVDIAG_EXPORT_SENDER_H
#define CONVDIAG_EXPORT_SENDER_H

#include <stddef.h>
#include <stdint.h>

#include "convdiag/buf.h"
#include "convdiag/common.h"

typedef struct cd_export_sender cd_export_sender_t;

/* The longest URL a request is sent to, redirects included. */
#define CD_EXPORT_URL_MAX 4200

/* Redirects (307, 308) followed for one request, as the SDKs do. */
#define CD_EXPORT_MAX_REDIRECTS 10

typedef struct cd_export_response {
    int status;             /* the HTTP status */
    int64_t retry_after_ms; /* Retry-After as a delay, -1 when absent or unreadable */
    const char *body;       /* the answer, NUL-terminated; owned by the sender, valid
                             * until its next request */
    size_t body_len;
    size_t wire_bytes;      /* the request body as sent (compressed) */
    const char *url;        /* the URL that answered (owned, valid as body) */
    int redirects;          /* 307/308 followed on the way */
    /* How long the redirect may be kept: the shortest Cache-Control max-age
     * of those followed; -1 when one had none, or none was followed. */
    int64_t redirect_max_age_s;
} cd_export_response_t;

/* Called with its argument about once a second while a request is in flight
 * (the exporter renews its lease there).  It may block only briefly. */
typedef void (*cd_export_sender_tick_fn)(void *arg);

/* Initializes libcurl once for the process; call before starting threads. */
void cd_export_global_init(void);

/* A sender.  timeout_ms bounds a whole request, redirects included;
 * gzip_level is zlib's 1-9; tick (may be NULL) and its argument are
 * borrowed.  NULL only when out of memory. */
cd_export_sender_t *cd_export_sender_new(int timeout_ms, int gzip_level,
                                         cd_export_sender_tick_fn tick, void *tick_arg);
void cd_export_sender_free(cd_export_sender_t *s);

/*
 * POSTs body (an application/x-json-stream of len bytes) gzip-compressed to
 * url, with "Authorization: Bearer <bearer>" when bearer is not NULL.  A 307
 * or 308 with a Location is followed with the same method, headers and body,
 * up to CD_EXPORT_MAX_REDIRECTS times.
 * CD_OK: the service answered, whatever the status, and res says how.
 * CD_RETRY: no answer (connection refused, reset, timed out, a redirect
 * loop); err says why.
 * CD_ERROR: the body could not be compressed or memory ran out.
 */
cd_status_t cd_export_sender_post(cd_export_sender_t *s, const char *url, const char *body,
                                  size_t len, const char *bearer, cd_export_response_t *res,
                                  cd_err_t *err);

#endif
