/* buf.c -- growable byte buffer; see buf.h. */
#include "convdiag/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cd_buf_init(cd_buf_t *b) { memset(b, 0, sizeof(*b)); }

void cd_buf_fini(cd_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void cd_buf_reset(cd_buf_t *b)
{
    b->len = 0;
    b->oom = false;
    if (b->data)
        b->data[0] = '\0';
}

static bool reserve(cd_buf_t *b, size_t extra)
{
    if (b->oom)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) {
        b->oom = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

void cd_buf_append(cd_buf_t *b, const void *data, size_t len)
{
    if (!reserve(b, len))
        return;
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void cd_buf_puts(cd_buf_t *b, const char *s) { cd_buf_append(b, s, strlen(s)); }

void cd_buf_putc(cd_buf_t *b, char c) { cd_buf_append(b, &c, 1); }

void cd_buf_printf(cd_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}
