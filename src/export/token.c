/* token.c -- the Entra bearer token, from a file or a command; see export_token.h. */
#include "convdiag/export_token.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "convdiag/log.h"

#define REFRESH_BEFORE_S 300  /* fetch a JWT again this long before it expires */
#define REFRESH_EVERY_S 600   /* how long a token without "exp" is kept */
/* What is read from the file or the command: a token of the longest size
 * still fits with the line end and blanks around it. */
#define READ_MAX (CD_EXPORT_TOKEN_MAX + 64)
/* An "exp" past 9999-12-31T23:59:59Z is not a time: treated as none. */
#define EXP_MAX 253402300799.0

struct cd_export_token {
    pthread_mutex_t lock;
    char *file;
    char *command;
    char token[CD_EXPORT_TOKEN_MAX + 1];
    bool have;
    bool stale;          /* invalidated by the service */
    int64_t refresh_at;  /* seconds since the epoch */
    int64_t exp;         /* -1: unknown */
    struct stat st;      /* of the file when read */
    int timeout_ms;      /* of the command */
    bool fetching;       /* a worker is reading the file or running the command */
};

cd_export_token_t *cd_export_token_new(const char *file, const char *command, int timeout_ms)
{
    cd_export_token_t *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->file = strdup(file ? file : "");
    t->command = strdup(command ? command : "");
    if (!t->file || !t->command) {
        cd_export_token_free(t);
        return NULL;
    }
    t->timeout_ms = timeout_ms;
    pthread_mutex_init(&t->lock, NULL);
    return t;
}

void cd_export_token_free(cd_export_token_t *t)
{
    if (!t)
        return;
    if (t->file && t->command)
        pthread_mutex_destroy(&t->lock);
    explicit_bzero(t->token, sizeof(t->token));
    free(t->file);
    free(t->command);
    free(t);
}

void cd_export_token_invalidate(cd_export_token_t *t)
{
    pthread_mutex_lock(&t->lock);
    t->stale = true;
    pthread_mutex_unlock(&t->lock);
}

/* base64url without padding, as JWTs use it; returns the decoded length or -1. */
static long b64url_decode(const char *in, size_t n, unsigned char *out, size_t size)
{
    unsigned acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)in[i], v;
        if (c >= 'A' && c <= 'Z') v = c - 'A';
        else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
        else if (c >= '0' && c <= '9') v = c - '0' + 52;
        else if (c == '-') v = 62;
        else if (c == '_') v = 63;
        else if (c == '=') break;
        else return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= size)
                return -1;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return (long)o;
}

int64_t cd_export_token_jwt_exp(const char *token)
{
    const char *p1 = strchr(token, '.');
    const char *p2 = p1 ? strchr(p1 + 1, '.') : NULL;
    /* Room for the payload of any token short enough to be accepted. */
    unsigned char json[CD_EXPORT_TOKEN_MAX];
    if (!p2)
        return -1;
    long n = b64url_decode(p1 + 1, (size_t)(p2 - p1 - 1), json, sizeof(json) - 1);
    if (n <= 0)
        return -1;
    cJSON *claims = cJSON_ParseWithLength((const char *)json, (size_t)n);
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(claims, "exp");
    /* Below 1 the seconds would be 0, neither an exp nor -1: none, as for 0. */
    int64_t v = cJSON_IsNumber(exp) && exp->valuedouble >= 1 && exp->valuedouble <= EXP_MAX
                    ? (int64_t)exp->valuedouble
                    : -1;
    cJSON_Delete(claims);
    return v;
}

/* Keeps text (trimmed) as the token when it looks like one: visible ASCII, no spaces. */
static cd_status_t accept_token(cd_export_token_t *t, char *text, const char *from,
                                cd_err_t *err)
{
    char *s = text, *e;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        *--e = '\0';
    if (s == e)
        return cd_err_set(err, CD_RETRY, "bearer token from %s is empty", from);
    if (e - s > CD_EXPORT_TOKEN_MAX)
        return cd_err_set(err, CD_RETRY, "bearer token from %s is longer than %d bytes", from,
                          CD_EXPORT_TOKEN_MAX);
    for (const char *p = s; p < e; p++)
        if (*p <= ' ' || *p > '~')
            return cd_err_set(err, CD_RETRY,
                              "bearer token from %s is not one line of visible ASCII", from);
    memcpy(t->token, s, (size_t)(e - s) + 1);
    t->have = true;
    t->stale = false;
    t->exp = cd_export_token_jwt_exp(t->token);
    int64_t now = cd_now_us() / 1000000;
    t->refresh_at = t->exp > 0 ? t->exp - REFRESH_BEFORE_S : now + REFRESH_EVERY_S;
    if (t->exp > 0 && t->exp <= now)
        cd_log_warn("export", "bearer token from %s expired %lld s ago", from,
                    (long long)(now - t->exp));
    return CD_OK;
}

/* Reads the file into text (size READ_MAX + 1), and its identity into *st. */
static cd_status_t read_file(const char *path, char *text, struct stat *st, cd_err_t *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return cd_err_set(err, CD_RETRY, "cannot open bearer token file '%s': %s", path,
                          strerror(errno));
    size_t n = fread(text, 1, READ_MAX, f);
    bool more = fgetc(f) != EOF;
    fstat(fileno(f), st);
    fclose(f);
    text[n] = '\0';
    if (more)
        return cd_err_set(err, CD_RETRY, "bearer token file '%s' holds more than %d bytes",
                          path, CD_EXPORT_TOKEN_MAX);
    return CD_OK;
}

/* Kills the command's process group and reaps it; returns its wait status. */
static int end_command(pid_t pid, bool kill_it)
{
    int status = 0;
    if (kill_it)
        kill(-pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return status;
}

/*
 * Runs the command (sh -c) in a process group of its own, reading what it
 * prints into text (size READ_MAX + 1) for at most timeout_ms; past that, the
 * group is killed: a hung `az` must not hang export.
 */
static cd_status_t run_command(const char *command, int timeout_ms, char *text, cd_err_t *err)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return cd_err_set(err, CD_RETRY, "cannot run the bearer token command: pipe: %s",
                          strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return cd_err_set(err, CD_RETRY, "cannot run the bearer token command: fork: %s",
                          strerror(errno));
    }
    if (pid == 0) { /* only async-signal-safe calls until exec */
        setpgid(0, 0);
        dup2(fds[1], STDOUT_FILENO);
        execl("/bin/sh", "sh", "-c", command, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    setpgid(pid, pid); /* as the child does: whichever runs first */

    int64_t deadline = cd_mono_us() + (int64_t)timeout_ms * 1000;
    size_t n = 0;
    bool more = false, timed_out = false;
    for (;;) {
        int64_t left_ms = (deadline - cd_mono_us()) / 1000;
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        if (left_ms <= 0) {
            timed_out = true;
            break;
        }
        int rc = poll(&pfd, 1, (int)(left_ms > 1000 ? 1000 : left_ms));
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            continue; /* the deadline decides */
        char drain[4096];
        ssize_t got = n < READ_MAX ? read(fds[0], text + n, READ_MAX - n)
                                   : read(fds[0], drain, sizeof(drain));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break; /* end of output */
        if (n < READ_MAX)
            n += (size_t)got;
        else
            more = true;
        explicit_bzero(drain, sizeof(drain));
    }
    close(fds[0]);
    text[n] = '\0';
    int status = end_command(pid, timed_out);
    if (timed_out)
        return cd_err_set(err, CD_RETRY,
                          "the bearer token command did not finish within %d ms "
                          "(export.token.timeout.ms): killed",
                          timeout_ms);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return cd_err_set(err, CD_RETRY, "the bearer token command failed (%s %d)",
                          WIFEXITED(status) ? "exit status" : "signal",
                          WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    if (more || n >= READ_MAX)
        return cd_err_set(err, CD_RETRY, "the bearer token command printed more than %d bytes",
                          CD_EXPORT_TOKEN_MAX);
    return CD_OK;
}

static bool file_changed(const cd_export_token_t *t)
{
    struct stat now;
    if (stat(t->file, &now) != 0)
        return false; /* keep the one we have; the next fetch will say why */
    return now.st_ino != t->st.st_ino || now.st_size != t->st.st_size ||
           now.st_mtim.tv_sec != t->st.st_mtim.tv_sec ||
           now.st_mtim.tv_nsec != t->st.st_mtim.tv_nsec;
}

cd_status_t cd_export_token_get(cd_export_token_t *t, char *buf, size_t size, cd_err_t *err)
{
    cd_status_t st = CD_OK;
    char text[READ_MAX + 1];
    struct stat fst;

    pthread_mutex_lock(&t->lock);
    bool due = !t->have || t->stale || cd_now_us() / 1000000 >= t->refresh_at ||
               (t->file[0] && file_changed(t));
    if (due && t->fetching) {
        /* Another worker fetches: the current token, if it may still be good, or wait. */
        if (!t->have || t->stale)
            st = cd_err_set(err, CD_RETRY, "the bearer token is being fetched");
        due = false;
    } else if (due) {
        /* Fetched outside the lock: the other workers go on meanwhile. */
        t->fetching = true;
        pthread_mutex_unlock(&t->lock);
        st = t->file[0] ? read_file(t->file, text, &fst, err)
                        : run_command(t->command, t->timeout_ms, text, err);
        pthread_mutex_lock(&t->lock);
        t->fetching = false;
        if (st == CD_OK) {
            char from[64 + 4096] = "the command";
            if (t->file[0])
                snprintf(from, sizeof(from), "file '%s'", t->file);
            st = accept_token(t, text, from, err);
            if (t->file[0])
                t->st = fst;
        }
        explicit_bzero(text, sizeof(text));
        if (st != CD_OK && t->have && !t->stale) {
            /* The old token may still be good: use it, and say why it was not renewed. */
            cd_log_warn("export", "keeping the current bearer token: %s", err->msg);
            st = CD_OK;
        }
    }
    if (st == CD_OK) {
        if (strlen(t->token) + 1 > size)
            st = cd_err_set(err, CD_ERROR, "bearer token buffer too small");
        else
            memcpy(buf, t->token, strlen(t->token) + 1);
    }
    pthread_mutex_unlock(&t->lock);
    return st;
}
