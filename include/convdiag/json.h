/* json.h -- writing JSON text into a cd_buf_t, for what cJSON's printer gets wrong
 * (it rounds numbers to 15 significant digits). */
#ifndef CONVDIAG_JSON_H
#define CONVDIAG_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "convdiag/buf.h"

/* A JSON string literal escaped as cJSON escapes it: '"', '\\', \b, \f, \n, \r
 * and \t short, other control characters \u00xx; UTF-8 passes through. */
void cd_json_put_string(cd_buf_t *b, const char *s);

/* Past the run of bytes from s (up to end) that stand for themselves in a
 * JSON string: all but control characters, '"' and '\\'. */
const char *cd_json_plain_run(const char *s, const char *end);

/* The shortest decimal form that reads back as the same double; null for
 * infinities and NaN, which JSON cannot represent. */
void cd_json_put_number(cd_buf_t *b, double v);

/* The same text into buf (32 bytes are always enough); returns buf. */
const char *cd_json_number_text(double v, char *buf, size_t size);

/*
 * Finds the value of member `key` of the top-level object in the valid JSON
 * text buf[0..len), as a span of the original text (numbers keep every digit
 * they were sent with).  False when the root is not an object or has no such
 * member.
 */
bool cd_json_member_span(const char *buf, size_t len, const char *key, const char **value,
                         size_t *value_len);

#endif
