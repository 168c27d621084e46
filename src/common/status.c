/* status.c -- error messages, status names and clocks. */
#include "convdiag/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

cd_status_t cd_err_set(cd_err_t *err, cd_status_t status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
        /* Cut short: never leave half a UTF-8 character, the message may land in a text column. */
        if (n >= (int)sizeof(err->msg)) {
            const unsigned char *m = (const unsigned char *)err->msg;
            size_t len = sizeof(err->msg) - 1, lead = len;
            while (lead > 0 && (m[lead - 1] & 0xC0) == 0x80)
                lead--;
            if (lead > 0) {
                unsigned char c = m[--lead];
                size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
                if (len - lead < need)
                    err->msg[lead] = '\0';
            }
        }
    }
    return status;
}

const char *cd_status_name(cd_status_t status)
{
    switch (status) {
    case CD_OK: return "ok";
    case CD_RETRY: return "retry";
    case CD_ERROR: return "error";
    }
    return "unknown";
}

static int64_t clock_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t cd_now_us(void) { return clock_us(CLOCK_REALTIME); }
int64_t cd_mono_us(void) { return clock_us(CLOCK_MONOTONIC); }
