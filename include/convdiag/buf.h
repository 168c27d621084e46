/* buf.h -- a growable byte buffer, always NUL-terminated. */
#ifndef CONVDIAG_BUF_H
#define CONVDIAG_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct cd_buf {
    char *data;
    size_t len;
    size_t cap;
    bool oom; /* set once an allocation failed; later appends do nothing */
} cd_buf_t;

void cd_buf_init(cd_buf_t *b);
void cd_buf_fini(cd_buf_t *b);
void cd_buf_reset(cd_buf_t *b);

void cd_buf_append(cd_buf_t *b, const void *data, size_t len);
void cd_buf_puts(cd_buf_t *b, const char *s);
void cd_buf_printf(cd_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Writing in place, for text formatted straight into the buffer:
 * cd_buf_reserve makes room for n more bytes after the contents (the
 * terminating NUL aside) and returns where they go, or NULL once an
 * allocation has failed; after writing at most n bytes there, cd_buf_commit
 * adds the count written to the contents.  Nothing else may touch the buffer
 * in between.  The common case, room to spare, is inline.
 */
char *cd_buf_grow(cd_buf_t *b, size_t n); /* cd_buf_reserve's slow path */

static inline char *cd_buf_reserve(cd_buf_t *b, size_t n)
{
    if (!b->oom && n < b->cap - b->len)
        return b->data + b->len;
    return cd_buf_grow(b, n);
}

static inline void cd_buf_commit(cd_buf_t *b, size_t n)
{
    b->len += n;
    b->data[b->len] = '\0';
}

static inline void cd_buf_putc(cd_buf_t *b, char c)
{
    char *o = cd_buf_reserve(b, 1);
    if (o) {
        *o = c;
        cd_buf_commit(b, 1);
    }
}

#endif
