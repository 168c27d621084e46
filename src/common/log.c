/* log.c -- logfmt records on stderr; see log.h. */
#include "convdiag/log.h"
#include "convdiag/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static cd_log_level_t log_level = CD_LOG_INFO;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

void cd_log_set_level(cd_log_level_t level) { log_level = level; }

int cd_log_level_parse(const char *name, cd_log_level_t *out)
{
    for (size_t i = 0; i < CD_ARRAY_LEN(level_names); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (cd_log_level_t)i;
            return 0;
        }
    }
    return -1;
}

void cd_log(cd_log_level_t level, const char *mod, const char *fmt, ...)
{
    if (level > log_level)
        return;

    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    /* Quotes and newlines would break the one-record-per-line format. */
    char esc[sizeof(msg) * 2];
    size_t o = 0;
    for (const char *p = msg; *p && o + 2 < sizeof(esc); p++) {
        if (*p == '"' || *p == '\\') {
            esc[o++] = '\\';
            esc[o++] = *p;
        } else if (*p == '\n' || *p == '\r') {
            esc[o++] = ' ';
        } else {
            esc[o++] = *p;
        }
    }
    esc[o] = '\0';

    int64_t now = cd_now_us();
    time_t secs = (time_t)(now / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char ts[32];
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);

    /* One fprintf per record so lines from librdkafka's threads do not interleave. */
    fprintf(stderr, "ts=%s.%03dZ level=%s mod=%s msg=\"%s\"\n", ts,
            (int)((now / 1000) % 1000), level_names[level], mod, esc);
}
