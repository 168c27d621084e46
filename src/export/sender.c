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

/* The service's answers are small (per-item errors at most); a larger one is
 * not the service's, and its start says enough. */
#define RESPONSE_MAX (1024 * 1024)

struct cd_export_sender {
    CURL *curl;
    char *url;
    int timeout_ms;
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

cd_export_sender_t *cd_export_sender_new(const char *url, int timeout_ms, int gzip_level)
{
    cd_export_global_init();
    cd_export_sender_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    cd_buf_init(&s->gz);
    cd_buf_init(&s->answer);
    s->timeout_ms = timeout_ms;
    /* windowBits 15 + 16: a gzip header and trailer, which Content-Encoding: gzip means. */
    s->z_ready = deflateInit2(&s->z, gzip_level, Z_DEFLATED, 15 + 16, 8,
                              Z_DEFAULT_STRATEGY) == Z_OK;
    if (!s->z_ready || !(s->url = strdup(url)) || !(s->curl = curl_easy_init())) {
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
    free(s->url);
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

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
    cd_export_sender_t *s = arg;
    size_t len = size * n;
    static const char name[] = "retry-after:";
    if (len > sizeof(name) - 1 && len < 256 && strncasecmp(line, name, sizeof(name) - 1) == 0) {
        char value[256];
        memcpy(value, line + sizeof(name) - 1, len - (sizeof(name) - 1));
        value[len - (sizeof(name) - 1)] = '\0';
        int64_t ms;
        if (cd_export_retry_after_parse(value, cd_now_us(), &ms))
            s->retry_after_ms = ms;
    }
    return len;
}

cd_status_t cd_export_sender_post(cd_export_sender_t *s, const char *body, size_t len,
                                  const char *bearer, cd_export_response_t *res, cd_err_t *err)
{
    struct curl_slist *headers = NULL, *h;
    char auth[8192];
    cd_status_t st;

    memset(res, 0, sizeof(*res));
    if ((st = compress_body(s, body, len, err)) != CD_OK)
        return st;
    cd_buf_reset(&s->answer);
    s->retry_after_ms = -1;
    s->curl_error[0] = '\0';

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

    CURL *c = s->curl;
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
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)s->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(s->timeout_ms < 10000 ? s->timeout_ms
                                                                                 : 10000));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for timeouts */
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, s->curl_error);

    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(headers);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    if (rc != CURLE_OK)
        return cd_err_set(err, rc == CURLE_OUT_OF_MEMORY ? CD_ERROR : CD_RETRY,
                          "POST %s: %s", s->url,
                          s->curl_error[0] ? s->curl_error : curl_easy_strerror(rc));
    if (s->answer.oom)
        return cd_err_set(err, CD_ERROR, "out of memory reading the answer of %s", s->url);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    res->status = (int)status;
    res->retry_after_ms = s->retry_after_ms;
    res->body = s->answer.data ? s->answer.data : "";
    res->body_len = s->answer.len;
    res->wire_bytes = s->gz.len;
    return CD_OK;
oom:
    curl_slist_free_all(headers);
    return cd_err_set(err, CD_ERROR, "out of memory building the request to %s", s->url);
}
