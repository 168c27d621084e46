/* sender.c -- gzip and POST a body of envelopes; see export_sender.h. */
#include "convdiag/export_sender.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "convdiag/export_policy.h"
#include "convdiag/timeutil.h"

/* The service's answers are small (per-item errors at most); a larger one is
 * not the service's, and its start says enough. */
#define RESPONSE_MAX (1024 * 1024)

struct cd_export_sender {
    CURL *curl;
    int timeout_ms;
    cd_export_sender_tick_fn tick;
    void *tick_arg;
    int64_t ticked_us;
    char url[CD_EXPORT_URL_MAX + 1];      /* the URL of the request in flight */
    char location[CD_EXPORT_URL_MAX + 1]; /* where a 307/308 sends it, "" for none */
    int64_t max_age_s;                    /* the answer's Cache-Control max-age, -1: none */
    z_stream z;
    bool z_ready;
    cd_buf_t gz;       /* the compressed body */
    cd_buf_t answer;   /* the response body */
    int64_t retry_after_ms;
    char curl_error[CURL_ERROR_SIZE];
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

void cd_export_global_init(void) { pthread_once(&global_once, global_init); }

cd_export_sender_t *cd_export_sender_new(int timeout_ms, int gzip_level,
                                         cd_export_sender_tick_fn tick, void *tick_arg)
{
    cd_export_global_init();
    cd_export_sender_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    cd_buf_init(&s->gz);
    cd_buf_init(&s->answer);
    s->timeout_ms = timeout_ms;
    s->tick = tick;
    s->tick_arg = tick_arg;
    /* windowBits 15 + 16: a gzip header and trailer, which Content-Encoding: gzip means. */
    s->z_ready = deflateInit2(&s->z, gzip_level, Z_DEFLATED, 15 + 16, 8,
                              Z_DEFAULT_STRATEGY) == Z_OK;
    if (!s->z_ready || !(s->curl = curl_easy_init())) {
        cd_export_sender_free(s);
        return NULL;
    }
    return s;
}

void cd_export_sender_free(cd_export_sender_t *s)
{
    if (!s)
        return;
    if (s->curl)
        curl_easy_cleanup(s->curl);
    if (s->z_ready)
        deflateEnd(&s->z);
    cd_buf_fini(&s->gz);
    cd_buf_fini(&s->answer);
    free(s);
}

static cd_status_t compress_body(cd_export_sender_t *s, const char *body, size_t len,
                                 cd_err_t *err)
{
    uLong bound = deflateBound(&s->z, (uLong)len);
    cd_buf_reset(&s->gz);
    char *out = cd_buf_reserve(&s->gz, bound);
    if (!out)
        return cd_err_set(err, CD_ERROR, "out of memory compressing %zu bytes", len);
    deflateReset(&s->z);
    s->z.next_in = (Bytef *)body;
    s->z.avail_in = (uInt)len;
    s->z.next_out = (Bytef *)out;
    s->z.avail_out = (uInt)bound;
    int rc = deflate(&s->z, Z_FINISH);
    if (rc != Z_STREAM_END)
        return cd_err_set(err, CD_ERROR, "gzip of %zu bytes failed: %s (%d)", len,
                          s->z.msg ? s->z.msg : "no message", rc);
    cd_buf_commit(&s->gz, bound - s->z.avail_out);
    return CD_OK;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    cd_export_sender_t *s = arg;
    size_t len = size * n;
    size_t room = RESPONSE_MAX > s->answer.len ? RESPONSE_MAX - s->answer.len : 0;
    cd_buf_append(&s->answer, data, len < room ? len : room);
    return len;
}

/* The value of header `name` (lower case, with its colon) in line, trimmed, or NULL. */
static const char *header_value(const char *line, size_t len, const char *name, char *out,
                                size_t size)
{
    size_t n = strlen(name);
    if (len <= n || len - n >= size || strncasecmp(line, name, n) != 0)
        return NULL;
    const char *v = line + n, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    memcpy(out, v, (size_t)(end - v));
    out[end - v] = '\0';
    return out;
}

/* max-age=N of a Cache-Control value, -1 when it has none. */
static int64_t max_age_of(const char *v)
{
    for (const char *p = v; (p = strcasestr(p, "max-age")) != NULL; p += 7) {
        if (p != v && p[-1] != ',' && p[-1] != ' ' && p[-1] != '\t')
            continue;
        const char *q = p + 7;
        while (*q == ' ')
            q++;
        if (*q++ != '=')
            continue;
        while (*q == ' ' || *q == '"')
            q++;
        if (*q < '0' || *q > '9')
            return -1;
        long long secs = strtoll(q, NULL, 10);
        return secs > 365LL * 86400 ? 365LL * 86400 : secs;
    }
    return -1;
}

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
    cd_export_sender_t *s = arg;
    size_t len = size * n;
    char value[CD_EXPORT_URL_MAX + 1];

    if (len > 5 && strncmp(line, "HTTP/", 5) == 0) { /* a new answer: 1xx, or after a redirect */
        s->retry_after_ms = -1;
        s->location[0] = '\0';
        s->max_age_s = -1;
    } else if (header_value(line, len, "retry-after:", value, 256)) {
        int64_t ms;
        if (cd_export_retry_after_parse(value, cd_now_us(), &ms))
            s->retry_after_ms = ms;
    } else if (header_value(line, len, "location:", value, sizeof(value))) {
        snprintf(s->location, sizeof(s->location), "%s", value);
    } else if (header_value(line, len, "cache-control:", value, 1024)) {
        s->max_age_s = max_age_of(value);
    }
    return len;
}

/* About once a second while a request is in flight: the caller's tick. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    cd_export_sender_t *s = arg;
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    int64_t now = cd_mono_us();
    if (s->tick && now - s->ticked_us >= 1000000) {
        s->ticked_us = now;
        s->tick(s->tick_arg);
    }
    return 0;
}

/* The absolute URL a Location names, relative to the request's; false if not http(s). */
static bool resolve_location(const cd_export_sender_t *s, char *out, size_t size)
{
    CURLU *u = curl_url();
    char *full = NULL, *scheme = NULL;
    bool ok = u && curl_url_set(u, CURLUPART_URL, s->url, 0) == CURLUE_OK &&
              curl_url_set(u, CURLUPART_URL, s->location, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
              (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0) &&
              curl_url_get(u, CURLUPART_URL, &full, 0) == CURLUE_OK && strlen(full) < size;
    if (ok)
        memcpy(out, full, strlen(full) + 1);
    curl_free(full);
    curl_free(scheme);
    curl_url_cleanup(u);
    return ok;
}

/* One POST of the compressed body to s->url; CD_OK when answered. */
static cd_status_t post_once(cd_export_sender_t *s, struct curl_slist *headers, long timeout_ms,
                             cd_err_t *err)
{
    CURL *c = s->curl;
    cd_buf_reset(&s->answer);
    s->retry_after_ms = -1;
    s->location[0] = '\0';
    s->max_age_s = -1;
    s->curl_error[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, s->url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, s->gz.data);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->gz.len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "convdiag/" CD_VERSION);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, s);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L); /* redirects are followed here, below */
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 10000 ? timeout_ms : 10000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for timeouts */
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, s->curl_error);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    if (rc != CURLE_OK)
        return cd_err_set(err, rc == CURLE_OUT_OF_MEMORY ? CD_ERROR : CD_RETRY, "POST %s: %s",
                          s->url, s->curl_error[0] ? s->curl_error : curl_easy_strerror(rc));
    if (s->answer.oom)
        return cd_err_set(err, CD_ERROR, "out of memory reading the answer of %s", s->url);
    return CD_OK;
}

cd_status_t cd_export_sender_post(cd_export_sender_t *s, const char *url, const char *body,
                                  size_t len, const char *bearer, cd_export_response_t *res,
                                  cd_err_t *err)
{
    struct curl_slist *headers = NULL, *h;
    char auth[8192];
    cd_status_t st;

    memset(res, 0, sizeof(*res));
    res->redirect_max_age_s = -1;
    if (strlen(url) > CD_EXPORT_URL_MAX)
        return cd_err_set(err, CD_ERROR, "the track URL is longer than %d bytes",
                          CD_EXPORT_URL_MAX);
    memcpy(s->url, url, strlen(url) + 1);
    if ((st = compress_body(s, body, len, err)) != CD_OK)
        return st;

    static const char *const fixed[] = {
        "Content-Type: application/x-json-stream",
        "Content-Encoding: gzip",
        "Expect:", /* no 100-continue round trip */
    };
    for (size_t i = 0; i < CD_ARRAY_LEN(fixed); i++) {
        if (!(h = curl_slist_append(headers, fixed[i])))
            goto oom;
        headers = h;
    }
    if (bearer) {
        if ((size_t)snprintf(auth, sizeof(auth), "Authorization: Bearer %s", bearer) >=
            sizeof(auth)) {
            curl_slist_free_all(headers);
            return cd_err_set(err, CD_ERROR, "the bearer token is longer than %zu bytes",
                              sizeof(auth) - 23);
        }
        if (!(h = curl_slist_append(headers, auth)))
            goto oom;
        headers = h;
    }

    /* 307 and 308 keep the method and the body: the same POST to the new
     * place, up to CD_EXPORT_MAX_REDIRECTS times, all within one timeout. */
    int64_t deadline = cd_mono_us() + (int64_t)s->timeout_ms * 1000;
    s->ticked_us = cd_mono_us();
    long status = 0;
    for (;;) {
        int64_t left_ms = (deadline - cd_mono_us()) / 1000;
        if (left_ms <= 0) {
            st = cd_err_set(err, CD_RETRY, "POST %s: no answer within %d ms after %d redirect%s",
                            s->url, s->timeout_ms, res->redirects,
                            res->redirects == 1 ? "" : "s");
            break;
        }
        if ((st = post_once(s, headers, (long)left_ms, err)) != CD_OK)
            break;
        curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
        if ((status != 307 && status != 308) || !s->location[0])
            break;
        if (res->redirects == CD_EXPORT_MAX_REDIRECTS) {
            st = cd_err_set(err, CD_RETRY, "POST %s: redirected more than %d times, last by %s",
                            url, CD_EXPORT_MAX_REDIRECTS, s->url);
            break;
        }
        char next[CD_EXPORT_URL_MAX + 1];
        if (!resolve_location(s, next, sizeof(next)))
            break; /* a Location that is not an http(s) URL: the 307/308 is the answer */
        /* The shortest max-age of the chain; one redirect without any: not to be kept. */
        if (res->redirects == 0 || (res->redirect_max_age_s >= 0 &&
                                    (s->max_age_s < 0 || s->max_age_s < res->redirect_max_age_s)))
            res->redirect_max_age_s = s->max_age_s;
        res->redirects++;
        memcpy(s->url, next, strlen(next) + 1);
    }
    curl_slist_free_all(headers);
    explicit_bzero(auth, sizeof(auth));
    if (st != CD_OK)
        return st;
    res->status = (int)status;
    res->retry_after_ms = s->retry_after_ms;
    res->body = s->answer.data ? s->answer.data : "";
    res->body_len = s->answer.len;
    res->wire_bytes = s->gz.len;
    res->url = s->url;
    return CD_OK;
oom:
    curl_slist_free_all(headers);
    return cd_err_set(err, CD_ERROR, "out of memory building the request to %s", url);
}
