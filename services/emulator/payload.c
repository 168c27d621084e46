/* payload.c -- Content-Encoding and item boundaries; see payload.h. */
#include "payload.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

void emu_payload_init(emu_payload_t *p)
{
    memset(p, 0, sizeof(*p));
    cd_buf_init(&p->inflated);
}

void emu_payload_fini(emu_payload_t *p)
{
    cd_buf_fini(&p->inflated);
    free(p->items);
    memset(p, 0, sizeof(*p));
}

static int gunzip(emu_payload_t *p, const char *body, size_t len, size_t max_inflated,
                  cd_err_t *err)
{
    enum { CHUNK = 64 * 1024 };
    z_stream zs;
    int status = 0;

    memset(&zs, 0, sizeof(zs));
    /* 16 + MAX_WBITS: gzip framing only, as Content-Encoding: gzip promises. */
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
        cd_err_set(err, CD_ERROR, "out of memory");
        return 500;
    }
    zs.next_in = (Bytef *)body;
    zs.avail_in = (uInt)len; /* the body limit keeps len far below 4 GiB */
    for (;;) {
        char *out = cd_buf_reserve(&p->inflated, CHUNK);
        if (!out) {
            cd_err_set(err, CD_ERROR, "out of memory");
            status = 500;
            break;
        }
        zs.next_out = (Bytef *)out;
        zs.avail_out = CHUNK;
        int rc = inflate(&zs, Z_NO_FLUSH);
        cd_buf_commit(&p->inflated, CHUNK - zs.avail_out);
        if (p->inflated.len > max_inflated) {
            cd_err_set(err, CD_ERROR, "The body is larger than %zu bytes once decompressed",
                       max_inflated);
            status = 413;
            break;
        }
        if (rc == Z_STREAM_END) {
            if (zs.avail_in == 0)
                break;
            inflateReset(&zs); /* gzip allows several members one after the other */
        } else if (rc != Z_OK) {
            /* Z_BUF_ERROR with output room left: the input ended early. */
            cd_err_set(err, CD_ERROR, "The body is not valid gzip: %s",
                       rc == Z_BUF_ERROR ? "it ends before the gzip stream does"
                       : zs.msg         ? zs.msg
                                        : "corrupt data");
            status = 400;
            break;
        }
    }
    inflateEnd(&zs);
    return status;
}

int emu_payload_decode(emu_payload_t *p, const char *encoding, const char *body, size_t len,
                       size_t max_inflated, cd_err_t *err)
{
    size_t n = 0;

    if (encoding) {
        encoding += strspn(encoding, " \t");
        n = strcspn(encoding, " \t");
    }
    if (n == 0 || (n == 8 && strncasecmp(encoding, "identity", 8) == 0)) {
        p->text = body;
        p->len = len;
        return 0;
    }
    if (n == 4 && strncasecmp(encoding, "gzip", 4) == 0) {
        int status = gunzip(p, body, len, max_inflated, err);
        p->text = p->inflated.data;
        p->len = p->inflated.len;
        return status;
    }
    cd_err_set(err, CD_ERROR, "Content-Encoding '%.40s' is not supported: use gzip or identity",
               encoding);
    return 415;
}

static const char *skip_blanks(const char *q, const char *end)
{
    while (q < end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n'))
        q++;
    return q;
}

static bool add_item(emu_payload_t *p, const char *text, size_t len)
{
    if (p->count == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        emu_span_t *items = realloc(p->items, cap * sizeof(*items));
        if (!items)
            return false;
        p->items = items;
        p->cap = cap;
    }
    p->items[p->count++] = (emu_span_t){text, len};
    return true;
}

/* Past the closing quote of the string starting at q; NULL if it never closes. */
static const char *string_end(const char *q, const char *end)
{
    for (q++; q < end; q++) {
        if (*q == '\\')
            q++;
        else if (*q == '"')
            return q + 1;
    }
    return NULL;
}

/*
 * Past the JSON value starting at q, judged by its brackets and strings only;
 * NULL if it never closes.  Whether it is valid JSON is for the parser to say.
 */
static const char *value_end(const char *q, const char *end)
{
    if (*q == '"')
        return string_end(q, end);
    if (*q != '{' && *q != '[') {
        while (q < end && !memchr(" \t\r\n,]}", *q, 7))
            q++;
        return q;
    }
    for (int depth = 0; q < end;) {
        if (*q == '"') {
            if (!(q = string_end(q, end)))
                return NULL;
            continue;
        }
        if (*q == '{' || *q == '[')
            depth++;
        else if ((*q == '}' || *q == ']') && --depth == 0)
            return q + 1;
        q++;
    }
    return NULL;
}

static int split_array(emu_payload_t *p, const char *q, const char *end, cd_err_t *err)
{
    q = skip_blanks(q + 1, end); /* past '[' */
    if (q < end && *q == ']') {
        q++;
    } else {
        for (;;) {
            const char *v = q < end ? value_end(q, end) : NULL;
            if (!v || v == q)
                goto bad;
            if (!add_item(p, q, (size_t)(v - q)))
                goto oom;
            q = skip_blanks(v, end);
            if (q < end && *q == ',') {
                q = skip_blanks(q + 1, end);
                continue;
            }
            if (q < end && *q == ']') {
                q++;
                break;
            }
            goto bad;
        }
    }
    if (skip_blanks(q, end) == end)
        return 0;
bad:
    cd_err_set(err, CD_ERROR, "The body is not valid JSON: the array is malformed near byte %zu",
               (size_t)(q - p->text));
    return 400;
oom:
    cd_err_set(err, CD_ERROR, "out of memory");
    return 500;
}

int emu_payload_split(emu_payload_t *p, cd_err_t *err)
{
    const char *end = p->text + p->len;
    const char *q = skip_blanks(p->text, end);

    if (q < end && *q == '[') {
        p->format = EMU_FORMAT_ARRAY;
        return split_array(p, q, end, err);
    }
    p->format = EMU_FORMAT_STREAM;
    while (q < end) {
        const char *nl = memchr(q, '\n', (size_t)(end - q));
        const char *line_end = nl ? nl : end;
        const char *last = line_end;
        while (last > q && (last[-1] == ' ' || last[-1] == '\t' || last[-1] == '\r'))
            last--;
        if (last > q && !add_item(p, q, (size_t)(last - q))) {
            cd_err_set(err, CD_ERROR, "out of memory");
            return 500;
        }
        q = skip_blanks(line_end, end);
    }
    return 0;
}
