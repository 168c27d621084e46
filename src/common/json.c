/* json.c -- JSON text output helpers; see json.h. */
#include "convdiag/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cd_json_put_string(cd_buf_t *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    cd_buf_putc(b, '"');
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        cd_buf_append(b, run, (size_t)(s - run));
        run = s + 1;
        switch (c) {
        case '"': cd_buf_puts(b, "\\\""); break;
        case '\\': cd_buf_puts(b, "\\\\"); break;
        case '\n': cd_buf_puts(b, "\\n"); break;
        case '\r': cd_buf_puts(b, "\\r"); break;
        case '\t': cd_buf_puts(b, "\\t"); break;
        default: {
            char u[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
            cd_buf_puts(b, u);
        }
        }
    }
    cd_buf_append(b, run, (size_t)(s - run));
    cd_buf_putc(b, '"');
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
