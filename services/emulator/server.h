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
    struct MHD_Daemon *daemon; /* NULL while closed */
    atomic_bool closing;       /* going down: requests not yet begun are cut */
    atomic_int active;         /* requests begun and not yet answered */
} emu_listener_t;

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

#endif
