/* json.c -- JSON text output helpers; see json.h. */
#include "convdiag/json.h"

#include <stdio.h>
#include <stdlib.h>

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

void cd_json_put_number(cd_buf_t *b, double v)
{
    char tmp[32];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(tmp, sizeof(tmp), "%.*g", digits, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    cd_buf_puts(b, tmp);
}
