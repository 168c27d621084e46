/* timeutil.h -- RFC 3339 timestamps <-> microseconds since the Unix epoch (UTC). */
#ifndef CONVDIAG_TIMEUTIL_H
#define CONVDIAG_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "convdiag/common.h"

/*
 * Parses "YYYY-MM-DDTHH:MM:SS.fff[fff...](Z|+hh:mm|-hh:mm)".  At least
 * min_frac_digits fractional digits are required (the event contract asks
 * for millisecond precision: 3); digits past the sixth are truncated.
 * On failure err says what is wrong with the value.
 */
cd_status_t cd_time_parse_rfc3339(const char *s, int min_frac_digits, int64_t *out_us,
                                  cd_err_t *err);

/* Formats as "YYYY-MM-DDTHH:MM:SS.ffffffZ" (frac_digits 3 or 6).  buf needs 32 bytes. */
void cd_time_format_utc(int64_t us, int frac_digits, char *buf, size_t size);

/* The longest text cd_time_write_utc writes: a year of six digits and a sign. */
#define CD_TIME_UTC_MAX 30

/*
 * Writes what cd_time_format_utc does at out, which has room for
 * CD_TIME_UTC_MAX bytes, without a terminating NUL; returns the length.
 */
size_t cd_time_write_utc(char *out, int64_t us, int frac_digits);

#endif
