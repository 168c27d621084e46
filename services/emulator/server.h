/*
 * server.h -- the HTTP listeners (libmicrohttpd, a thread per connection):
 * reading requests, routing them to the handlers, sending the replies.
 *
 * The ingestion listener serves everything; it is the one "down" closes.  An
 * optional control listener serves /control, /api/ and the page only, so a
 * person or a test can bring the ingestion port back.
 */
#ifndef EMU_SERVER_H
#define EMU_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>

#include "emulator.h"

typedef struct emu_listener {
    emu_t *emu;
    cd_addr_t *addr; /* port 0 is replaced by the port bound */
    bool ingestion;
    bool alternate;            /* the --redirect-listen port: never redirected */
    struct MHD_Daemon *daemon; /* NULL while closed */
    atomic_bool closing;       /* going down: requests not yet begun are cut */
    atomic_int active;         /* requests begun and not yet answered */
    int held_fd;               /* while down: the port held (emu_listener_stop) */
    bool held;
} emu_listener_t;

/* Listens on addr (again); a port held by emu_listener_stop is let go once
 * listening on it. */
cd_status_t emu_listener_start(emu_listener_t *l, cd_err_t *err);

/*
 * Closes the listening socket at once (new connections are refused), cuts
 * requests that begin after that on kept-alive connections before they are
 * read (so the client knows nothing was taken), lets the requests in flight
 * be answered (5 s at most), then cuts every connection.  A request is thus
 * either answered or not taken: an outage never makes a client resend items
 * the emulator kept.
 */
void emu_listener_stop(emu_listener_t *l);

/*
 * emu_listener_stop that keeps the port for a later emu_listener_start: a
 * socket stays bound to it, not listening, so connecting is still refused
 * but no other process can be given the port meanwhile (one asking for any
 * free port would get it, and answer in the emulator's place).  Falls back
 * to a plain stop, with a warning, if the port cannot be held.
 */
void emu_listener_down(emu_listener_t *l);

/* Lets a held port go (at exit). */
void emu_listener_release(emu_listener_t *l);

#endif
