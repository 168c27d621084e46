/*
 * test_export_token.c -- the Entra bearer token: the "exp" of a JWT, a token
 * file read, trimmed and read again when rewritten, a command run and run
 * again when the service refuses its token, and what is refused.  No error
 * and no log line may quote a token: stderr is captured around every fetch
 * and searched.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "convdiag/common.h"
#include "convdiag/export_token.h"

static char dir[] = "/tmp/test_export_token.XXXXXX";

/* export.token.timeout.ms for the sources made here: far above what a command takes. */
#define TIMEOUT_MS 10000

/* ---- helpers ---------------------------------------------------------------------------- */

static char *path_in_dir(const char *name)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
    return p;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

/* Sets the file's modification time, so that a rewrite of the same size
 * within one tick of the file system's clock still shows. */
static void set_mtime(const char *path, time_t sec)
{
    struct timespec times[2] = {{sec, 0}, {sec, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *text = calloc(1, 1 << 16);
    assert_non_null(text);
    if (f) {
        size_t n = fread(text, 1, (1 << 16) - 1, f);
        text[n] = '\0';
        fclose(f);
    }
    return text;
}

/* stderr (the log) goes to a file while a fetch runs. */
static char *capture_path;
static int saved_stderr = -1;

static void capture_begin(void)
{
    fflush(stderr);
    saved_stderr = dup(STDERR_FILENO);
    int fd = open(capture_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    assert_true(saved_stderr >= 0 && fd >= 0);
    dup2(fd, STDERR_FILENO);
    close(fd);
}

static void capture_end(void)
{
    fflush(stderr);
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    saved_stderr = -1;
}

/* Every token a test has used: none may appear in an error or the log. */
static char *secrets[32];
static size_t nsecrets;

static const char *secret(const char *token)
{
    assert_true(nsecrets < CD_ARRAY_LEN(secrets));
    secrets[nsecrets] = strdup(token);
    assert_non_null(secrets[nsecrets]);
    return secrets[nsecrets++];
}

static void assert_no_secret(const char *text, const char *where)
{
    for (size_t i = 0; i < nsecrets; i++)
        if (strstr(text, secrets[i]))
            fail_msg("%s quotes the token '%s': %s", where, secrets[i], text);
}

/* A fetch with the log captured; err is checked for tokens. */
static cd_status_t get(cd_export_token_t *t, char *buf, cd_err_t *err)
{
    memset(buf, 0, CD_EXPORT_TOKEN_MAX + 1);
    err->msg[0] = '\0';
    capture_begin();
    cd_status_t st = cd_export_token_get(t, buf, CD_EXPORT_TOKEN_MAX + 1, err);
    capture_end();
    if (st != CD_OK)
        assert_no_secret(err->msg, "the error");
    return st;
}

static void expect_token(cd_export_token_t *t, const char *want)
{
    char buf[CD_EXPORT_TOKEN_MAX + 1];
    cd_err_t err;
    cd_status_t st = get(t, buf, &err);
    if (st != CD_OK)
        fail_msg("expected the token '%.40s...', got %s: %s", want, cd_status_name(st), err.msg);
    assert_string_equal(buf, want);
}

/* CD_RETRY with an error containing `about`. */
static void expect_retry(cd_export_token_t *t, const char *about)
{
    char buf[CD_EXPORT_TOKEN_MAX + 1];
    cd_err_t err;
    cd_status_t st = get(t, buf, &err);
    if (st != CD_RETRY)
        fail_msg("expected CD_RETRY (%s), got %s with '%.40s'", about, cd_status_name(st), buf);
    if (!strstr(err.msg, about))
        fail_msg("the error '%s' does not say '%s'", err.msg, about);
    assert_string_equal(buf, ""); /* nothing handed out */
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* ---- JWT ------------------------------------------------------------------------------- */

static void b64url(const char *in, size_t n, char *out)
{
    static const char abc[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)in[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)in[i + 2];
        out[o++] = abc[(v >> 18) & 63];
        out[o++] = abc[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = abc[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = abc[v & 63];
    }
    out[o] = '\0';
}

/* header.payload.signature, as Entra issues them (unpadded base64url). */
static char *jwt(const char *payload)
{
    static const char header[] =
        "{\"typ\":\"JWT\",\"alg\":\"RS256\",\"kid\":\"L1KfKFI_jnXbwWc22x\"}";
    size_t n = strlen(payload);
    char *out = malloc(sizeof(header) * 2 + n * 2 + 64);
    assert_non_null(out);
    b64url(header, strlen(header), out);
    strcat(out, ".");
    b64url(payload, n, out + strlen(out));
    strcat(out, ".dGhlLXNpZ25hdHVyZS1pcy1ub3QtY2hlY2tlZA");
    return out;
}

static char *jwt_exp_claim(long long exp)
{
    char payload[512];
    snprintf(payload, sizeof(payload),
             "{\"aud\":\"https://monitor.azure.com\",\"iss\":\"https://sts.windows.net/"
             "72f988bf-86f1-41af-91ab-2d7cd011db47/\",\"iat\":%lld,\"nbf\":%lld,\"exp\":%lld,"
             "\"oid\":\"7d0e4a2b-5c1f-4e3a-9b8c-2d1e0f3a4b5c\",\"ver\":\"1.0\"}",
             exp - 3600, exp - 3600, exp);
    return jwt(payload);
}

static void test_jwt_exp(void **state)
{
    (void)state;
    char *t = jwt_exp_claim(1900000000);
    assert_int_equal(cd_export_token_jwt_exp(t), 1900000000);
    free(t);

    /* Each length of payload, so every base64 tail (none, 2 or 3 characters) is read. */
    for (int pad = 0; pad < 3; pad++) {
        char payload[64];
        snprintf(payload, sizeof(payload), "{\"exp\":1767225600%.*s}", pad, "  ");
        t = jwt(payload);
        assert_int_equal(cd_export_token_jwt_exp(t), 1767225600);
        free(t);
    }

    /* Padded base64url, as some issuers write it. */
    t = jwt("{\"exp\":1767225600}");
    char padded[256];
    char *dot = strchr(t, '.'), *dot2 = strchr(dot + 1, '.');
    snprintf(padded, sizeof(padded), "%.*s==%s", (int)(dot2 - t), t, dot2);
    assert_int_equal(cd_export_token_jwt_exp(padded), 1767225600);
    free(t);

    /* A large payload (many group claims) still has its exp read. */
    char *groups = repeat('g', 5000), *payload = NULL;
    assert_true(asprintf(&payload, "{\"groups\":\"%s\",\"exp\":1900000001}", groups) > 0);
    t = jwt(payload);
    assert_true(strlen(t) <= CD_EXPORT_TOKEN_MAX);
    assert_int_equal(cd_export_token_jwt_exp(t), 1900000001);
    free(t);
    free(payload);
    free(groups);

    static const char *const no_exp[] = {
        "{\"aud\":\"https://monitor.azure.com\"}",
        "{\"exp\":\"1900000000\"}",
        "{\"exp\":0}",
        "{\"exp\":-5}",
        "{\"exp\":1e300}",
        "{\"exp\":null}",
        "[1900000000]",
        "not json",
        "",
    };
    for (size_t i = 0; i < CD_ARRAY_LEN(no_exp); i++) {
        t = jwt(no_exp[i]);
        if (cd_export_token_jwt_exp(t) != -1)
            fail_msg("payload '%s': exp %lld, expected -1", no_exp[i],
                     (long long)cd_export_token_jwt_exp(t));
        free(t);
    }

    static const char *const not_jwt[] = {
        "",
        "opaque-token-without-dots",
        "header.payload-without-signature",
        "a..c",
        ".",
        "..",
        "eyJhbGciOiJub25lIn0.eyJleHAiOjE5MDAwMDAwMDB9$.sig",  /* a character not base64url */
        "eyJhbGciOiJub25lIn0.eyJleHAiOjE5MDAwMDAwMDB9+/.sig", /* standard base64 */
        "eyJhbGciOiJub25lIn0.e.sig",                          /* too short for a byte */
    };
    for (size_t i = 0; i < CD_ARRAY_LEN(not_jwt); i++)
        if (cd_export_token_jwt_exp(not_jwt[i]) != -1)
            fail_msg("'%s': exp %lld, expected -1", not_jwt[i],
                     (long long)cd_export_token_jwt_exp(not_jwt[i]));
    /* The same payload without the bad characters is read: the cases above fail on them. */
    assert_int_equal(cd_export_token_jwt_exp("eyJhbGciOiJub25lIn0.eyJleHAiOjE5MDAwMDAwMDB9.sig"),
                     1900000000);
}

/* ---- a token file ----------------------------------------------------------------------- */

static void test_file(void **state)
{
    (void)state;
    char *file = path_in_dir("token");
    const char *a = secret("eyTokenAAAAAAAA.first"), *b = secret("eyTokenBBBBBBBBBB.second");
    const char *c = secret("eyTokenCCCCCCCCCC.third_"); /* the length of b */
    char line[256];

    snprintf(line, sizeof(line), "  %s\r\n\n", a);
    write_file(file, line);
    cd_export_token_t *t = cd_export_token_new(file, NULL, TIMEOUT_MS);
    assert_non_null(t);
    expect_token(t, a); /* trimmed */
    expect_token(t, a);

    /* Rewritten with another token (another size): the next fetch has it. */
    snprintf(line, sizeof(line), "%s\n", b);
    write_file(file, line);
    expect_token(t, b);

    /* Rewritten in place with a token of the same size: the modification time tells. */
    struct stat st;
    assert_int_equal(stat(file, &st), 0);
    snprintf(line, sizeof(line), "%s\n", c);
    write_file(file, line);
    set_mtime(file, st.st_mtim.tv_sec + 7);
    expect_token(t, c);

    /* Replaced by rename, as a Kubernetes projected volume does. */
    char *tmp = path_in_dir("token.new");
    snprintf(line, sizeof(line), "%s\n", a);
    write_file(tmp, line);
    assert_int_equal(rename(tmp, file), 0);
    expect_token(t, a);

    /* Gone: the current token is kept while nothing says it is refused... */
    assert_int_equal(unlink(file), 0);
    expect_token(t, a);
    /* ...and once the service refuses it, there is none: CD_RETRY, naming the file. */
    cd_export_token_invalidate(t);
    expect_retry(t, "cannot open bearer token file");
    expect_retry(t, file);
    /* Back: read again. */
    snprintf(line, sizeof(line), "%s", b);
    write_file(file, line);
    expect_token(t, b);
    cd_export_token_free(t);

    /* Missing from the start. */
    char *missing = path_in_dir("no-such-token");
    t = cd_export_token_new(missing, "", TIMEOUT_MS);
    assert_non_null(t);
    expect_retry(t, "No such file or directory");
    cd_export_token_free(t);

    /* Empty, or blank. */
    write_file(file, " \n\t\r\n");
    t = cd_export_token_new(file, NULL, TIMEOUT_MS);
    expect_retry(t, "is empty");
    cd_export_token_free(t);

    free(missing);
    free(tmp);
    free(file);
}

static void test_file_refused(void **state)
{
    (void)state;
    char *file = path_in_dir("bad-token");
    static const char *const bad[] = {
        "two words", "tab\tinside", "two\nlines", "bell\aring", ("del\x7f" "char"),
        "t\xc3\xb6k\xc3\xa9n", /* not ASCII */
    };
    for (size_t i = 0; i < CD_ARRAY_LEN(bad); i++) {
        secret(bad[i]);
        write_file(file, bad[i]);
        cd_export_token_t *t = cd_export_token_new(file, NULL, TIMEOUT_MS);
        expect_retry(t, "not one line of visible ASCII");
        cd_export_token_free(t);
    }

    /* CD_EXPORT_TOKEN_MAX bytes, with the line end a file usually has: taken. */
    char *longest = repeat('x', CD_EXPORT_TOKEN_MAX), *text = NULL;
    assert_true(asprintf(&text, "%s\r\n", longest) > 0);
    write_file(file, text);
    cd_export_token_t *t = cd_export_token_new(file, NULL, TIMEOUT_MS);
    expect_token(t, longest);
    cd_export_token_free(t);
    free(text);

    /* One more: refused, whether the blanks around it would fit or not. */
    char *too_long = repeat('y', CD_EXPORT_TOKEN_MAX + 1);
    secret(too_long);
    write_file(file, too_long);
    t = cd_export_token_new(file, NULL, TIMEOUT_MS);
    expect_retry(t, "8000 bytes");
    cd_export_token_free(t);
    free(too_long);
    too_long = repeat('z', 3 * CD_EXPORT_TOKEN_MAX);
    secret(too_long);
    write_file(file, too_long);
    t = cd_export_token_new(file, NULL, TIMEOUT_MS);
    expect_retry(t, "8000 bytes");
    cd_export_token_free(t);
    free(too_long);

    /* A bad rewrite does not replace a good token, nor show in the log. */
    const char *good = secret("goodTokenValue123");
    write_file(file, good);
    t = cd_export_token_new(file, NULL, TIMEOUT_MS);
    expect_token(t, good);
    write_file(file, "bad token value with spaces");
    expect_token(t, good);
    cd_export_token_free(t);

    /* A buffer too small for the token. */
    write_file(file, "abcdef");
    t = cd_export_token_new(file, NULL, TIMEOUT_MS);
    char small[4];
    cd_err_t err;
    assert_int_equal(cd_export_token_get(t, small, sizeof(small), &err), CD_ERROR);
    cd_export_token_free(t);

    free(longest);
    free(file);
}

/* ---- a command -------------------------------------------------------------------------- */

static int runs(const char *counter)
{
    char *text = slurp(counter);
    int n = (int)strlen(text);
    free(text);
    return n;
}

static void test_command(void **state)
{
    (void)state;
    cd_export_token_t *t = cd_export_token_new(NULL, "printf abc", TIMEOUT_MS);
    assert_non_null(t);
    expect_token(t, "abc");
    cd_export_token_free(t);

    /* az prints the token and a line end. */
    t = cd_export_token_new("", "echo '  eyJ0eXAi.payload.sig  '", TIMEOUT_MS);
    expect_token(t, "eyJ0eXAi.payload.sig");
    cd_export_token_free(t);

    t = cd_export_token_new(NULL, "printf leaked-token; exit 3", TIMEOUT_MS);
    secret("leaked-token");
    expect_retry(t, "exit status 3");
    cd_export_token_free(t);

    t = cd_export_token_new(NULL, "kill -TERM $$", TIMEOUT_MS);
    expect_retry(t, "signal 15");
    cd_export_token_free(t);

    t = cd_export_token_new(NULL, "true", TIMEOUT_MS);
    expect_retry(t, "is empty");
    cd_export_token_free(t);

    t = cd_export_token_new(NULL, "printf 'two words'", TIMEOUT_MS);
    expect_retry(t, "not one line of visible ASCII");
    cd_export_token_free(t);

    /* Longer than a token, by far: refused, and the command is read to its end. */
    t = cd_export_token_new(NULL, "head -c 100000 /dev/zero | tr '\\0' q", TIMEOUT_MS);
    expect_retry(t, "printed more than 8000 bytes");
    cd_export_token_free(t);
    char *cmd = NULL;
    assert_true(asprintf(&cmd, "head -c %d /dev/zero | tr '\\0' q; echo", CD_EXPORT_TOKEN_MAX) >
                0);
    t = cd_export_token_new(NULL, cmd, TIMEOUT_MS);
    char *longest = repeat('q', CD_EXPORT_TOKEN_MAX);
    expect_token(t, longest);
    cd_export_token_free(t);
    free(longest);
    free(cmd);
}

static void test_command_again(void **state)
{
    (void)state;
    char *counter = path_in_dir("runs"), *cmd = NULL;
    write_file(counter, "");
    assert_true(asprintf(&cmd, "printf x >> '%s'; printf cmdToken42", counter) > 0);
    cd_export_token_t *t = cd_export_token_new(NULL, cmd, TIMEOUT_MS);
    secret("cmdToken42");

    expect_token(t, "cmdToken42");
    assert_int_equal(runs(counter), 1);
    expect_token(t, "cmdToken42");
    expect_token(t, "cmdToken42");
    assert_int_equal(runs(counter), 1); /* kept: no "exp", ten minutes */

    cd_export_token_invalidate(t);
    expect_token(t, "cmdToken42");
    assert_int_equal(runs(counter), 2);
    expect_token(t, "cmdToken42");
    assert_int_equal(runs(counter), 2);

    cd_export_token_free(t);
    free(cmd);

    /* A JWT far from its exp is kept; one about to expire is fetched every time. */
    char *token_file = path_in_dir("jwt");
    long long now = (long long)(cd_now_us() / 1000000);
    char *fresh = jwt_exp_claim(now + 3600), *expiring = jwt_exp_claim(now + 60);
    secret(fresh);
    secret(expiring);
    write_file(counter, "");
    write_file(token_file, fresh);
    assert_true(asprintf(&cmd, "printf x >> '%s'; cat '%s'", counter, token_file) > 0);
    t = cd_export_token_new(NULL, cmd, TIMEOUT_MS);
    expect_token(t, fresh);
    expect_token(t, fresh);
    assert_int_equal(runs(counter), 1);
    cd_export_token_free(t);

    write_file(counter, "");
    write_file(token_file, expiring);
    t = cd_export_token_new(NULL, cmd, TIMEOUT_MS);
    expect_token(t, expiring);
    expect_token(t, expiring);
    expect_token(t, expiring);
    assert_int_equal(runs(counter), 3);
    cd_export_token_free(t);

    /* An expired one is still handed out (the service decides), with a warning. */
    char *expired = jwt_exp_claim(now - 120);
    secret(expired);
    write_file(token_file, expired);
    t = cd_export_token_new(token_file, NULL, TIMEOUT_MS);
    expect_token(t, expired);
    cd_export_token_free(t);
    char *log = slurp(capture_path);
    assert_non_null(strstr(log, "expired"));
    free(log);

    free(expired);
    free(fresh);
    free(expiring);
    free(token_file);
    free(cmd);
    free(counter);
}

/* Several workers share one source. */
typedef struct shared {
    cd_export_token_t *t;
    int bad;
} shared_t;

static void *fetch_many(void *arg)
{
    shared_t *s = arg;
    char buf[CD_EXPORT_TOKEN_MAX + 1];
    cd_err_t err;
    for (int i = 0; i < 200; i++) {
        if (i % 50 == 0)
            cd_export_token_invalidate(s->t);
        cd_status_t st;
        /* While another fetches anew, a worker is told to wait, never blocked. */
        while ((st = cd_export_token_get(s->t, buf, sizeof(buf), &err)) == CD_RETRY &&
               strstr(err.msg, "being fetched"))
            sched_yield();
        if (st != CD_OK || strcmp(buf, "sharedToken") != 0)
            __atomic_add_fetch(&s->bad, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    char *file = path_in_dir("shared");
    write_file(file, "sharedToken\n");
    shared_t s = {cd_export_token_new(file, NULL, TIMEOUT_MS), 0};
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, fetch_many, &s), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(s.bad, 0);
    cd_export_token_free(s.t);
    free(file);
}

/* A command that hangs is killed with what it started, and fails in time. */
static void test_command_timeout(void **state)
{
    (void)state;
    char *pidfile = path_in_dir("hung.pid"), *cmd = NULL;
    assert_true(asprintf(&cmd, "sleep 60 & echo $! > '%s'; wait", pidfile) > 0);
    cd_export_token_t *t = cd_export_token_new(NULL, cmd, 300);
    char buf[CD_EXPORT_TOKEN_MAX + 1];
    cd_err_t err;
    int64_t t0 = cd_mono_us();
    assert_int_equal(cd_export_token_get(t, buf, sizeof(buf), &err), CD_RETRY);
    double took = (double)(cd_mono_us() - t0) / 1e6;
    if (took > 2.0)
        fail_msg("a hung command took %.2f s to give up, the timeout being 0.3 s", took);
    assert_non_null(strstr(err.msg, "did not finish within 300 ms"));
    char *pid_text = slurp(pidfile);
    pid_t child = (pid_t)atol(pid_text);
    assert_true(child > 0);
    /* Killed with its group: gone, or a zombie its reaper has not seen yet. */
    bool gone = false;
    for (int i = 0; i < 100 && !gone; i++) {
        char stat_path[64], st = 'R';
        snprintf(stat_path, sizeof(stat_path), "/proc/%d/stat", (int)child);
        FILE *f = fopen(stat_path, "r");
        gone = !f || (fscanf(f, "%*d %*s %c", &st) == 1 && st == 'Z');
        if (f)
            fclose(f);
        if (!gone)
            usleep(20000);
    }
    assert_true(gone);
    cd_export_token_free(t);
    unlink(pidfile);
    free(pid_text);
    free(pidfile);
    free(cmd);
}

typedef struct slow_fetch {
    cd_export_token_t *t;
    cd_status_t st;
} slow_fetch_t;

static void *fetch_once(void *arg)
{
    slow_fetch_t *f = arg;
    char buf[CD_EXPORT_TOKEN_MAX + 1];
    cd_err_t err;
    f->st = cd_export_token_get(f->t, buf, sizeof(buf), &err);
    return NULL;
}

/* While one worker runs a slow command, another is answered at once. */
static void test_fetch_outside_the_lock(void **state)
{
    (void)state;
    char *flag = path_in_dir("slow"), *cmd = NULL;
    unlink(flag);
    assert_true(asprintf(&cmd, "if [ -e '%s' ]; then sleep 1.5; fi; printf slowToken7", flag) > 0);
    secret("slowToken7");
    slow_fetch_t f = {cd_export_token_new(NULL, cmd, TIMEOUT_MS), CD_ERROR};
    expect_token(f.t, "slowToken7");
    write_file(flag, "");
    cd_export_token_invalidate(f.t);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, fetch_once, &f), 0);
    usleep(300000); /* the thread is in the command by now */
    char buf[CD_EXPORT_TOKEN_MAX + 1];
    cd_err_t err;
    int64_t t0 = cd_mono_us();
    assert_int_equal(cd_export_token_get(f.t, buf, sizeof(buf), &err), CD_RETRY);
    double took = (double)(cd_mono_us() - t0) / 1e6;
    if (took > 0.2)
        fail_msg("a worker waited %.2f s on another's fetch", took);
    assert_non_null(strstr(err.msg, "being fetched"));
    pthread_join(th, NULL);
    assert_int_equal(f.st, CD_OK);
    expect_token(f.t, "slowToken7");
    cd_export_token_free(f.t);
    unlink(flag);
    free(flag);
    free(cmd);
}

/* Last: nothing any test fetched went to the log. */
static void test_log_clean(void **state)
{
    (void)state;
    char *log = slurp(capture_path);
    assert_no_secret(log, "the log");
    free(log);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    capture_path = path_in_dir("stderr.log");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    static const char *const names[] = {"token", "token.new", "bad-token", "runs", "jwt",
                                        "shared", "stderr.log"};
    for (size_t i = 0; i < CD_ARRAY_LEN(names); i++) {
        char *p = path_in_dir(names[i]);
        unlink(p);
        free(p);
    }
    rmdir(dir);
    free(capture_path);
    for (size_t i = 0; i < nsecrets; i++)
        free(secrets[i]);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jwt_exp),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_file_refused),
        cmocka_unit_test(test_command),
        cmocka_unit_test(test_command_again),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_command_timeout),
        cmocka_unit_test(test_fetch_outside_the_lock),
        cmocka_unit_test(test_log_clean),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
