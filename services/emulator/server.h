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

#include <stdbool.h>

#include "emulator.h"

typedef struct emu_listener {
    emu_t *emu;
    emu_addr_t *addr; /* port 0 is replaced by the port bound */
    bool ingestion;
    struct MHD_Daemon *daemon; /* NULL while closed */
} emu_listener_t;

cd_status_t emu_listener_start(emu_listener_t *l, cd_err_t *err);

/*
 * Closes the listening socket at once (new connections are refused), gives
 * the answers in flight a moment to go out, then cuts every connection.
 */
void emu_listener_stop(emu_listener_t *l);

#endif
