/*
 * server.c -- /metrics, /healthz and /readyz over HTTP (libmicrohttpd, one
 * internal thread: scrapes and probes are few and quick); see metrics.h.
 */
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convdiag/addr.h"
#include "convdiag/log.h"
#include "convdiag/metrics.h"

struct cd_metrics_server {
    cd_metrics_t *metrics;
    struct MHD_Daemon *daemon;
    cd_addr_t addr;
};

#define PROMETHEUS_TEXT "text/plain; version=0.0.4; charset=utf-8"
#define JSON "application/json"

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    cd_log_warn("metrics", "%s", msg);
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             const cd_buf_t *body, const char *allow)
{
    struct MHD_Response *resp;

    if (body->oom) {
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    } else {
        resp = MHD_create_response_from_buffer(body->len, body->data, MHD_RESPMEM_MUST_COPY);
    }
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **state)
{
    cd_metrics_server_t *s = cls;
    unsigned status = MHD_HTTP_OK;
    const char *type = JSON, *allow = NULL;
    cd_buf_t body;
    (void)version;
    (void)upload_data;

    /* The first call only announces the request; a body, if any, is ignored. */
    if (!*state) {
        *state = s;
        return MHD_YES;
    }
    *upload_size = 0;
    cd_buf_init(&body);
    bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
               strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    bool known = strcmp(url, "/metrics") == 0 || strcmp(url, "/healthz") == 0 ||
                 strcmp(url, "/readyz") == 0;
    if (!known) {
        status = MHD_HTTP_NOT_FOUND;
        cd_buf_puts(&body, "{\"error\": \"not found: try /metrics, /healthz or /readyz\"}\n");
    } else if (!get) {
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
        allow = "GET, HEAD";
        cd_buf_puts(&body, "{\"error\": \"only GET and HEAD\"}\n");
    } else if (strcmp(url, "/metrics") == 0) {
        type = PROMETHEUS_TEXT;
        cd_metrics_render(s->metrics, &body);
    } else if (strcmp(url, "/healthz") == 0) {
        status = cd_metrics_alive(s->metrics, &body) ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
    } else {
        status = cd_metrics_ready(s->metrics, &body) ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
    }
    enum MHD_Result rc = reply(conn, status, type, &body, allow);
    cd_buf_fini(&body);
    return rc;
}

cd_metrics_server_t *cd_metrics_server_start(cd_metrics_t *m, const char *addr, cd_err_t *err)
{
    cd_metrics_server_t *s = calloc(1, sizeof(*s));
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;

    if (!s) {
        cd_err_set(err, CD_ERROR, "out of memory");
        return NULL;
    }
    s->metrics = m;
    cd_err_t why;
    if (cd_addr_parse(addr, &s->addr, &why) != CD_OK) {
        cd_err_set(err, CD_ERROR, "metrics.listen: %s", why.msg);
        goto fail;
    }
    if (s->addr.ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
                                 on_mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
                                 (struct sockaddr *)&s->addr.ss, MHD_OPTION_CONNECTION_LIMIT, 64u,
                                 MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (!s->daemon) {
        cd_err_set(err, CD_ERROR, "metrics.listen: cannot listen on %s", s->addr.text);
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (info && info->port)
        cd_addr_set_port(&s->addr, info->port);
    return s;
fail:
    free(s);
    return NULL;
}

const char *cd_metrics_server_address(const cd_metrics_server_t *s) { return s->addr.text; }

void cd_metrics_server_stop(cd_metrics_server_t *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->daemon);
    free(s);
}
