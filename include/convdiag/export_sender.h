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

typedef struct cd_export_response {
    int status;             /* the HTTP status */
    int64_t retry_after_ms; /* Retry-After as a delay, -1 when absent or unreadable */
    const char *body;       /* the answer, NUL-terminated; owned by the sender, valid
                             * until its next request */
    size_t body_len;
    size_t wire_bytes;      /* the request body as sent (compressed) */
} cd_export_response_t;

/* Initializes libcurl once for the process; call before starting threads. */
void cd_export_global_init(void);

/* A sender POSTing to url (copied).  timeout_ms bounds a whole request;
 * gzip_level is zlib's 1-9.  NULL only when out of memory. */
cd_export_sender_t *cd_export_sender_new(const char *url, int timeout_ms, int gzip_level);
void cd_export_sender_free(cd_export_sender_t *s);

/*
 * POSTs body (an application/x-json-stream of len bytes) gzip-compressed,
 * with "Authorization: Bearer <bearer>" when bearer is not NULL.
 * CD_OK: the service answered, whatever the status, and res says how.
 * CD_RETRY: no answer (connection refused, reset, timed out); err says why.
 * CD_ERROR: the body could not be compressed or memory ran out.
 */
cd_status_t cd_export_sender_post(cd_export_sender_t *s, const char *body, size_t len,
                                  const char *bearer, cd_export_response_t *res, cd_err_t *err);

#endif
