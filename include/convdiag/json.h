/* json.h -- writing JSON text into a cd_buf_t, for what cJSON's printer gets wrong
 * (it rounds numbers to 15 significant digits). */
#ifndef CONVDIAG_JSON_H
#define CONVDIAG_JSON_H

#include "convdiag/buf.h"

/* A JSON string literal: quotes, and escapes for '"', '\\' and control characters;
 * UTF-8 passes through. */
void cd_json_put_string(cd_buf_t *b, const char *s);

/* The shortest decimal form that reads back as the same double. */
void cd_json_put_number(cd_buf_t *b, double v);

#endif
