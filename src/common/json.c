/* json.c -- JSON text output helpers; see json.h. */
#include "convdiag/json.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The bytes of w that end a run of plain string bytes (below 0x20, '"' or
 * '\\'), each flagged by its top bit.  Every byte is tested on its own (its
 * low seven bits plus a constant stay within the byte), so the flags are
 * exact and the lowest one is the first such byte.
 */
static uint64_t special8(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ULL, low7 = 0x7F7F7F7F7F7F7F7FULL;
    uint64_t quote = w ^ (ones * '"'), backslash = w ^ (ones * '\\');
    uint64_t plain = (((w & low7) + ones * (0x80 - 0x20)) | w) & /* at least 0x20 */
                     (((quote & low7) + low7) | quote) &          /* not '"' */
                     (((backslash & low7) + low7) | backslash);   /* not '\\' */
    return ~plain & ~low7;
}

static bool special(char c) { return (unsigned char)c < 0x20 || c == '"' || c == '\\'; }

/* Eight bytes a step while they last: strings are mostly plain. */
const char *cd_json_plain_run(const char *s, const char *end)
{
    uint64_t w, flags;

    for (; end - s >= 8; s += 8) {
        memcpy(&w, s, 8);
        if ((flags = special8(w))) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            return s + __builtin_ctzll(flags) / 8; /* the first byte is the lowest */
#else
            break;
#endif
        }
    }
    while (s < end && !special(*s))
        s++;
    return s;
}

void cd_json_put_string(cd_buf_t *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t len = strlen(s);
    const char *end = s + len;
    char *o, *p;

    /* Room for the worst case (every byte a \u00xx) at once: the loop then
     * writes straight into the buffer, which is what envelope writing spends
     * its time on. */
    if (len > (SIZE_MAX - 2) / 6 || !(o = cd_buf_reserve(b, 6 * len + 2))) {
        b->oom = true;
        return;
    }
    p = o;
    *p++ = '"';
    for (;;) {
        const char *run = s;
        s = cd_json_plain_run(s, end);
        memcpy(p, run, (size_t)(s - run));
        p += s - run;
        if (s == end)
            break;
        unsigned char c = (unsigned char)*s++;
        *p++ = '\\';
        switch (c) {
        case '"': *p++ = '"'; break;
        case '\\': *p++ = '\\'; break;
        case '\b': *p++ = 'b'; break;
        case '\f': *p++ = 'f'; break;
        case '\n': *p++ = 'n'; break;
        case '\r': *p++ = 'r'; break;
        case '\t': *p++ = 't'; break;
        default:
            memcpy(p, "u00", 3);
            p[3] = hex[c >> 4];
            p[4] = hex[c & 15];
            p += 5;
        }
    }
    *p++ = '"';
    cd_buf_commit(b, (size_t)(p - o));
}

const char *cd_json_number_text(double v, char *buf, size_t size)
{
    if (!isfinite(v)) { /* JSON has no infinity or NaN */
        snprintf(buf, size, "null");
        return buf;
    }
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, size, "%.*g", digits, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return buf;
}

void cd_json_put_number(cd_buf_t *b, double v)
{
    char tmp[32];
    cd_buf_puts(b, cd_json_number_text(v, tmp, sizeof(tmp)));
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static size_t skip_ws(const char *b, size_t len, size_t i)
{
    while (i < len && is_ws(b[i]))
        i++;
    return i;
}

/* Index just past the string starting at b[i] == '"'. */
static size_t skip_string(const char *b, size_t len, size_t i)
{
    for (i++; i < len && b[i] != '"'; i++)
        if (b[i] == '\\')
            i++;
    return i + 1;
}

/* Index just past the value starting at b[i]. */
static size_t skip_value(const char *b, size_t len, size_t i)
{
    if (b[i] == '"')
        return skip_string(b, len, i);
    if (b[i] == '{' || b[i] == '[') {
        int depth = 0;
        while (i < len) {
            char c = b[i];
            if (c == '"') {
                i = skip_string(b, len, i);
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if ((c == '}' || c == ']') && --depth == 0)
                return i + 1;
            i++;
        }
        return i;
    }
    /* number, true, false or null */
    while (i < len && b[i] != ',' && b[i] != '}' && b[i] != ']' && !is_ws(b[i]))
        i++;
    return i;
}

bool cd_json_member_span(const char *buf, size_t len, const char *key, const char **value,
                         size_t *value_len)
{
    size_t klen = strlen(key);
    size_t i = skip_ws(buf, len, 0);
    if (i >= len || buf[i] != '{')
        return false;
    i = skip_ws(buf, len, i + 1);
    while (i < len && buf[i] == '"') {
        size_t kstart = i + 1, kend = skip_string(buf, len, i) - 1;
        i = skip_ws(buf, len, kend + 1);
        if (i >= len || buf[i] != ':')
            return false;
        i = skip_ws(buf, len, i + 1);
        size_t vstart = i;
        i = skip_value(buf, len, i);
        if (kend - kstart == klen && memcmp(buf + kstart, key, klen) == 0) {
            *value = buf + vstart;
            *value_len = i - vstart;
            return true;
        }
        i = skip_ws(buf, len, i);
        if (i < len && buf[i] == ',')
            i = skip_ws(buf, len, i + 1);
    }
    return false;
}
