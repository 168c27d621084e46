/*
 * track.h -- POST /v2/track and /v2.1/track: a batch of envelopes judged item
 * by item, the faults applied, the accepted items stored, and the answer the
 * service gives: 200 when all are accepted, 206 with per-item errors when
 * some are, and when none is, the status of the first item (the endpoint
 * protocol's rule).  A body that cannot be read at all is refused whole.
 * When a bearer token is required, a request without it is answered 401
 * before anything else, every item carrying 401.
 */
#ifndef EMU_TRACK_H
#define EMU_TRACK_H

#include <stdbool.h>
#include <stddef.h>

#include "emulator.h"

/* encoding, authorization: the Content-Encoding and Authorization headers,
 * NULL when absent. */
void emu_track_handle(emu_t *emu, const char *encoding, const char *authorization,
                      const char *body, size_t len, emu_reply_t *reply);

/*
 * The redirect fault: when it is on, fills reply with a 307/308 to the same
 * path on the --redirect-listen port (or on self, the port the request came
 * to: a loop) and returns true.  Called for the ingestion port only.
 */
bool emu_track_redirect(emu_t *emu, const char *self, const char *path, emu_reply_t *reply);

/* The answer to a track request whose body is larger than --max-body. */
void emu_track_too_large(emu_t *emu, size_t len, emu_reply_t *reply);

#endif
