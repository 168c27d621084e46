/* json.c -- JSON text output helpers; see json.h. */
#include "convdiag/json.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cd_json_put_string(cd_buf_t *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t len = strlen(s);
    char *o, *p;

    /* Room for the worst case (every byte a \u00XX) at once: the loop then
     * writes straight into the buffer, which is what envelope writing spends
     * its time on. */
    if (len > (SIZE_MAX - 2) / 6 || !(o = cd_buf_reserve(b, 6 * len + 2))) {
        b->oom = true;
        return;
    }
    p = o;
    *p++ = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\') {
            *p++ = (char)c;
            continue;
        }
        *p++ = '\\';
        switch (c) {
        case '"': *p++ = '"'; break;
        case '\\': *p++ = '\\'; break;
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
