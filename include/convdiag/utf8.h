/* utf8.h -- strict UTF-8 checks (RFC 3629: no overlongs, no surrogates, <= U+10FFFF). */
#ifndef CONVDIAG_UTF8_H
#define CONVDIAG_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when buf[0..len) is well-formed UTF-8.  On false, *bad_at (if not NULL)
 * receives the byte offset of the first invalid sequence. */
bool cd_utf8_valid(const char *buf, size_t len, size_t *bad_at);

/* Number of code points in a valid UTF-8 string. */
size_t cd_utf8_length(const char *s, size_t len);

#endif
