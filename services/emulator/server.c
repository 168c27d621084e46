/* server.c -- HTTP listeners and routing; see server.h. */
#include "server.h"

#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "convdiag/log.h"
#include "track.h"

/* One request while its body arrives. */
typedef struct request {
    cd_buf_t body;
    size_t seen;     /* body bytes received, kept or not */
    bool too_large;  /* past --max-body: the rest is read and dropped */
    bool answered;   /* refused before its body was read */
} request_t;

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    cd_log_warn("http", "%s", msg);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **state,
                         enum MHD_RequestTerminationCode why)
{
    emu_listener_t *l = cls;
    request_t *req = *state;
    (void)conn;
    (void)why;
    if (req) {
        atomic_fetch_sub(&l->active, 1);
        cd_buf_fini(&req->body);
        free(req);
        *state = NULL;
    }
}

static enum MHD_Result send_reply(struct MHD_Connection *conn, emu_reply_t *reply)
{
    struct MHD_Response *resp;

    if (reply->body.oom)
        emu_reply_error(reply, 500, "out of memory");
    if (reply->body.len) {
        resp = MHD_create_response_from_buffer(reply->body.len, reply->body.data,
                                               MHD_RESPMEM_MUST_FREE);
        if (resp)
            cd_buf_init(&reply->body); /* the response owns the bytes now */
    } else {
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, reply->content_type);
    if (reply->retry_after[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, reply->retry_after);
    if (reply->allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, reply->allow);
    if (reply->location[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, reply->location);
    if (reply->cache_control[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, reply->cache_control);
    if (reply->close)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)reply->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static void not_allowed(emu_reply_t *reply, const char *allow)
{
    emu_reply_error(reply, 405, "use %s", allow);
    reply->allow = allow;
}

static const char *arg(struct MHD_Connection *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
}

static bool is_track(const char *path)
{
    return strcmp(path, "/v2/track") == 0 || strcmp(path, "/v2.1/track") == 0;
}

static void route(const emu_listener_t *l, struct MHD_Connection *conn, const char *path,
                  const char *method, const request_t *req, emu_reply_t *reply)
{
    emu_t *emu = l->emu;
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    bool post = strcmp(method, "POST") == 0;
    const char *body = req->body.data ? req->body.data : "";

    if (l->ingestion && is_track(path)) {
        if (post && !l->alternate && emu_track_redirect(emu, l->addr->text, path, reply))
            return;
        if (post)
            emu_track_handle(emu,
                             MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                         MHD_HTTP_HEADER_CONTENT_ENCODING),
                             MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                         MHD_HTTP_HEADER_AUTHORIZATION),
                             body, req->body.len, reply);
        else
            not_allowed(reply, "POST");
    } else if (strcmp(path, "/control") == 0) {
        if (get)
            emu_api_control_get(emu, reply);
        else if (post)
            emu_api_control_set(emu, body, req->body.len, reply);
        else
            not_allowed(reply, "GET, POST");
    } else if (strcmp(path, "/api/items") == 0) {
        if (strcmp(method, "DELETE") == 0)
            emu_api_delete_items(emu, reply);
        else
            not_allowed(reply, "DELETE");
    } else if (!get && (strncmp(path, "/api/", 5) == 0 || strcmp(path, "/") == 0)) {
        not_allowed(reply, "GET");
    } else if (strcmp(path, "/api/stats") == 0) {
        emu_api_stats(emu, reply);
    } else if (strcmp(path, "/api/conversations") == 0) {
        emu_api_conversations(emu, arg(conn, "q"), arg(conn, "offset"), arg(conn, "limit"),
                              reply);
    } else if (strcmp(path, "/api/traces") == 0) {
        emu_api_traces(emu, arg(conn, "conversation"), reply);
    } else if (strcmp(path, "/") == 0) {
        emu_api_page(reply);
    } else {
        emu_reply_error(reply, 404, "no such resource: %.200s", path);
    }
}

static enum MHD_Result too_large(const emu_listener_t *l, struct MHD_Connection *conn,
                                 const char *path, size_t seen)
{
    emu_reply_t reply = {.content_type = EMU_JSON, .close = true};
    enum MHD_Result rc;

    if (l->ingestion && is_track(path))
        emu_track_too_large(l->emu, seen, &reply);
    else
        emu_reply_error(&reply, 413, "the body is larger than %zu bytes", l->emu->conf.max_body);
    rc = send_reply(conn, &reply);
    cd_buf_fini(&reply.body);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *path,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
    emu_listener_t *l = cls;
    size_t max = l->emu->conf.max_body;
    request_t *req = *state;
    (void)version;

    if (!req) {
        /* Counted before closing is read (emu_listener_stop does the reverse),
         * so either the stop waits for this request or the request sees the
         * stop.  Going down, a request on a kept-alive connection is cut unread. */
        atomic_fetch_add(&l->active, 1);
        if (atomic_load(&l->closing) || !(req = calloc(1, sizeof(*req)))) {
            atomic_fetch_sub(&l->active, 1);
            return MHD_NO;
        }
        cd_buf_init(&req->body);
        *state = req;
        /* A body announced too large is refused before it is sent: the answer
         * goes out instead of "100 Continue", and the connection closes. */
        const char *length =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (length && strtoull(length, NULL, 10) > max) {
            req->answered = true;
            return too_large(l, conn, path, strtoull(length, NULL, 10));
        }
        return MHD_YES;
    }
    if (*upload_size) {
        req->seen += *upload_size;
        if (!req->too_large && req->seen > max) {
            req->too_large = true;
            cd_buf_fini(&req->body);
        }
        if (!req->too_large && !req->answered)
            cd_buf_append(&req->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (req->answered)
        return MHD_YES;
    if (req->too_large)
        return too_large(l, conn, path, req->seen);

    emu_reply_t reply = {.status = 500, .content_type = EMU_JSON};
    cd_buf_init(&reply.body);
    route(l, conn, path, method, req, &reply);
    enum MHD_Result rc = send_reply(conn, &reply);
    cd_buf_fini(&reply.body);
    return rc;
}

cd_status_t emu_listener_start(emu_listener_t *l, cd_err_t *err)
{
    cd_addr_t *a = l->addr;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_ITC | MHD_USE_AUTO | MHD_USE_ERROR_LOG;

    atomic_store(&l->closing, false);
    atomic_store(&l->active, 0);
    if (a->ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* The logger first, so that messages about the other options go through it too. */
    l->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, l, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&a->ss, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, l, MHD_OPTION_CONNECTION_LIMIT, 256u, MHD_OPTION_CONNECTION_TIMEOUT,
        60u, /* SO_REUSEPORT: may bind beside the socket holding the port */
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_END);
    if (!l->daemon)
        return cd_err_set(err, CD_ERROR, "cannot listen on %s", a->text);
    emu_listener_release(l);

    /* Port 0 asked for any free port: keep the one bound, so coming back up
     * after "down" reopens the same one. */
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(l->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (info && info->port)
        cd_addr_set_port(a, info->port);
    return CD_OK;
}

void emu_listener_stop(emu_listener_t *l)
{
    atomic_store(&l->closing, true);
    MHD_socket fd = MHD_quiesce_daemon(l->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    /* Answers in flight go out, the /control one that asked for "down" among
     * them; idle kept-alive connections do not hold this up. */
    for (int i = 0; i < 500 && atomic_load(&l->active) > 0; i++)
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    MHD_stop_daemon(l->daemon);
    l->daemon = NULL;
}

void emu_listener_release(emu_listener_t *l)
{
    if (l->held)
        close(l->held_fd);
    l->held = false;
}

void emu_listener_down(emu_listener_t *l)
{
    const cd_addr_t *a = l->addr;
    socklen_t len = a->ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                : sizeof(struct sockaddr_in);
    int one = 1, fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

    /* Bound beside the listening socket before that one closes: the port is
     * never free in between. */
    if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == 0 &&
        bind(fd, (const struct sockaddr *)&a->ss, len) == 0) {
        l->held_fd = fd;
        l->held = true;
    } else {
        cd_log_warn("emulator", "cannot hold %s while down (%s): another process may take it",
                    a->text, strerror(errno));
        if (fd >= 0)
            close(fd);
    }
    emu_listener_stop(l);
}
