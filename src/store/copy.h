/*
 * copy.h -- rows streamed to PostgreSQL with COPY ... FROM STDIN (text
 * format), private to store/.
 *
 * Rows are formatted into a buffer and sent in chunks while the next ones
 * are formatted, so the client's work and the server's overlap.  A COPY
 * begun is always ended: cd_copy_end sends its end (aborted, with the
 * reason, when a row could not be formatted) and collects its outcome.
 */
#ifndef CONVDIAG_STORE_COPY_H
#define CONVDIAG_STORE_COPY_H

#include <stddef.h>
#include <stdint.h>

#include "convdiag/buf.h"
#include "convdiag/common.h"
#include "pg.h"

typedef struct cd_copy {
    cd_pg_t *pg; /* borrowed */
    cd_buf_t buf;
    char what[192]; /* "COPY <target> FROM STDIN", for messages */
    size_t rows;    /* copied by the last COPY that ended well */
} cd_copy_t;

void cd_copy_init(cd_copy_t *c, cd_pg_t *pg);
void cd_copy_fini(cd_copy_t *c);

/* COPY target FROM STDIN; target names the table and its columns. */
cd_status_t cd_copy_begin(cd_copy_t *c, const char *target, cd_err_t *err);
/* One row of n fields (NULL: SQL NULL), each escaped for the text format. */
cd_status_t cd_copy_row(cd_copy_t *c, const char *const *v, int n, cd_err_t *err);
/* Ends the COPY begun and collects its outcome; st is that of its rows so
 * far: a failure is returned as is, the COPY aborted.  c->rows gets the
 * rows copied. */
cd_status_t cd_copy_end(cd_copy_t *c, cd_status_t st, cd_err_t *err);

/* ---- field text -------------------------------------------------------- */

#define CD_ROW_MAX_FIELDS 32

/* Text of the numbers and times of one row, a slot per field. */
typedef struct cd_row_text {
    const char *v[CD_ROW_MAX_FIELDS];
    char num[CD_ROW_MAX_FIELDS][40];
} cd_row_text_t;

/* A time (µs since the epoch) as UTC with microseconds; NULL for CD_NO_TIME. */
const char *cd_row_time(cd_row_text_t *t, int field, int64_t us);
const char *cd_row_int(cd_row_text_t *t, int field, int64_t v);

/* v in decimal at out (room for 21 bytes, NUL-terminated); returns the length.
 * Not snprintf: rows come by the thousand with several numbers each. */
size_t cd_write_i64(char *out, int64_t v);

/* id as the next element of an array literal "{...}" being built in b:
 * quoted, so that no id can read as NULL or split. */
void cd_array_put(cd_buf_t *b, const char *id);
/* The same, or the element NULL when v is NULL. */
void cd_array_put_value(cd_buf_t *b, const char *v);
/* Closes the literal ("{}" when empty). */
void cd_array_close(cd_buf_t *b);

#endif
