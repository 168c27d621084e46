/*
 * export_token.h -- the Microsoft Entra bearer token of an exporter that
 * authenticates (export.token.file or export.token.command).
 *
 * The token is read from a file (re-read when the file changes: whatever
 * renews it, e.g. a workload-identity sidecar, just rewrites it) or printed
 * by a command (e.g. `az account get-access-token --resource
 * https://monitor.azure.com --query accessToken -o tsv`).  When the token is
 * a JWT its "exp" claim says when it expires, and it is fetched again five
 * minutes before; a token without one is fetched again every ten minutes.
 * A 401 or 403 from the service makes the next request fetch it anew.
 * Thread-safe: the exporter's workers share one; one worker fetches at a
 * time, outside the lock, while the others keep using the current token
 * (or, having none, are told to wait instead of blocking).  The command runs
 * in a process group of its own and is killed, group and all, past its
 * timeout.  Never logged.
 */
#ifndef CONVDIAG_EXPORT_TOKEN_H
#define CONVDIAG_EXPORT_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "convdiag/common.h"

/* The longest token accepted, in bytes. */
#define CD_EXPORT_TOKEN_MAX 8000

typedef struct cd_export_token cd_export_token_t;

/* A token source: file or command (exactly one non-empty; both copied); the
 * command is killed past timeout_ms.  NULL when out of memory. */
cd_export_token_t *cd_export_token_new(const char *file, const char *command, int timeout_ms);
void cd_export_token_free(cd_export_token_t *t);

/*
 * Copies the current token to buf (size >= CD_EXPORT_TOKEN_MAX + 1),
 * fetching it first when needed.  CD_RETRY: it cannot be had now (file
 * missing or empty, command failed or timed out, another worker fetching
 * the first one); err says why without quoting the token.  A token that has expired is still returned, with a warning in the
 * log, while nothing newer can be had: the service decides.
 */
cd_status_t cd_export_token_get(cd_export_token_t *t, char *buf, size_t size, cd_err_t *err);

/* The service refused the token: fetch it again before the next request. */
void cd_export_token_invalidate(cd_export_token_t *t);

/* The "exp" claim of a JWT, in seconds since the epoch; -1 when token is
 * not a JWT or has none. */
int64_t cd_export_token_jwt_exp(const char *token);

#endif
