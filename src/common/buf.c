/* buf.c -- growable byte buffer; see buf.h. */
#include "convdiag/buf.h"

#include <stdarg.h>
#include <stdint.h>
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

char *cd_buf_grow(cd_buf_t *b, size_t n)
{
    if (b->oom)
        return NULL;
    if (n < b->cap - b->len)
        return b->data + b->len;
    if (n > SIZE_MAX / 2 - b->len) {
        b->oom = true;
        return NULL;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) {
        b->oom = true;
        return NULL;
    }
    b->data = d;
    b->cap = cap;
    return d + b->len;
}

void cd_buf_append(cd_buf_t *b, const void *data, size_t len)
{
    char *o = cd_buf_reserve(b, len);

    if (!o)
        return;
    memcpy(o, data, len);
    cd_buf_commit(b, len);
}

void cd_buf_puts(cd_buf_t *b, const char *s) { cd_buf_append(b, s, strlen(s)); }

void cd_buf_printf(cd_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *o;
    if (n < 0 || !(o = cd_buf_reserve(b, (size_t)n)))
        return;
    va_start(ap, fmt);
    vsnprintf(o, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}
