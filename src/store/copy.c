/* copy.c -- COPY text format and streaming; see copy.h. */
#include "copy.h"

#include <stdio.h>
#include <string.h>

#include "convdiag/tagging.h"
#include "convdiag/timeutil.h"

/* Sent once this much is formatted: big enough to amortize a write,
 * small enough for the server to start early. */
#define COPY_CHUNK (256 * 1024)

void cd_copy_init(cd_copy_t *c, cd_pg_t *pg)
{
    memset(c, 0, sizeof(*c));
    c->pg = pg;
    cd_buf_init(&c->buf);
}

void cd_copy_fini(cd_copy_t *c) { cd_buf_fini(&c->buf); }

cd_status_t cd_copy_begin(cd_copy_t *c, const char *target, cd_err_t *err)
{
    char sql[1024];
    if ((size_t)snprintf(sql, sizeof(sql), "COPY %s FROM STDIN", target) >= sizeof(sql))
        return cd_err_set(err, CD_ERROR, "COPY into %.64s...: statement too long", target);
    /* For messages: the table, its columns as far as they fit. */
    snprintf(c->what, sizeof(c->what), "%.*s", (int)sizeof(c->what) - 1, sql);
    cd_buf_reset(&c->buf);
    c->rows = 0;
    return cd_pg_query(c->pg, c->what, sql, false, 0, NULL, NULL, NULL, NULL, err);
}

/* COPY text format: the bytes a field's text must escape, and as what. */
static const char copy_escape[256] = {['\\'] = '\\', ['\t'] = 't', ['\n'] = 'n', ['\r'] = 'r'};

static void put_field(cd_buf_t *b, const char *v)
{
    if (!v) {
        cd_buf_append(b, "\\N", 2);
        return;
    }
    /* Room for the worst case at once, so the loop writes without checks:
     * formatting rows is most of the ingest's own CPU time. */
    size_t len = strlen(v);
    char *o = len <= SIZE_MAX / 2 ? cd_buf_reserve(b, 2 * len) : NULL;
    if (!o) {
        b->oom = true;
        return;
    }
    char *p = o;
    for (; *v; v++) {
        char e = copy_escape[(unsigned char)*v];
        if (!e) {
            *p++ = *v;
            continue;
        }
        *p++ = '\\';
        *p++ = e;
    }
    cd_buf_commit(b, (size_t)(p - o));
}

cd_status_t cd_copy_row(cd_copy_t *c, const char *const *v, int n, cd_err_t *err)
{
    cd_buf_t *b = &c->buf;
    for (int i = 0; i < n; i++) {
        if (i)
            cd_buf_putc(b, '\t');
        put_field(b, v[i]);
    }
    cd_buf_putc(b, '\n');
    if (b->len < COPY_CHUNK || b->oom)
        return CD_OK;
    cd_status_t st = cd_pg_copy_send(c->pg, c->what, b->data, b->len, err);
    cd_buf_reset(b);
    return st;
}

cd_status_t cd_copy_end(cd_copy_t *c, cd_status_t st, cd_err_t *err)
{
    cd_buf_t *b = &c->buf;
    const char *why = b->oom ? "out of memory formatting rows" : NULL;
    cd_err_t end_err;

    c->rows = 0;
    if (st == CD_OK && !why && b->len)
        st = cd_pg_copy_send(c->pg, c->what, b->data, b->len, err);
    cd_buf_reset(b);
    b->oom = false;
    /* Ended in every case the connection still allows: aborted if a row
     * could not be formatted or sent, so the server's outcome is known and
     * the connection usable again. */
    if (st != CD_OK) {
        cd_pg_copy_end(c->pg, c->what, "sending rows failed", NULL, &end_err);
        return st;
    }
    st = cd_pg_copy_end(c->pg, c->what, why, &c->rows, err);
    if (why && st != CD_RETRY) /* our own abort: transient, whatever the server said to it */
        return cd_err_set(err, CD_RETRY, "%s: %s", c->what, why);
    return st;
}

/* ---- field text -------------------------------------------------------- */

size_t cd_write_i64(char *out, int64_t v)
{
    char tmp[20];
    uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
    size_t n = 0, len = 0;

    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        out[len++] = '-';
    while (n)
        out[len++] = tmp[--n];
    out[len] = '\0';
    return len;
}

const char *cd_row_time(cd_row_text_t *t, int field, int64_t us)
{
    if (us == CD_NO_TIME)
        return NULL;
    cd_time_format_utc(us, 6, t->num[field], sizeof(t->num[field]));
    return t->num[field];
}

const char *cd_row_int(cd_row_text_t *t, int field, int64_t v)
{
    cd_write_i64(t->num[field], v);
    return t->num[field];
}

void cd_array_put(cd_buf_t *b, const char *id)
{
    cd_buf_putc(b, b->len ? ',' : '{');
    cd_buf_putc(b, '"');
    for (; *id; id++) {
        if (*id == '"' || *id == '\\')
            cd_buf_putc(b, '\\');
        cd_buf_putc(b, *id);
    }
    cd_buf_putc(b, '"');
}

void cd_array_put_value(cd_buf_t *b, const char *v)
{
    if (v) {
        cd_array_put(b, v);
        return;
    }
    cd_buf_putc(b, b->len ? ',' : '{');
    cd_buf_puts(b, "NULL");
}

void cd_array_close(cd_buf_t *b)
{
    if (!b->len)
        cd_buf_putc(b, '{');
    cd_buf_putc(b, '}');
}
