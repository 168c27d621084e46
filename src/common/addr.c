/* addr.c -- listening addresses; see addr.h. */
#include "convdiag/addr.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

cd_status_t cd_addr_parse(const char *text, cd_addr_t *a, cd_err_t *err)
{
    char host[64];
    const char *port, *h = text, *h_end;

    if (text[0] == '[') {
        h = text + 1;
        h_end = strchr(h, ']');
        port = h_end && h_end[1] == ':' ? h_end + 2 : NULL;
    } else {
        h_end = strrchr(text, ':');
        port = h_end ? h_end + 1 : NULL;
    }
    if (!port || !port[0] || (size_t)(h_end - h) >= sizeof(host) || h_end == h)
        return cd_err_set(err, CD_ERROR, "'%s' is not HOST:PORT", text);
    memcpy(host, h, (size_t)(h_end - h));
    host[h_end - h] = '\0';

    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0)
        return cd_err_set(err, CD_ERROR, "'%s': %s", text, gai_strerror(rc));
    memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    snprintf(a->text, sizeof(a->text), "%s", text);
    a->set = true;
    return CD_OK;
}

void cd_addr_set_port(cd_addr_t *a, unsigned port)
{
    char host[64];
    const void *ip = a->ss.ss_family == AF_INET6
                         ? (const void *)&((struct sockaddr_in6 *)&a->ss)->sin6_addr
                         : (const void *)&((struct sockaddr_in *)&a->ss)->sin_addr;

    inet_ntop(a->ss.ss_family, ip, host, sizeof(host));
    if (a->ss.ss_family == AF_INET6) {
        ((struct sockaddr_in6 *)&a->ss)->sin6_port = htons((uint16_t)port);
        snprintf(a->text, sizeof(a->text), "[%s]:%u", host, port);
    } else {
        ((struct sockaddr_in *)&a->ss)->sin_port = htons((uint16_t)port);
        snprintf(a->text, sizeof(a->text), "%s:%u", host, port);
    }
}
