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
void cd_buf_putc(cd_buf_t *b, char c);
void cd_buf_printf(cd_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
