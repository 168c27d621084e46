/*
 * test_emulator.c -- convdiag-emulator seen from outside, as an exporter and
 * a person see it: started on free loopback ports, driven over HTTP with
 * libcurl, switched through its command line and /control, stopped with
 * SIGTERM (exit 0 expected, which under AddressSanitizer also means no leak).
 *
 * Usage: test_emulator PATH_TO_convdiag-emulator
 * One line per check; the last line is "N passed, N failed".
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "convdiag/buf.h"
#include "convdiag/common.h"
#include "convdiag/timeutil.h"

static const char K1[] = "0fdcec70-0ce5-4085-89d9-9ae8ead9af66";
static const char K2[] = "5b8f2a7e-3c1d-4e2f-9a0b-1c2d3e4f5a6b";
static const char K3[] = "9d4c0a11-7e2b-4c3d-8e9f-a0b1c2d3e4f5"; /* never configured */

/* The longest bearer token the emulator takes (EMU_BEARER_MAX). */
#define EMU_TOKEN_TEST_MAX 8192

static const char *emulator_path;
static char work_dir[] = "/tmp/test_emulator.XXXXXX";
static int passed, failed;

/* ---- checks ---------------------------------------------------------------------------- */

static bool check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool check(bool ok, const char *fmt, ...)
{
    va_list ap;
    printf("%s - ", ok ? "ok" : "FAIL");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    ok ? passed++ : failed++;
    return ok;
}

/* ---- the emulator as a child process --------------------------------------------------- */

typedef struct emulator {
    pid_t pid;
    char log[128];
    char base[64];    /* http://127.0.0.1:PORT */
    char control[64]; /* the control listener, when started with one */
} emulator_t;

#define MAX_RUNNING 16
static pid_t running[MAX_RUNNING];

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    cd_buf_t b;
    char chunk[4096];
    size_t n;

    cd_buf_init(&b);
    cd_buf_puts(&b, "");
    if (!f)
        return b.data;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        cd_buf_append(&b, chunk, n);
    fclose(f);
    return b.data;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Waits up to 10 s for text in the emulator's log. */
/* How many times text is in the log now. */
static int log_count(const emulator_t *e, const char *text)
{
    char *log = read_file(e->log);
    int n = 0;
    for (const char *p = log; (p = strstr(p, text)); p += strlen(text))
        n++;
    free(log);
    return n;
}

/* Waits (10 s at most) until the log holds text more than `before` times. */
static bool log_has_more(const emulator_t *e, const char *text, int before)
{
    for (int i = 0; i < 500; i++) {
        if (log_count(e, text) > before)
            return true;
        sleep_ms(20);
    }
    return false;
}

static bool log_has(const emulator_t *e, const char *text) { return log_has_more(e, text, 0); }

/* The port after "name=127.0.0.1:" in the start line. */
static bool port_from_log(const char *log, const char *name, char *base, size_t size)
{
    char key[32];
    snprintf(key, sizeof(key), "%s=127.0.0.1:", name);
    const char *p = strstr(log, key);
    if (!p)
        return false;
    snprintf(base, size, "http://127.0.0.1:%d", atoi(p + strlen(key)));
    return true;
}

static int logs_written;

/*
 * Starts the emulator with its loopback ports chosen by the system, the keys
 * K1 and K2, debug logs, and the extra arguments (NULL-terminated).
 * with_control is an int: va_start must not follow a promoted type.
 */
static bool emulator_start(emulator_t *e, int with_control, ...)
{
    const char *argv[40] = {emulator_path, "--listen", "127.0.0.1:0", "--ikey", K1, "--ikey", K2,
                            "--log-level", "debug"};
    int argc = 9;
    va_list ap;

    if (with_control) {
        argv[argc++] = "--control-listen";
        argv[argc++] = "127.0.0.1:0";
    }
    va_start(ap, with_control);
    for (const char *a; (a = va_arg(ap, const char *)) && argc < 39;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;

    memset(e, 0, sizeof(*e));
    snprintf(e->log, sizeof(e->log), "%s/emulator-%d.log", work_dir, ++logs_written);
    fflush(stdout);
    e->pid = fork();
    if (e->pid == 0) {
        int fd = open(e->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
            _exit(127);
        execv(emulator_path, (char *const *)argv);
        _exit(127);
    }
    if (e->pid < 0)
        return false;
    for (int i = 0; i < MAX_RUNNING; i++)
        if (!running[i]) {
            running[i] = e->pid;
            break;
        }
    if (!log_has(e, "listening ingestion="))
        return false;
    char *log = read_file(e->log);
    bool ok = port_from_log(log, "ingestion", e->base, sizeof(e->base)) &&
              (!with_control || port_from_log(log, "control", e->control, sizeof(e->control)));
    free(log);
    return ok;
}

/* SIGTERM, then the exit status (-1 if it did not end within 20 s). */
static int emulator_stop(emulator_t *e)
{
    int status;
    if (e->pid <= 0) /* never started: kill() must not see 0 or -1 */
        return -1;
    kill(e->pid, SIGTERM);
    for (int i = 0; i < 2000; i++) {
        if (waitpid(e->pid, &status, WNOHANG) == e->pid) {
            for (int r = 0; r < MAX_RUNNING; r++)
                if (running[r] == e->pid)
                    running[r] = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        sleep_ms(10);
    }
    return -1;
}

/* Whatever still runs when the test ends early. */
static void kill_leftovers(void)
{
    for (int i = 0; i < MAX_RUNNING; i++)
        if (running[i]) {
            kill(running[i], SIGKILL);
            waitpid(running[i], NULL, 0);
        }
}

static void stop_and_check(emulator_t *e, const char *what)
{
    int rc = emulator_stop(e);
    check(rc == 0, "%s: SIGTERM ends it with exit code 0 (got %d)", what, rc);
}

/* ---- HTTP ------------------------------------------------------------------------------ */

typedef struct response {
    CURLcode rc;
    long status;
    char *body;
    cJSON *json; /* the body parsed, when it is JSON */
    char retry_after[80];
    char content_type[80];
    char location[300];
    char cache_control[80];
    double seconds;
} response_t;

static size_t on_body(char *data, size_t size, size_t n, void *userdata)
{
    cd_buf_append(userdata, data, size * n);
    return size * n;
}

static void header_value(const char *line, size_t len, const char *name, char *out, size_t size)
{
    size_t n = strlen(name);
    if (len <= n + 1 || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return;
    line += n + 1;
    len -= n + 1;
    while (len && (*line == ' '))
        line++, len--;
    while (len && (line[len - 1] == '\r' || line[len - 1] == '\n'))
        len--;
    snprintf(out, size, "%.*s", (int)len, line);
}

static size_t on_header(char *data, size_t size, size_t n, void *userdata)
{
    response_t *r = userdata;
    header_value(data, size * n, "Retry-After", r->retry_after, sizeof(r->retry_after));
    header_value(data, size * n, "Content-Type", r->content_type, sizeof(r->content_type));
    header_value(data, size * n, "Location", r->location, sizeof(r->location));
    header_value(data, size * n, "Cache-Control", r->cache_control, sizeof(r->cache_control));
    return size * n;
}

/* On curl, whose connection may be kept alive from an earlier request;
 * headers: NULL-terminated, may be NULL. */
static response_t http_on(CURL *curl, const char *method, const char *url, const char *body,
                          size_t len, const char *const *headers)
{
    response_t r = {0};
    cd_buf_t buf;
    struct curl_slist *list = NULL;

    cd_buf_init(&buf);
    cd_buf_puts(&buf, "");
    for (size_t i = 0; headers && headers[i]; i++)
        list = curl_slist_append(list, headers[i]);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &buf);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &r);
    if (body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    int64_t t0 = cd_mono_us();
    r.rc = curl_easy_perform(curl);
    r.seconds = (double)(cd_mono_us() - t0) / 1e6;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(list);
    r.body = buf.data;
    r.json = cJSON_Parse(r.body);
    return r;
}

/* On a connection of its own. */
static response_t http(const char *method, const char *url, const char *body, size_t len,
                       const char *const *headers)
{
    CURL *curl = curl_easy_init();
    response_t r = http_on(curl, method, url, body, len, headers);
    curl_easy_cleanup(curl);
    return r;
}

static void response_fini(response_t *r)
{
    free(r->body);
    cJSON_Delete(r->json);
    memset(r, 0, sizeof(*r));
}

static response_t get(const char *base, const char *path)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", base, path);
    return http("GET", url, NULL, 0, NULL);
}

static response_t post_json(const char *base, const char *path, const char *json)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", base, path);
    return http("POST", url, json, strlen(json), NULL);
}

/* POST /control and check it was taken. */
static void control(const char *base, const char *json)
{
    response_t r = post_json(base, "/control", json);
    check(r.status == 200, "POST /control %s -> %ld", json, r.status);
    response_fini(&r);
}

static long json_int(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? (long)v->valuedouble : -1;
}

static const char *json_str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static const cJSON *error_at(const response_t *r, int i)
{
    return cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r->json, "errors"), i);
}

static int error_count(const response_t *r)
{
    return cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r->json, "errors"));
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- telemetry ------------------------------------------------------------------------- */

static int64_t now_us(void) { return cd_now_us(); }
#define SECONDS(n) ((int64_t)(n) * 1000000)
#define HOURS(n) (SECONDS(n) * 3600)

/* A trace as the exporter sends it (brief: "Export"). */
static cJSON *trace(const char *ikey, const char *lwi, const char *message, int64_t time_us)
{
    char name[128], ts[40];
    size_t n = (size_t)snprintf(name, sizeof(name), "Microsoft.ApplicationInsights.");
    for (const char *k = ikey; *k; k++)
        if (*k != '-')
            name[n++] = *k;
    snprintf(name + n, sizeof(name) - n, ".Message");
    cd_time_format_utc(time_us, 6, ts, sizeof(ts));

    cJSON *e = cJSON_CreateObject();
    cJSON_AddNumberToObject(e, "ver", 1);
    cJSON_AddStringToObject(e, "name", name);
    cJSON_AddStringToObject(e, "time", ts);
    cJSON_AddStringToObject(e, "iKey", ikey);
    cJSON *tags = cJSON_AddObjectToObject(e, "tags");
    cJSON_AddStringToObject(tags, "ai.operation.id", "4bf92f3577b34da6a3ce929d0e0e4736");
    cJSON_AddStringToObject(tags, "ai.operation.parentId", lwi);
    cJSON_AddStringToObject(tags, "ai.operation.name", "QueueAssignment");
    cJSON_AddStringToObject(tags, "ai.session.id", "session-1");
    cJSON_AddStringToObject(tags, "ai.user.id", "0");
    cJSON_AddStringToObject(tags, "ai.cloud.role", "convdiag");
    cJSON_AddStringToObject(tags, "ai.cloud.roleInstance", "host-1");
    cJSON_AddStringToObject(tags, "ai.internal.sdkVersion", "convdiag:0.1.0");
    cJSON *data = cJSON_AddObjectToObject(e, "data");
    cJSON_AddStringToObject(data, "baseType", "MessageData");
    cJSON *base = cJSON_AddObjectToObject(data, "baseData");
    cJSON_AddNumberToObject(base, "ver", 2);
    cJSON_AddStringToObject(base, "message", message);
    cJSON_AddNumberToObject(base, "severityLevel", 0);
    cJSON *props = cJSON_AddObjectToObject(base, "properties");
    cJSON_AddStringToObject(props, "organizationId", "62206a64-7414-46f3-b0b7-963a1ee4ff66");
    cJSON_AddStringToObject(props, "LiveWorkItemID", lwi);
    cJSON_AddStringToObject(props, "ChannelType", "voice");
    cJSON_AddStringToObject(props, "Category", "Routing");
    return e;
}

static cJSON *base_data(cJSON *e)
{
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(e, "data"),
                                            "baseData");
}

static cJSON *tags_of(cJSON *e) { return cJSON_GetObjectItemCaseSensitive(e, "tags"); }
static cJSON *props_of(cJSON *e)
{
    return cJSON_GetObjectItemCaseSensitive(base_data(e), "properties");
}

static void set_string(cJSON *obj, const char *key, const char *value)
{
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    cJSON_AddStringToObject(obj, key, value);
}

/* n copies of the UTF-8 text unit. */
static char *repeat(const char *unit, size_t n)
{
    size_t len = strlen(unit);
    char *s = malloc(len * n + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * len, unit, len);
    s[len * n] = '\0';
    return s;
}

static cJSON *batch_of(cJSON *first, ...)
{
    cJSON *batch = cJSON_CreateArray();
    va_list ap;
    va_start(ap, first);
    for (cJSON *e = first; e; e = va_arg(ap, cJSON *))
        cJSON_AddItemToArray(batch, e);
    va_end(ap);
    return batch;
}

enum { STREAM = 0, ARRAY = 1, GZIP = 2 };

static char *gzip_of(const char *text, size_t len, size_t *out_len)
{
    z_stream zs = {0};
    uLong cap = compressBound((uLong)len) + 64;
    char *out = malloc(cap);
    deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    zs.next_in = (Bytef *)text;
    zs.avail_in = (uInt)len;
    zs.next_out = (Bytef *)out;
    zs.avail_out = (uInt)cap;
    deflate(&zs, Z_FINISH);
    *out_len = zs.total_out;
    deflateEnd(&zs);
    return out;
}

/* The batch as a JSON array or one envelope per line, maybe gzipped; frees the batch. */
static char *body_of(cJSON *batch, int how, size_t *len)
{
    char *text;
    if (how & ARRAY) {
        text = cJSON_PrintUnformatted(batch);
    } else {
        cd_buf_t b;
        const cJSON *e;
        cd_buf_init(&b);
        cd_buf_puts(&b, "");
        cJSON_ArrayForEach(e, batch) {
            char *line = cJSON_PrintUnformatted(e);
            cd_buf_puts(&b, line);
            cd_buf_putc(&b, '\n');
            free(line);
        }
        text = b.data;
    }
    cJSON_Delete(batch);
    *len = strlen(text);
    if (how & GZIP) {
        char *z = gzip_of(text, *len, len);
        free(text);
        text = z;
    }
    return text;
}

/* curl: a handle whose connection is kept alive, or NULL for a connection of its own. */
static response_t track_on(CURL *curl, const emulator_t *e, const char *path, cJSON *batch,
                           int how)
{
    const char *headers[] = {
        how & ARRAY ? "Content-Type: application/json" : "Content-Type: application/x-json-stream",
        how & GZIP ? "Content-Encoding: gzip" : NULL, NULL};
    char url[256];
    size_t len;
    char *body = body_of(batch, how, &len);
    snprintf(url, sizeof(url), "%s%s", e->base, path);
    response_t r = curl ? http_on(curl, "POST", url, body, len, headers)
                        : http("POST", url, body, len, headers);
    free(body);
    return r;
}

static response_t track_at(const emulator_t *e, const char *path, cJSON *batch, int how)
{
    return track_on(NULL, e, path, batch, how);
}

static response_t track(const emulator_t *e, cJSON *batch, int how)
{
    return track_at(e, "/v2.1/track", batch, how);
}

static response_t track_raw(const emulator_t *e, const char *body, size_t len,
                            const char *const *headers)
{
    char url[256];
    snprintf(url, sizeof(url), "%s/v2.1/track", e->base);
    return http("POST", url, body, len, headers);
}

/* One item sent alone: its status and (first) error message, into msg. */
static long one_item(const emulator_t *e, cJSON *item, char *msg, size_t size)
{
    response_t r = track(e, batch_of(item, NULL), STREAM);
    snprintf(msg, size, "%s", json_str(error_at(&r, 0), "message"));
    long status = r.status;
    response_fini(&r);
    return status;
}

/* ---- the checks ------------------------------------------------------------------------ */

static void test_accepted(const emulator_t *e)
{
    static const struct {
        const char *path;
        int how;
        const char *what;
    } cases[] = {
        {"/v2.1/track", STREAM, "x-json-stream, identity"},
        {"/v2.1/track", STREAM | GZIP, "x-json-stream, gzip"},
        {"/v2/track", ARRAY, "JSON array, identity, /v2/track"},
        {"/v2/track", ARRAY | GZIP, "JSON array, gzip, /v2/track"},
    };
    for (size_t i = 0; i < CD_ARRAY_LEN(cases); i++) {
        int64_t t = now_us();
        response_t r = track_at(e, cases[i].path,
                                batch_of(trace(K1, "LWI-OK", "ScenarioStarted", t),
                                         trace(K2, "LWI-OK", "ScenarioCompleted", t + 1000),
                                         trace(K1, "LWI-OK", "ScenarioStarted", t + 2000), NULL),
                                cases[i].how);
        check(r.status == 200 && json_int(r.json, "itemsReceived") == 3 &&
                  json_int(r.json, "itemsAccepted") == 3 && error_count(&r) == 0 &&
                  starts_with(r.content_type, "application/json"),
              "%s: 200 {itemsReceived 3, itemsAccepted 3, errors []} (got %ld %s)", cases[i].what,
              r.status, r.body);
        response_fini(&r);
    }
    /* Instrumentation keys are case insensitive. */
    char upper[64];
    snprintf(upper, sizeof(upper), "%s", K1);
    for (char *c = upper; *c; c++)
        if (*c >= 'a' && *c <= 'f')
            *c = (char)(*c - 'a' + 'A');
    response_t r = track(e, batch_of(trace(upper, "LWI-OK", "ScenarioStarted", now_us()), NULL),
                         STREAM);
    check(r.status == 200, "the key in upper case is the same key (got %ld)", r.status);
    response_fini(&r);
}

static void test_partial(const emulator_t *e)
{
    int64_t t = now_us();
    cJSON *bad = trace(K1, "LWI-P", "ScenarioCompleted", t);
    cJSON_DeleteItemFromObjectCaseSensitive(base_data(bad), "message");
    response_t r = track(e, batch_of(trace(K1, "LWI-P", "ScenarioStarted", t), bad,
                                     trace(K1, "LWI-P", "ScenarioStarted", t), NULL),
                         STREAM);
    const cJSON *err = error_at(&r, 0);
    check(r.status == 206 && json_int(r.json, "itemsReceived") == 3 &&
              json_int(r.json, "itemsAccepted") == 2 && error_count(&r) == 1 &&
              json_int(err, "index") == 1 && json_int(err, "statusCode") == 400 &&
              starts_with(json_str(err, "message"),
                          "109: Field 'message' on type 'MessageData' is required but missing "
                          "or empty"),
          "one invalid item of three: 206, error at index 1, 400, the 109 message (got %ld %s)",
          r.status, r.body);
    response_fini(&r);

    /* None accepted: the status of the first item. */
    cJSON *a = trace(K1, "LWI-P", "ScenarioStarted", t), *b = trace(K1, "LWI-P", "X", t);
    cJSON_DeleteItemFromObjectCaseSensitive(a, "time");
    cJSON_DeleteItemFromObjectCaseSensitive(b, "time");
    r = track(e, batch_of(a, b, NULL), ARRAY);
    check(r.status == 400 && json_int(r.json, "itemsAccepted") == 0 && error_count(&r) == 2 &&
              starts_with(json_str(error_at(&r, 1), "message"),
                          "109: Field 'time' on type 'Envelope' is required"),
          "all items invalid: 400 with an error per item (got %ld %s)", r.status, r.body);
    response_fini(&r);
}

static void test_validation(const emulator_t *e)
{
    int64_t t = now_us();
    char msg[1024];
    long status;
    cJSON *item;

    status = one_item(e, trace(K3, "LWI-V", "ScenarioStarted", t), msg, sizeof(msg));
    check(status == 400 && strcmp(msg, "Invalid instrumentation key") == 0,
          "unknown iKey: 400 \"Invalid instrumentation key\" (got %ld %s)", status, msg);

    status = one_item(e, trace(K1, "LWI-V", "ScenarioStarted", t - HOURS(49)), msg, sizeof(msg));
    check(status == 400 &&
              starts_with(msg, "103: Field 'time' on type 'Envelope' is older than the allowed "
                               "min date. Expected: now - 172800000ms, Actual: now - "),
          "time 49 h ago: 400 with the service's 103 message (got %ld %s)", status, msg);
    status = one_item(e, trace(K1, "LWI-V", "ScenarioStarted", t - HOURS(47)), msg, sizeof(msg));
    check(status == 200, "time 47 h ago: accepted (got %ld %s)", status, msg);
    status = one_item(e, trace(K1, "LWI-V", "ScenarioStarted", t + HOURS(3)), msg, sizeof(msg));
    check(status == 400 && strstr(msg, "newer than the allowed max date"),
          "time 3 h ahead: 400 (got %ld %s)", status, msg);
    item = trace(K1, "LWI-V", "ScenarioStarted", t);
    set_string(item, "time", "2026-11-20 08:00:00");
    status = one_item(e, item, msg, sizeof(msg));
    check(status == 400 && strstr(msg, "Field 'time' on type 'Envelope' is not a valid time"),
          "a time that is not ISO 8601 with Z: 400 (got %ld %s)", status, msg);

    item = trace(K1, "LWI-V", "ScenarioStarted", t);
    set_string(item, "name",
               "Microsoft.ApplicationInsights.0fdcec700ce5408589d99ae8ead9af66.Event");
    status = one_item(e, item, msg, sizeof(msg));
    check(status == 400 && strstr(msg, "Field 'name' on type 'Envelope'") &&
              strstr(msg, "Actual: Microsoft.ApplicationInsights.0fdcec70****"),
          "a name that is not a trace's: 400, the key in it masked (got %ld %s)", status, msg);

    /* Lengths count UTF-16 code units, as the service does: an emoji counts two. */
    static const struct {
        size_t emoji, letters;
        long status;
        const char *what;
    } messages[] = {
        {0, 32768, 200, "message of 32768 characters: accepted"},
        {0, 32769, 400, "message of 32769 characters: 400"},
        {8192, 16384, 200, "message of 8192 emoji and 16384 letters (32768 units): accepted"},
        {8192, 16385, 400, "message of 8192 emoji and 16385 letters (32769 units): 400"},
    };
    for (size_t i = 0; i < CD_ARRAY_LEN(messages); i++) {
        char *emoji = repeat("\xF0\x9F\x98\x80", messages[i].emoji);
        char *letters = repeat("a", messages[i].letters);
        char *text = malloc(strlen(emoji) + strlen(letters) + 1);
        sprintf(text, "%s%s", emoji, letters);
        item = trace(K1, "LWI-V", "ScenarioStarted", t);
        set_string(base_data(item), "message", text);
        free(text);
        free(letters);
        free(emoji);
        status = one_item(e, item, msg, sizeof(msg));
        check(status == messages[i].status &&
                  (status == 200 ||
                   strcmp(msg, "100: Field 'message' on type 'MessageData' is too long. "
                               "Expected: 32768 characters, Actual: 32769") == 0),
              "%s (got %ld %s)", messages[i].what, status, msg);
    }

    static const struct {
        const char *tag;
        size_t max;
    } tags[] = {
        {"ai.operation.id", 128}, {"ai.operation.parentId", 128}, {"ai.session.id", 64},
        {"ai.user.id", 128},      {"ai.cloud.role", 256},         {"ai.cloud.roleInstance", 256},
    };
    for (size_t i = 0; i < CD_ARRAY_LEN(tags); i++) {
        for (size_t len = tags[i].max; len <= tags[i].max + 1; len++) {
            char *value = repeat("x", len), expect[160];
            item = trace(K1, "LWI-V", "ScenarioStarted", t);
            set_string(tags_of(item), tags[i].tag, value);
            free(value);
            status = one_item(e, item, msg, sizeof(msg));
            snprintf(expect, sizeof(expect),
                     "100: Field '%s' on type 'ContextTagKeys' is too long. Expected: %zu "
                     "characters, Actual: %zu",
                     tags[i].tag, tags[i].max, len);
            check(len == tags[i].max ? status == 200 : status == 400 && strcmp(msg, expect) == 0,
                  "%s of %zu characters: %s (got %ld %s)", tags[i].tag, len,
                  len == tags[i].max ? "accepted" : "400", status, msg);
        }
    }

    char *value = repeat("v", 8192);
    item = trace(K1, "LWI-V", "ScenarioStarted", t);
    set_string(props_of(item), "Long", value);
    free(value);
    status = one_item(e, item, msg, sizeof(msg));
    check(status == 200, "a property value of 8192 characters: accepted (got %ld %s)", status,
          msg);
    value = repeat("v", 8193);
    item = trace(K1, "LWI-V", "ScenarioStarted", t);
    set_string(props_of(item), "Long", value);
    free(value);
    status = one_item(e, item, msg, sizeof(msg));
    check(status == 400 && strstr(msg, "too long") && strstr(msg, "8192"),
          "a property value of 8193 characters: 400 (got %ld %s)", status, msg);
    char *key = repeat("k", 151);
    item = trace(K1, "LWI-V", "ScenarioStarted", t);
    set_string(props_of(item), key, "v");
    free(key);
    status = one_item(e, item, msg, sizeof(msg));
    check(status == 400 && strstr(msg, "key that is too long") && strstr(msg, "150"),
          "a property key of 151 characters: 400 (got %ld %s)", status, msg);
    item = trace(K1, "LWI-V", "ScenarioStarted", t);
    cJSON_AddNumberToObject(props_of(item), "Duration", 1250);
    status = one_item(e, item, msg, sizeof(msg));
    check(status == 400 && strstr(msg, "Expected: string, Actual: number"),
          "a property value that is a number: 400 (got %ld %s)", status, msg);

    item = trace(K1, "LWI-V", "ScenarioStarted", t);
    cJSON_ReplaceItemInObjectCaseSensitive(base_data(item), "severityLevel",
                                           cJSON_CreateNumber(5));
    status = one_item(e, item, msg, sizeof(msg));
    check(status == 400 && strstr(msg, "severityLevel"), "severityLevel 5: 400 (got %ld %s)",
          status, msg);
    item = trace(K1, "LWI-V", "ScenarioStarted", t);
    cJSON_ReplaceItemInObjectCaseSensitive(base_data(item), "severityLevel",
                                           cJSON_CreateNumber(4));
    status = one_item(e, item, msg, sizeof(msg));
    check(status == 200, "severityLevel 4: accepted (got %ld %s)", status, msg);

    item = trace(K1, "LWI-V", "ScenarioStarted", t);
    set_string(cJSON_GetObjectItemCaseSensitive(item, "data"), "baseType", "EventData");
    status = one_item(e, item, msg, sizeof(msg));
    check(status == 400 && strstr(msg, "baseType"), "baseType EventData: 400 (got %ld %s)",
          status, msg);
    item = trace(K1, "LWI-V", "ScenarioStarted", t);
    cJSON_DeleteItemFromObjectCaseSensitive(item, "data");
    status = one_item(e, item, msg, sizeof(msg));
    check(status == 400 && starts_with(msg, "109: Field 'data' on type 'Envelope'"),
          "no data: 400 (got %ld %s)", status, msg);
    item = trace(K1, "LWI-V", "ScenarioStarted", t);
    cJSON_DeleteItemFromObjectCaseSensitive(item, "iKey");
    status = one_item(e, item, msg, sizeof(msg));
    check(status == 400 && starts_with(msg, "109: Field 'iKey' on type 'Envelope'"),
          "no iKey: 400 (got %ld %s)", status, msg);

    /* The 64 kB item limit: properties within their own limits, the item past 65536 bytes. */
    item = trace(K1, "LWI-V", "ScenarioStarted", t);
    value = repeat("p", 8000);
    for (int i = 0; i < 9; i++) {
        char name[16];
        snprintf(name, sizeof(name), "Part%d", i);
        set_string(props_of(item), name, value);
    }
    free(value);
    status = one_item(e, item, msg, sizeof(msg));
    check(status == 400 && starts_with(msg, "The item is too large. Expected: at most 65536 "
                                            "bytes"),
          "an item of about 73 kB: 400 (got %ld %s)", status, msg);
    item = trace(K1, "LWI-V", "ScenarioStarted", t);
    value = repeat("p", 8000);
    for (int i = 0; i < 7; i++) {
        char name[16];
        snprintf(name, sizeof(name), "Part%d", i);
        set_string(props_of(item), name, value);
    }
    free(value);
    status = one_item(e, item, msg, sizeof(msg));
    check(status == 200, "an item of about 57 kB: accepted (got %ld %s)", status, msg);
}

static void test_bodies(const emulator_t *e)
{
    static const char garbage[] = "this is not gzip";
    const char *gzip[] = {"Content-Encoding: gzip", NULL};
    const char *brotli[] = {"Content-Encoding: br", NULL};
    response_t r;

    r = track_raw(e, garbage, sizeof(garbage) - 1, gzip);
    check(r.status == 400 && strstr(json_str(error_at(&r, 0), "message"), "not valid gzip"),
          "Content-Encoding gzip on a body that is not: 400 (got %ld %s)", r.status, r.body);
    response_fini(&r);
    r = track_raw(e, "{}", 2, brotli);
    check(r.status == 415, "Content-Encoding br: 415 (got %ld %s)", r.status, r.body);
    response_fini(&r);
    r = track_raw(e, "[{\"iKey\":1},", 12, NULL);
    check(r.status == 400 && json_int(r.json, "itemsReceived") == 0,
          "a JSON array cut short: 400 (got %ld %s)", r.status, r.body);
    response_fini(&r);
    r = track_raw(e, "[{\"iKey\":1,}]", 13, NULL);
    check(r.status == 400 && strstr(r.body, "not valid JSON"),
          "a JSON array with a broken element: 400 (got %ld %s)", r.status, r.body);
    response_fini(&r);
    r = track_raw(e, "", 0, NULL);
    check(r.status == 400 && strstr(r.body, "no telemetry items"),
          "an empty body: 400 (got %ld %s)", r.status, r.body);
    response_fini(&r);

    /* In a JSON stream a bad line is one bad item. */
    cJSON *item = trace(K1, "LWI-B", "ScenarioStarted", now_us());
    char *good = cJSON_PrintUnformatted(item);
    cJSON_Delete(item);
    size_t len = strlen(good);
    char *body = malloc(len + 32);
    sprintf(body, "%s\nnot json at all\n", good);
    r = track_raw(e, body, strlen(body), NULL);
    check(r.status == 206 && json_int(error_at(&r, 0), "index") == 1 &&
              json_int(error_at(&r, 0), "statusCode") == 400,
          "x-json-stream with one line that is not JSON: 206, index 1 (got %ld %s)", r.status,
          r.body);
    response_fini(&r);
    free(body);
    free(good);

    /* Past --max-body (1 MiB): announced, and sent in chunks. */
    size_t big = 1536 * 1024;
    char *blob = malloc(big);
    memset(blob, ' ', big);
    r = track_raw(e, blob, big, NULL);
    check(r.status == 413, "a body of 1.5 MiB: 413 (got %ld %s)", r.status, r.body);
    response_fini(&r);
    const char *chunked[] = {"Transfer-Encoding: chunked", NULL};
    r = track_raw(e, blob, big, chunked);
    check(r.status == 413, "a chunked body of 1.5 MiB: 413 (got %ld %s)", r.status, r.body);
    response_fini(&r);
    free(blob);

    r = get(e->base, "/v2.1/track");
    check(r.status == 405, "GET /v2.1/track: 405 (got %ld)", r.status);
    response_fini(&r);
    r = get(e->base, "/nowhere");
    check(r.status == 404, "an unknown path: 404 (got %ld)", r.status);
    response_fini(&r);
}

static void test_store(const emulator_t *e)
{
    char url[128];
    snprintf(url, sizeof(url), "%s/api/items", e->base);
    response_t r = http("DELETE", url, NULL, 0, NULL);
    check(r.status == 200 && json_int(r.json, "deleted") > 0, "DELETE /api/items (got %ld %s)",
          r.status, r.body);
    response_fini(&r);

    /* Duplicates: the same envelope texts twice. */
    int64_t t = now_us();
    for (int round = 0; round < 2; round++) {
        r = track(e, batch_of(trace(K1, "LWI-D", "ScenarioStarted", t),
                              trace(K1, "LWI-D", "ScenarioCompleted", t + 500000), NULL),
                  STREAM | GZIP);
        response_fini(&r);
    }
    r = get(e->base, "/api/stats");
    check(json_int(r.json, "duplicates") == 2 && json_int(r.json, "stored") == 4 &&
              json_int(r.json, "itemsAccepted") == 4 && json_int(r.json, "requests") == 2,
          "the same two items sent twice: 2 duplicates, 4 stored (got %s)", r.body);
    response_fini(&r);

    /* A conversation sent out of order comes back by time, with the Traces columns. */
    static const char *const columns[] = {
        "timestamp", "message", "customDimensions", "operation_Name", "operation_Id",
        "operation_ParentId", "session_Id", "user_Id", "severityLevel", "itemType",
        "cloud_RoleName", "cloud_RoleInstance", "sdkVersion", "itemCount",
    };
    int64_t t0 = (t / 1000) * 1000 - SECONDS(60); /* whole milliseconds */
    r = track(e, batch_of(trace(K1, "LWI-T", "ScenarioCompleted", t0 + SECONDS(2)),
                          trace(K1, "LWI-T", "ScenarioStarted", t0),
                          trace(K1, "LWI-OTHER", "ScenarioStarted", t0),
                          trace(K2, "LWI-T", "ScenarioFailed", t0 + SECONDS(1)), NULL),
              ARRAY);
    response_fini(&r);
    r = get(e->base, "/api/traces?conversation=LWI-T");
    static const char *const order[] = {"ScenarioStarted", "ScenarioFailed", "ScenarioCompleted"};
    bool rows_ok = cJSON_GetArraySize(r.json) == 3;
    for (int i = 0; rows_ok && i < 3; i++) {
        const cJSON *row = cJSON_GetArrayItem(r.json, i), *col;
        char ts[40];
        int n = 0;
        cJSON_ArrayForEach(col, row) n++;
        cd_time_format_utc(t0 + SECONDS(i), 3, ts, sizeof(ts));
        for (size_t c = 0; c < CD_ARRAY_LEN(columns); c++)
            rows_ok &= cJSON_HasObjectItem(row, columns[c]);
        const cJSON *dims = cJSON_GetObjectItemCaseSensitive(row, "customDimensions");
        rows_ok &= n == (int)CD_ARRAY_LEN(columns) && strcmp(json_str(row, "timestamp"), ts) == 0 &&
                   strcmp(json_str(row, "message"), order[i]) == 0 &&
                   strcmp(json_str(row, "itemType"), "trace") == 0 &&
                   strcmp(json_str(dims, "LiveWorkItemID"), "LWI-T") == 0 &&
                   strcmp(json_str(dims, "ChannelType"), "voice") == 0 &&
                   strcmp(json_str(row, "operation_Name"), "QueueAssignment") == 0 &&
                   strcmp(json_str(row, "operation_Id"), "4bf92f3577b34da6a3ce929d0e0e4736") ==
                       0 &&
                   strcmp(json_str(row, "operation_ParentId"), "LWI-T") == 0 &&
                   strcmp(json_str(row, "session_Id"), "session-1") == 0 &&
                   strcmp(json_str(row, "user_Id"), "0") == 0 &&
                   strcmp(json_str(row, "cloud_RoleName"), "convdiag") == 0 &&
                   strcmp(json_str(row, "cloud_RoleInstance"), "host-1") == 0 &&
                   strcmp(json_str(row, "sdkVersion"), "convdiag:0.1.0") == 0 &&
                   json_int(row, "itemCount") == 1 && json_int(row, "severityLevel") == 0;
    }
    check(r.status == 200 && rows_ok,
          "/api/traces: 3 rows by time with the 14 Traces columns and their values (got %s)",
          r.body);

    response_fini(&r);
    r = get(e->base, "/api/traces?conversation=LWI-UNKNOWN");
    check(r.status == 200 && cJSON_IsArray(r.json) && cJSON_GetArraySize(r.json) == 0,
          "/api/traces of an unknown conversation: [] (got %ld %s)", r.status, r.body);
    response_fini(&r);
    r = get(e->base, "/api/traces");
    check(r.status == 400, "/api/traces without ?conversation: 400 (got %ld)", r.status);
    response_fini(&r);

    r = get(e->base, "/api/conversations");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(r.json, "conversations"), *c;
    const cJSON *found = NULL;
    cJSON_ArrayForEach(c, list) {
        if (strcmp(json_str(c, "LiveWorkItemID"), "LWI-T") == 0)
            found = c;
    }
    char first[40], last[40];
    cd_time_format_utc(t0, 3, first, sizeof(first));
    cd_time_format_utc(t0 + SECONDS(2), 3, last, sizeof(last));
    check(json_int(r.json, "total") == 3 && found && json_int(found, "count") == 3 &&
              strcmp(json_str(found, "first"), first) == 0 &&
              strcmp(json_str(found, "last"), last) == 0,
          "/api/conversations: LWI-T with 3 traces, first and last (got %s)", r.body);
    response_fini(&r);
    r = get(e->base, "/api/conversations?q=other");
    check(json_int(r.json, "total") == 1, "/api/conversations?q=other: one match (got %s)", r.body);
    response_fini(&r);

    /* A sampled item stands for 100 / sampleRate of its kind. */
    cJSON *sampled = trace(K1, "LWI-SAMPLED", "ScenarioStarted", t0);
    cJSON_AddNumberToObject(sampled, "sampleRate", 25);
    r = track(e, batch_of(sampled, NULL), STREAM);
    response_fini(&r);
    r = get(e->base, "/api/traces?conversation=LWI-SAMPLED");
    check(json_int(cJSON_GetArrayItem(r.json, 0), "itemCount") == 4,
          "/api/traces: sampleRate 25 makes itemCount 4 (got %s)", r.body);
    response_fini(&r);
}

static void test_page(const emulator_t *e)
{
    static const char *const headers[] = {
        "<th>timestamp [UTC]</th>", "<th>message</th>", "<th>customDimensions</th>",
        "<th>operation_Name</th>", "<th>operation_Id</th>", "<th>operation_ParentId</th>",
        "<th>session_Id</th>", "<th>user_Id</th>", "<th>severityLevel</th>", "<th>itemType</th>",
        "<th>cloud_RoleName</th>", "<th>cloud_RoleInstance</th>", "<th>sdkVersion</th>",
        "<th>itemCount</th>",
    };
    response_t r = get(e->base, "/");
    bool all = true;
    for (size_t i = 0; i < CD_ARRAY_LEN(headers); i++)
        all &= strstr(r.body, headers[i]) != NULL;
    check(r.status == 200 && starts_with(r.content_type, "text/html") && all,
          "GET /: an HTML page with the Traces table's headers (got %ld, %s)", r.status,
          r.content_type);
    check(!strstr(r.body, "http://") && !strstr(r.body, "https://") && !strstr(r.body, " src=") &&
              !strstr(r.body, "<link"),
          "the page loads nothing from elsewhere");
    response_fini(&r);
}

/* A track request of two items under a request fault: the code, and Retry-After. */
static void expect_request_fault(const emulator_t *e, int code, const char *format,
                                 long retry_after, const char *how)
{
    int64_t sent = now_us();
    response_t r = track(e, batch_of(trace(K1, "LWI-F", "ScenarioStarted", sent),
                                     trace(K1, "LWI-F", "ScenarioCompleted", sent), NULL),
                         STREAM);
    bool items = error_count(&r) == 2 && json_int(error_at(&r, 0), "statusCode") == code &&
                 json_int(error_at(&r, 1), "statusCode") == code &&
                 json_int(r.json, "itemsAccepted") == 0;
    bool header;
    if (strcmp(format, "date") == 0) {
        time_t at = curl_getdate(r.retry_after, NULL);
        long ahead = (long)(at - (time_t)(sent / 1000000));
        header = strstr(r.retry_after, " GMT") && ahead >= retry_after - 2 &&
                 ahead <= retry_after + 2;
    } else {
        char want[32];
        snprintf(want, sizeof(want), "%ld", retry_after);
        header = strcmp(r.retry_after, want) == 0;
    }
    check(r.status == code && items && header,
          "%s: %d, every item %d, Retry-After %s %ld s (got %ld, Retry-After '%s', %s)", how,
          code, code, format, retry_after, r.status, r.retry_after, r.body);
    response_fini(&r);
}

static void test_control_faults(const emulator_t *e)
{
    static const struct {
        int code;
        const char *format;
    } faults[] = {{429, "seconds"}, {429, "date"}, {439, "seconds"}, {439, "date"},
                  {500, "seconds"}, {500, "date"}, {503, "seconds"}, {503, "date"}};
    char json[256], how[64];

    for (size_t i = 0; i < CD_ARRAY_LEN(faults); i++) {
        snprintf(json, sizeof(json),
                 "{\"request_fault_code\":%d,\"retry_after\":7,\"retry_after_format\":\"%s\"}",
                 faults[i].code, faults[i].format);
        control(e->base, json);
        snprintf(how, sizeof(how), "/control %d", faults[i].code);
        expect_request_fault(e, faults[i].code, faults[i].format, 7, how);
    }
    response_t r = get(e->base, "/control");
    check(json_int(r.json, "request_fault_code") == 503 && json_int(r.json, "retry_after") == 7 &&
              strcmp(json_str(r.json, "retry_after_format"), "date") == 0,
          "GET /control shows the switches (got %s)", r.body);
    response_fini(&r);

    /* Half the requests, drawn from the seed: both answers show up. */
    control(e->base, "{\"reset\":true,\"request_fault_code\":503,\"request_fault_share\":0.5}");
    int hit = 0, ok = 0;
    for (int i = 0; i < 24; i++) {
        r = track(e, batch_of(trace(K1, "LWI-F", "ScenarioStarted", now_us()), NULL), STREAM);
        hit += r.status == 503;
        ok += r.status == 200;
        response_fini(&r);
    }
    check(hit > 0 && ok > 0 && hit + ok == 24,
          "request_fault_share 0.5: some 503, some 200 (got %d and %d)", hit, ok);

    /* Item faults: a share of the items, in a 206. */
    control(e->base, "{\"reset\":true,\"item_fault_code\":429,\"item_fault_share\":0.5}");
    cJSON *batch = cJSON_CreateArray();
    for (int i = 0; i < 20; i++)
        cJSON_AddItemToArray(batch, trace(K1, "LWI-F", "ScenarioStarted", now_us()));
    r = track(e, batch, ARRAY | GZIP);
    int refused = error_count(&r);
    bool all_429 = true;
    for (int i = 0; i < refused; i++)
        all_429 &= json_int(error_at(&r, i), "statusCode") == 429;
    check(r.status == 206 && refused > 0 && refused < 20 && all_429 &&
              json_int(r.json, "itemsAccepted") + refused == 20,
          "item_fault_code 429, share 0.5: 206 with some items 429 (got %ld, %d refused)",
          r.status, refused);
    response_fini(&r);
    control(e->base, "{\"item_fault_code\":408,\"item_fault_share\":1}");
    r = track(e, batch_of(trace(K1, "LWI-F", "ScenarioStarted", now_us()),
                          trace(K1, "LWI-F", "ScenarioStarted", now_us()), NULL),
              STREAM);
    check(r.status == 408 && error_count(&r) == 2 && json_int(error_at(&r, 1), "statusCode") == 408,
          "item_fault_code 408 on every item: the first item's status, 408 (got %ld %s)",
          r.status, r.body);
    response_fini(&r);

    /* Delay: the track answer waits, the rest does not. */
    control(e->base, "{\"reset\":true,\"delay_ms\":400}");
    r = track(e, batch_of(trace(K1, "LWI-F", "ScenarioStarted", now_us()), NULL), STREAM);
    check(r.status == 200 && r.seconds >= 0.4, "delay_ms 400: answered after %.3f s", r.seconds);
    response_fini(&r);
    r = get(e->base, "/api/stats");
    check(r.status == 200 && r.seconds < 0.3, "delay_ms leaves /api/stats alone (%.3f s)",
          r.seconds);
    response_fini(&r);
    control(e->base, "{\"reset\":true}");

    /* Bad switches are refused whole. */
    static const char *const bad[] = {"{\"request_fault_code\":404}", "{\"bogus\":1}",
                                      "{\"item_fault_share\":1.5}", "not json",
                                      "{\"retry_after_format\":\"weeks\"}"};
    for (size_t i = 0; i < CD_ARRAY_LEN(bad); i++) {
        r = post_json(e->base, "/control", bad[i]);
        check(r.status == 400, "POST /control %s: 400 (got %ld %s)", bad[i], r.status, r.body);
        response_fini(&r);
    }
}

/* A track request of two items, with the Authorization header given (NULL: none). */
static response_t track_auth(const emulator_t *e, const char *authorization)
{
    char header[EMU_TOKEN_TEST_MAX + 64], url[256];
    const char *headers[] = {"Content-Type: application/x-json-stream", NULL, NULL};
    size_t len;
    char *body = body_of(batch_of(trace(K1, "LWI-AUTH", "ScenarioStarted", now_us()),
                                  trace(K1, "LWI-AUTH", "ScenarioCompleted", now_us()), NULL),
                         STREAM, &len);
    if (authorization) {
        snprintf(header, sizeof(header), "Authorization: %s", authorization);
        headers[1] = header;
    }
    snprintf(url, sizeof(url), "%s/v2.1/track", e->base);
    response_t r = http("POST", url, body, len, headers);
    free(body);
    return r;
}

/* 401 with both items refused with 401, as the service answers a missing token. */
static bool is_unauthorized(const response_t *r)
{
    return r->status == 401 && json_int(r->json, "itemsReceived") == 2 &&
           json_int(r->json, "itemsAccepted") == 0 && error_count(r) == 2 &&
           json_int(error_at(r, 0), "statusCode") == 401 &&
           json_int(error_at(r, 1), "statusCode") == 401 &&
           json_int(error_at(r, 1), "index") == 1 &&
           starts_with(r->content_type, "application/json");
}

/* A count under /api/stats: "responses" or "refusedByStatus", by status. */
static long stat_by_status(const emulator_t *e, const char *group, const char *status)
{
    response_t r = get(e->base, "/api/stats");
    long n = json_int(cJSON_GetObjectItemCaseSensitive(r.json, group), status);
    response_fini(&r);
    return n < 0 ? 0 : n;
}

static void test_bearer(const emulator_t *e)
{
    static const char token[] = "eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJtb25pdG9yIn0.c2lnLUFBQQ";
    char json[256], header[256];
    response_t r;

    long responses_before = stat_by_status(e, "responses", "401");
    long refused_before = stat_by_status(e, "refusedByStatus", "401");
    snprintf(json, sizeof(json), "{\"bearer\":\"%s\"}", token);
    control(e->base, json);
    r = get(e->base, "/control");
    check(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r.json, "bearer")) &&
              !strstr(r.body, token),
          "GET /control says a bearer token is required, without showing it (got %s)", r.body);
    response_fini(&r);

    static const char *const refused[] = {
        NULL,
        "Bearer wrong-token",
        "Basic dXNlcjpwYXNz",
        "bearer eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJtb25pdG9yIn0.c2lnLUFBQQ",
        "Bearer eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJtb25pdG9yIn0.c2lnLUFBQ",
        "Bearer eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJtb25pdG9yIn0.c2lnLUFBQQx",
    };
    for (size_t i = 0; i < CD_ARRAY_LEN(refused); i++) {
        r = track_auth(e, refused[i]);
        check(is_unauthorized(&r) && !r.retry_after[0],
              "bearer required, Authorization %s: 401, both items 401, no Retry-After "
              "(got %ld %s)",
              refused[i] ? refused[i] : "absent", r.status, r.body);
        response_fini(&r);
    }
    check(stat_by_status(e, "responses", "401") - responses_before == 6 &&
              stat_by_status(e, "refusedByStatus", "401") - refused_before == 12,
          "/api/stats counts the 401 answers (6) and their items (12)");

    snprintf(header, sizeof(header), "Bearer %s", token);
    r = track_auth(e, header);
    check(r.status == 200 && json_int(r.json, "itemsAccepted") == 2,
          "Authorization: Bearer with the token: 200, both accepted (got %ld %s)", r.status,
          r.body);
    response_fini(&r);

    /* Authentication comes before the body is read. */
    const char *gz[] = {"Content-Encoding: gzip", NULL};
    r = track_raw(e, "not gzip at all", 15, gz);
    check(r.status == 401 && json_int(r.json, "itemsReceived") == 0,
          "an unreadable body without the token: 401, not 400 (got %ld %s)", r.status, r.body);
    response_fini(&r);

    /* reset turns the faults off, not the authentication. */
    control(e->base, "{\"reset\":true}");
    r = track_auth(e, NULL);
    check(is_unauthorized(&r), "after reset the token is still required (got %ld)", r.status);
    response_fini(&r);

    /* Switched to another token: the old one is refused. */
    control(e->base, "{\"bearer\":\"second-token\"}");
    r = track_auth(e, header);
    check(is_unauthorized(&r), "switched to another token: the first one gets 401 (got %ld)",
          r.status);
    response_fini(&r);
    r = track_auth(e, "Bearer second-token");
    check(r.status == 200, "switched to another token: it is taken (got %ld)", r.status);
    response_fini(&r);

    static const char *const bad[] = {"{\"bearer\":\"two words\"}", "{\"bearer\":42}",
                                      "{\"bearer\":true}", "{\"bearer\":\"tab\\there\"}"};
    for (size_t i = 0; i < CD_ARRAY_LEN(bad); i++) {
        r = post_json(e->base, "/control", bad[i]);
        check(r.status == 400 && !strstr(r.body, "words") && !strstr(r.body, "there"),
              "POST /control %s: 400, the value not quoted (got %ld %s)", bad[i], r.status,
              r.body);
        response_fini(&r);
    }
    /* At most EMU_BEARER_MAX bytes. */
    for (size_t len = EMU_TOKEN_TEST_MAX; len <= EMU_TOKEN_TEST_MAX + 1; len++) {
        char *k = repeat("k", len), *body = NULL;
        if (asprintf(&body, "{\"bearer\":\"%s\"}", k) < 0)
            body = NULL;
        r = post_json(e->base, "/control", body ? body : "");
        check(r.status == (len == EMU_TOKEN_TEST_MAX ? 200 : 400),
              "POST /control with a token of %zu bytes: %s (got %ld)", len,
              len == EMU_TOKEN_TEST_MAX ? "taken" : "400", r.status);
        response_fini(&r);
        free(body);
        free(k);
    }

    /* "" turns authentication off. */
    control(e->base, "{\"bearer\":\"\"}");
    r = track_auth(e, NULL);
    check(r.status == 200, "bearer \"\": no Authorization needed again (got %ld)", r.status);
    response_fini(&r);
    r = get(e->base, "/control");
    check(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(r.json, "bearer")),
          "GET /control: bearer false (got %s)", r.body);
    response_fini(&r);
}

static long track_status(const emulator_t *e, CURLcode *rc)
{
    response_t r = track(e, batch_of(trace(K1, "LWI-DOWN", "ScenarioStarted", now_us()), NULL),
                         STREAM);
    long status = r.status;
    *rc = r.rc;
    response_fini(&r);
    return status;
}

static long items_accepted(const emulator_t *e)
{
    response_t r = get(e->control, "/api/stats");
    long n = json_int(r.json, "itemsAccepted");
    response_fini(&r);
    return n;
}

typedef struct {
    const emulator_t *e;
    long status;
    double seconds;
} async_t;

static void *track_async(void *arg)
{
    async_t *a = arg;
    a->status = track_status(a->e, &(CURLcode){0});
    return NULL;
}

static void *down_async(void *arg)
{
    async_t *a = arg;
    response_t r = post_json(a->e->control, "/control", "{\"down\":true}");
    a->status = r.status;
    response_fini(&r);
    return NULL;
}

static void wait_up(const emulator_t *e, const char *what)
{
    CURLcode rc;
    long status = 0;
    control(e->control, "{\"reset\":true,\"down\":false}");
    for (int i = 0; i < 100 && (status = track_status(e, &rc)) != 200; i++)
        sleep_ms(50);
    check(status == 200, "%s: back up (got %ld)", what, status);
}

/*
 * Going down never makes an exporter send items twice: a request being
 * handled is answered (and its items kept), and a request that arrives on a
 * connection kept alive from before is cut unread (and nothing kept), so the
 * client's view of what was taken is always the emulator's.
 */
static void test_down_exactly_once(const emulator_t *e)
{
    pthread_t t;
    async_t in_flight = {.e = e}, down = {.e = e};

    control(e->control, "{\"reset\":true,\"delay_ms\":5000}");
    long before = items_accepted(e);
    pthread_create(&t, NULL, track_async, &in_flight);
    sleep_ms(300);
    control(e->control, "{\"down\":true}");
    int64_t t0 = cd_mono_us();
    pthread_join(t, NULL);
    double waited = (double)(cd_mono_us() - t0) / 1e6;
    check(in_flight.status == 200 && waited < 1.0,
          "down: a request in flight is answered at once (got %ld after %.3f s)",
          in_flight.status, waited);
    check(items_accepted(e) == before + 1, "down: the answered request's item is kept (%ld -> %ld)",
          before, items_accepted(e));
    wait_up(e, "after a request in flight");

    CURL *kept = curl_easy_init();
    response_t r = track_on(kept, e, "/v2.1/track",
                            batch_of(trace(K1, "LWI-DOWN", "ScenarioStarted", now_us()), NULL),
                            STREAM);
    check(r.status == 200, "a connection kept alive: first request 200 (got %ld)", r.status);
    response_fini(&r);
    before = items_accepted(e);
    pthread_create(&t, NULL, down_async, &down);
    sleep_ms(100);
    r = track_on(kept, e, "/v2.1/track",
                 batch_of(trace(K1, "LWI-DOWN", "ScenarioStarted", now_us()), NULL), STREAM);
    pthread_join(t, NULL);
    check(down.status == 200, "down asked while a connection is kept alive (got %ld)",
          down.status);
    check(r.status != 200, "down: a request on a kept-alive connection is not answered (got %ld)",
          r.status);
    check(items_accepted(e) == before,
          "down: nothing kept from a request on a kept-alive connection (%ld -> %ld)", before,
          items_accepted(e));
    response_fini(&r);
    curl_easy_cleanup(kept);
    wait_up(e, "after a kept-alive connection was cut");
}

/* errno of binding a socket of our own to the emulator's port (0 if it
 * could), as a server would: SO_REUSEADDR, so that connections in TIME_WAIT
 * do not count. */
static int bind_errno(const emulator_t *e)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), rc = 0, one = 1;

    sa.sin_port = htons((uint16_t)atoi(strrchr(e->base, ':') + 1));
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        rc = errno;
    if (fd >= 0)
        close(fd);
    return rc;
}

static void test_down(const emulator_t *e)
{
    CURLcode rc;
    long status;

    /* An earlier outage left the same line: this one's is the next. */
    int closed = log_count(e, "ingestion port closed");
    control(e->base, "{\"down\":true}");
    check(log_has_more(e, "ingestion port closed", closed), "down: the log says the port is closed");
    status = track_status(e, &rc);
    check(rc == CURLE_COULDNT_CONNECT, "down: connections are refused (curl %d, status %ld)", rc,
          status);
    int bound = bind_errno(e);
    check(bound == EADDRINUSE, "down: the port stays the emulator's, no other socket binds it (%s)",
          bound ? strerror(bound) : "bound");
    response_t r = get(e->control, "/control");
    check(r.status == 200 && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r.json, "down")),
          "down: the control port still answers, down true (got %ld %s)", r.status, r.body);
    response_fini(&r);
    control(e->control, "{\"down\":false}");
    for (int i = 0; i < 100 && (status = track_status(e, &rc)) != 200; i++)
        sleep_ms(50);
    check(status == 200, "back up on request through the control port (got %ld)", status);

    control(e->base, "{\"down_for\":1}");
    sleep_ms(200);
    status = track_status(e, &rc);
    check(rc == CURLE_COULDNT_CONNECT, "down_for 1: refused at first (curl %d)", rc);
    sleep_ms(1300);
    for (int i = 0; i < 40 && (status = track_status(e, &rc)) != 200; i++)
        sleep_ms(50);
    check(status == 200, "down_for 1: back by itself (got %ld)", status);

    r = post_json(e->base, "/control", "{\"down\":true}");
    check(r.status == 200, "down again (got %ld)", r.status);
    response_fini(&r);
}

static void test_log(const emulator_t *e)
{
    char *log = read_file(e->log);
    check(!strstr(log, K1) && !strstr(log, K2) && !strstr(log, K3) &&
              !strstr(log, "0fdcec700ce5408589d99ae8ead9af66"),
          "the log never holds an instrumentation key in full, with or without dashes");
    check(strstr(log, "0fdcec70****") && strstr(log, "9d4c0a11****"),
          "the log shows keys by their first 8 characters");
    check(strstr(log, "level=warn mod=track") && strstr(log, "Invalid instrumentation key"),
          "refusals are logged in logfmt");
    check(!strstr(log, "eyJ0eXAiOiJKV1QifQ") && !strstr(log, "second-token") &&
              !strstr(log, "kkkkkkkkkkkkkkkk") && !strstr(log, "wrong-token") &&
              !strstr(log, "dXNlcjpwYXNz"),
          "the log never holds a bearer token, configured or received");
    check(strstr(log, "status=401") && strstr(log, "reason=no Authorization header") &&
              strstr(log, "reason=the bearer token is not the one required") &&
              strstr(log, "bearer=required") && strstr(log, "bearer=off"),
          "401s are logged with their reason, and the control line says bearer=required/off");
    free(log);
}

/* ---- command-line faults --------------------------------------------------------------- */

/* A batch of n traces of conversation lwi, as one body. */
static cJSON *traces(const char *lwi, int n)
{
    cJSON *batch = cJSON_CreateArray();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(batch, trace(K1, lwi, "ScenarioStarted", now_us()));
    return batch;
}

/*
 * What the real service answers besides its verdict on items: a redirect to
 * another endpoint (kept for a max-age, or a loop), credentials refused, an
 * answer cut short or replaced by a proxy's page, and its throttle by rate.
 */
static void test_service_answers(void)
{
    emulator_t e;
    char alt[64];
    if (!check(emulator_start(&e, 1, "--redirect-listen", "127.0.0.1:0", NULL),
               "started with --redirect-listen")) {
        stop_and_check(&e, "--redirect-listen");
        return;
    }
    char *log = read_file(e.log);
    bool have_alt = port_from_log(log, "redirect", alt, sizeof(alt));
    free(log);
    check(have_alt, "the start line names the redirect port");

    control(e.control, "{\"redirect\":307,\"redirect_max_age\":30}");
    response_t r = track(&e, traces("LWI-REDIR", 2), STREAM);
    char want[400];
    snprintf(want, sizeof(want), "%s/v2.1/track", alt);
    check(r.status == 307 && strcmp(r.location, want) == 0 &&
              strcmp(r.cache_control, "max-age=30") == 0 && items_accepted(&e) == 0,
          "redirect 307: Location %s, max-age=30, nothing kept (got %ld '%s' '%s')", want,
          r.status, r.location, r.cache_control);
    response_fini(&r);
    emulator_t moved = e;
    snprintf(moved.base, sizeof(moved.base), "%s", alt);
    r = track(&moved, traces("LWI-REDIR", 2), STREAM);
    check(r.status == 200 && items_accepted(&e) == 2,
          "the redirect port takes the items, never redirecting (got %ld, %ld kept)", r.status,
          items_accepted(&e));
    response_fini(&r);
    control(e.control, "{\"redirect\":308,\"redirect_to\":\"self\",\"redirect_max_age\":\"none\"}");
    r = track(&e, traces("LWI-REDIR", 1), STREAM);
    snprintf(want, sizeof(want), "%s/v2.1/track", e.base);
    check(r.status == 308 && strcmp(r.location, want) == 0 && !r.cache_control[0],
          "redirect 308 to itself (a loop), no Cache-Control (got %ld '%s' '%s')", r.status,
          r.location, r.cache_control);
    response_fini(&r);
    control(e.control, "{\"reset\":true}");

    static const struct {
        const char *fault;
        long status;
        const char *message;
    } auth[] = {
        {"401", 401, "Unauthorized"},
        {"403", 403, "Forbidden"},
        {"unsupported", 400, "Authentication not supported"},
    };
    for (size_t i = 0; i < CD_ARRAY_LEN(auth); i++) {
        char json[64];
        snprintf(json, sizeof(json), "{\"auth_fault\":\"%s\"}", auth[i].fault);
        control(e.control, json);
        r = track(&e, traces("LWI-AUTH", 2), STREAM | GZIP);
        const char *m = json_str(error_at(&r, 1), "message");
        check(r.status == auth[i].status && error_count(&r) == 2 &&
                  json_int(error_at(&r, 1), "statusCode") == auth[i].status && m &&
                  starts_with(m, auth[i].message) && items_accepted(&e) == 2,
              "auth_fault %s: %ld, every item '%s...' (got %ld %s)", auth[i].fault,
              auth[i].status, auth[i].message, r.status, r.body);
        response_fini(&r);
    }
    control(e.control, "{\"auth_fault\":\"off\",\"body_fault\":\"cut\"}");
    r = track(&e, traces("LWI-BODY", 3), STREAM);
    check(r.status == 200 && r.body[0] == '{' && !r.json && items_accepted(&e) == 2,
          "body_fault cut: 200 whose JSON stops short, none kept (got %ld '%s')", r.status,
          r.body);
    response_fini(&r);
    control(e.control, "{\"body_fault\":\"html\"}");
    r = track(&e, traces("LWI-BODY", 3), STREAM);
    check(r.status == 200 && starts_with(r.content_type, "text/html") &&
              starts_with(r.body, "<!DOCTYPE html>") && items_accepted(&e) == 2,
          "body_fault html: 200 with a page, none kept (got %ld '%s')", r.status,
          r.content_type);
    response_fini(&r);

    /* 5 items/s over 2 s: room for 10. */
    control(e.control, "{\"body_fault\":\"off\",\"throttle_rate\":5,\"throttle_window\":2}");
    r = track(&e, traces("LWI-THROTTLE", 8), STREAM);
    check(r.status == 200, "throttle: 8 of 10 allowed pass (got %ld)", r.status);
    response_fini(&r);
    r = track(&e, traces("LWI-THROTTLE", 4), STREAM);
    long ra = atol(r.retry_after);
    check(r.status == 429 && ra >= 1 && ra <= 2 && error_count(&r) == 4 &&
              json_int(error_at(&r, 0), "statusCode") == 429 && items_accepted(&e) == 10,
          "throttle: 4 more, 429 with Retry-After 1-2 s, none kept (got %ld '%s', %ld kept)",
          r.status, r.retry_after, items_accepted(&e));
    response_fini(&r);
    r = track(&e, traces("LWI-THROTTLE", 2), STREAM);
    check(r.status == 200, "throttle: the 2 that still fit pass (got %ld)", r.status);
    response_fini(&r);
    sleep_ms(2100);
    r = track(&e, traces("LWI-THROTTLE", 9), STREAM);
    check(r.status == 200, "throttle: room again once the window has moved on (got %ld)",
          r.status);
    response_fini(&r);
    stop_and_check(&e, "the service's answers");
}

static void test_command_line(void)
{
    static const struct {
        const char *code, *format, *retry_after;
        long expect_retry;
    } faults[] = {
        {"429", "seconds", "3", 3},
        {"439", "date", "5", 5},
        {"500", "seconds", NULL, 1}, /* the default: 1 second */
        {"503", "date", "4", 4},
    };
    for (size_t i = 0; i < CD_ARRAY_LEN(faults); i++) {
        emulator_t e;
        char how[64];
        bool up = faults[i].retry_after
                      ? emulator_start(&e, 0, "--request-fault-code", faults[i].code,
                                       "--retry-after-format", faults[i].format, "--retry-after",
                                       faults[i].retry_after, NULL)
                      : emulator_start(&e, 0, "--request-fault-code", faults[i].code,
                                       "--retry-after-format", faults[i].format, NULL);
        snprintf(how, sizeof(how), "--request-fault-code %s", faults[i].code);
        if (check(up, "started with %s", how))
            expect_request_fault(&e, atoi(faults[i].code), faults[i].format,
                                 faults[i].expect_retry, how);
        stop_and_check(&e, how);
    }

    emulator_t e;
    if (check(emulator_start(&e, 0, "--item-fault-code", "503", "--item-fault-share", "0.5",
                             "--seed", "3", "--delay-ms", "300", NULL),
              "started with --item-fault-code 503 --item-fault-share 0.5 --delay-ms 300")) {
        cJSON *batch = cJSON_CreateArray();
        for (int i = 0; i < 16; i++)
            cJSON_AddItemToArray(batch, trace(K1, "LWI-CLI", "ScenarioStarted", now_us()));
        response_t r = track(&e, batch, STREAM | GZIP);
        int refused = error_count(&r);
        check(r.status == 206 && refused > 0 && refused < 16 &&
                  json_int(error_at(&r, 0), "statusCode") == 503 && r.seconds >= 0.3,
              "206 with some items 503, after %.3f s (got %ld, %d refused)", r.seconds, r.status,
              refused);
        response_fini(&r);
    }
    stop_and_check(&e, "--item-fault-code");

    if (check(emulator_start(&e, 0, "--down-for", "2", NULL), "started with --down-for 2")) {
        CURLcode rc;
        long status;
        check(log_has(&e, "ingestion port closed"), "--down-for: the port is closed at start");
        status = track_status(&e, &rc);
        check(rc == CURLE_COULDNT_CONNECT, "--down-for: refused (curl %d, status %ld)", rc, status);
        for (int i = 0; i < 100 && (status = track_status(&e, &rc)) != 200; i++)
            sleep_ms(50);
        check(status == 200 && log_has(&e, "ingestion port open again"),
              "--down-for 2: open after 2 s (got %ld)", status);
    }
    stop_and_check(&e, "--down-for");

    /* The same seed and the same traffic: the same requests fail. */
    char pattern[2][33] = {{0}};
    for (int run = 0; run < 2; run++) {
        bool up = emulator_start(&e, 0, "--seed", "11", "--request-fault-code", "503",
                                 "--request-fault-share", "0.5", NULL);
        check(up, "started with --seed 11 --request-fault-share 0.5 (run %d)", run + 1);
        for (int i = 0; up && i < 32; i++) {
            response_t r =
                track(&e, batch_of(trace(K1, "LWI-SEED", "ScenarioStarted", now_us()), NULL),
                      STREAM);
            pattern[run][i] = r.status == 503 ? 'x' : r.status == 200 ? '.' : '?';
            response_fini(&r);
        }
        stop_and_check(&e, "--seed");
    }
    check(strcmp(pattern[0], pattern[1]) == 0 && strchr(pattern[0], 'x') &&
              strchr(pattern[0], '.') && !strchr(pattern[0], '?'),
          "--seed 11: the same requests fail in both runs (%s, %s)", pattern[0], pattern[1]);

    /* A full store refuses with 503 and says so. */
    if (check(emulator_start(&e, 0, "--max-items", "3", "--retry-after", "0", NULL),
              "started with --max-items 3")) {
        cJSON *batch = cJSON_CreateArray();
        for (int i = 0; i < 5; i++)
            cJSON_AddItemToArray(batch, trace(K1, "LWI-FULL", "ScenarioStarted", now_us()));
        response_t r = track(&e, batch, STREAM);
        check(r.status == 206 && json_int(r.json, "itemsAccepted") == 3 && error_count(&r) == 2 &&
                  json_int(error_at(&r, 0), "statusCode") == 503 &&
                  json_int(error_at(&r, 0), "index") == 3,
              "5 items into room for 3: 206, items 3 and 4 refused with 503 (got %ld %s)",
              r.status, r.body);
        response_fini(&r);
        r = track(&e, batch_of(trace(K1, "LWI-FULL", "ScenarioStarted", now_us()), NULL), STREAM);
        check(r.status == 503 && !r.retry_after[0],
              "full: 503, no Retry-After with --retry-after 0 (got %ld '%s')", r.status,
              r.retry_after);
        response_fini(&r);
        r = get(e.base, "/api/stats");
        check(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r.json, "storeFull")),
              "/api/stats says storeFull (got %s)", r.body);
        response_fini(&r);
        check(log_has(&e, "the store is full"), "the log says the store is full");
    }
    stop_and_check(&e, "--max-items");

    /* --bearer: the same as the /control key. */
    if (check(emulator_start(&e, 0, "--bearer", "cli-token.abc_DEF-123", NULL),
              "started with --bearer")) {
        response_t r = track_auth(&e, NULL);
        check(is_unauthorized(&r), "--bearer: no Authorization, 401 (got %ld %s)", r.status,
              r.body);
        response_fini(&r);
        r = track_auth(&e, "Bearer cli-token.abc_DEF-123");
        check(r.status == 200, "--bearer: the token, 200 (got %ld %s)", r.status, r.body);
        response_fini(&r);
        r = get(e.base, "/api/stats");
        check(json_int(cJSON_GetObjectItemCaseSensitive(r.json, "responses"), "401") == 1 &&
                  json_int(cJSON_GetObjectItemCaseSensitive(r.json, "responses"), "200") == 1,
              "--bearer: /api/stats responses {\"200\":1,\"401\":1} (got %s)", r.body);
        response_fini(&r);
        char *log = read_file(e.log);
        check(strstr(log, "bearer=required") && !strstr(log, "cli-token"),
              "--bearer: the start line says bearer=required, without the token");
        free(log);
    }
    stop_and_check(&e, "--bearer");

    /* Bad command lines: exit code 2. */
    static const char *const bad[][3] = {
        {"--request-fault-code", "404", NULL},
        {"--listen", "nowhere", NULL},
        {"--item-fault-share", "2", NULL},
        {"--ikey", "", NULL},
        {"--bearer", "two words", NULL},
    };
    for (size_t i = 0; i < CD_ARRAY_LEN(bad); i++) {
        pid_t pid = fork();
        if (pid == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, STDERR_FILENO);
            execl(emulator_path, emulator_path, bad[i][0], bad[i][1], (char *)NULL);
            _exit(127);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        check(WIFEXITED(status) && WEXITSTATUS(status) == 2, "%s '%s': exit code 2 (got %d)",
              bad[i][0], bad[i][1], WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_emulator PATH_TO_convdiag-emulator\n");
        return 2;
    }
    emulator_path = argv[1];
    if (!mkdtemp(work_dir)) {
        perror("mkdtemp");
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    atexit(kill_leftovers);

    emulator_t e;
    if (check(emulator_start(&e, 1, "--seed", "7", NULL),
              "the emulator starts on free loopback ports")) {
        test_accepted(&e);
        test_partial(&e);
        test_validation(&e);
        test_bodies(&e);
        test_store(&e);
        test_page(&e);
        test_control_faults(&e);
        test_bearer(&e);
        test_down_exactly_once(&e);
        test_down(&e);
        test_log(&e);
    }
    stop_and_check(&e, "the first emulator, its port down");
    test_service_answers();
    test_command_line();

    curl_global_cleanup();
    if (failed) {
        printf("logs kept in %s\n", work_dir);
    } else {
        for (int i = 1; i <= logs_written; i++) {
            char path[160];
            snprintf(path, sizeof(path), "%s/emulator-%d.log", work_dir, i);
            unlink(path);
        }
        rmdir(work_dir);
    }
    printf("%d passed, %d failed\n", passed, failed);
    fflush(stdout);
    return failed ? 1 : 0;
}
