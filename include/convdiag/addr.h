/* addr.h -- a listening address given as HOST:PORT or [IPv6]:PORT. */
#ifndef CONVDIAG_ADDR_H
#define CONVDIAG_ADDR_H

#include <stdbool.h>
#include <sys/socket.h>

#include "convdiag/common.h"

typedef struct cd_addr {
    struct sockaddr_storage ss;
    char text[80]; /* as given, with the port filled in once bound */
    bool set;
} cd_addr_t;

/* Resolves text (a numeric port; a host name or address) into *a. */
cd_status_t cd_addr_parse(const char *text, cd_addr_t *a, cd_err_t *err);

/* The port actually bound (port 0 asked for any free one), in ss and text. */
void cd_addr_set_port(cd_addr_t *a, unsigned port);

#endif
