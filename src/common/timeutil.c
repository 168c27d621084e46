/* timeutil.c -- RFC 3339 parsing and formatting without the C library's time zone state. */
#include "convdiag/timeutil.h"

#include <stdbool.h>
#include <string.h>

/* a / b rounded down, and the remainder that goes with it, in [0, b), for b > 0. */
static int64_t floor_divmod(int64_t a, int64_t b, int64_t *rem)
{
    int64_t q = a / b, r = a % b;

    if (r < 0) {
        r += b;
        q--;
    }
    *rem = r;
    return q;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t yoe;
    const int64_t era = floor_divmod(y - (m <= 2), 400, &yoe);
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/*
 * The proleptic Gregorian date of a day counted from 1970-01-01 (H. Hinnant's
 * civil_from_days).  Plain arithmetic: gmtime_r takes the time zone lock and
 * would cost more than the formatting around it.
 */
static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
    int64_t doe64;
    const int64_t era = floor_divmod(z + 719468, 146097, &doe64);
    const unsigned doe = (unsigned)doe64;
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)((int64_t)yoe + era * 400 + (*m <= 2));
}

static bool is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

/* Reads exactly n digits; returns -1 if any is not a digit. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

cd_status_t cd_time_parse_rfc3339(const char *s, int min_frac_digits, int64_t *out_us,
                                  cd_err_t *err)
{
    const char *p = s;
    int y = digits(p, 4), mo, d, h, mi, se;

    if (y < 0 || p[4] != '-' || (mo = digits(p + 5, 2)) < 0 || p[7] != '-' ||
        (d = digits(p + 8, 2)) < 0 || (p[10] != 'T' && p[10] != 't') ||
        (h = digits(p + 11, 2)) < 0 || p[13] != ':' || (mi = digits(p + 14, 2)) < 0 ||
        p[16] != ':' || (se = digits(p + 17, 2)) < 0)
        return cd_err_set(err, CD_ERROR, "'%s' is not an RFC 3339 date-time", s);
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return cd_err_set(err, CD_ERROR, "'%s' has no such date", s);
    if (h > 23 || mi > 59 || se > 59)
        return cd_err_set(err, CD_ERROR, "'%s' has no such time of day", s);
    p += 19;

    int64_t frac_us = 0;
    int nfrac = 0;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            if (nfrac < 6)
                frac_us = frac_us * 10 + (*p - '0');
            nfrac++;
            p++;
        }
        if (nfrac == 0)
            return cd_err_set(err, CD_ERROR, "'%s' has an empty fraction of a second", s);
        for (int i = nfrac; i < 6; i++)
            frac_us *= 10;
    }
    if (nfrac < min_frac_digits)
        return cd_err_set(err, CD_ERROR,
                          "'%s' needs at least %d fractional digits (millisecond precision)", s,
                          min_frac_digits);

    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh = digits(p + 1, 2), om = -1;
        if (oh >= 0 && p[3] == ':')
            om = digits(p + 4, 2);
        if (oh < 0 || om < 0 || oh > 23 || om > 59)
            return cd_err_set(err, CD_ERROR, "'%s' has a malformed UTC offset", s);
        offset_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return cd_err_set(err, CD_ERROR, "'%s' lacks a UTC offset ('Z' or '+hh:mm')", s);
    }
    if (*p != '\0')
        return cd_err_set(err, CD_ERROR, "'%s' has trailing characters", s);

    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se -
                   (int64_t)offset_min * 60;
    *out_us = secs * 1000000 + frac_us;
    return CD_OK;
}

/* Two decimal digits of v < 100. */
static char *put2(char *o, unsigned v)
{
    o[0] = (char)('0' + v / 10);
    o[1] = (char)('0' + v % 10);
    return o + 2;
}

/* Three decimal digits of v < 1000. */
static char *put3(char *o, unsigned v)
{
    o[0] = (char)('0' + v / 100);
    return put2(o + 1, v % 100);
}

/* The year as printf's "%04d" writes it: at least four characters, sign included. */
static char *put_year(char *o, int y)
{
    if (y >= 0 && y <= 9999)
        return put2(put2(o, (unsigned)y / 100), (unsigned)y % 100);

    char tmp[12];
    int n = 0;
    unsigned v = y < 0 ? 0u - (unsigned)y : (unsigned)y;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n < (y < 0 ? 3 : 4))
        tmp[n++] = '0';
    if (y < 0)
        *o++ = '-';
    while (n)
        *o++ = tmp[--n];
    return o;
}

size_t cd_time_write_utc(char *out, int64_t us, int frac_digits)
{
    /* Rounded down: a time before 1970 lies in the second and day that begin before it. */
    int64_t frac, sod;
    int64_t secs = floor_divmod(us, 1000000, &frac);
    int64_t days = floor_divmod(secs, 86400, &sod);
    int y;
    unsigned m, d, s = (unsigned)sod;
    char *o;

    civil_from_days(days, &y, &m, &d);
    o = put_year(out, y);
    *o++ = '-';
    o = put2(o, m);
    *o++ = '-';
    o = put2(o, d);
    *o++ = 'T';
    o = put2(o, s / 3600);
    *o++ = ':';
    o = put2(o, s / 60 % 60);
    *o++ = ':';
    o = put2(o, s % 60);
    *o++ = '.';
    o = put3(o, (unsigned)frac / 1000);
    if (frac_digits != 3)
        o = put3(o, (unsigned)frac % 1000);
    *o++ = 'Z';
    return (size_t)(o - out);
}

void cd_time_format_utc(int64_t us, int frac_digits, char *buf, size_t size)
{
    if (size > CD_TIME_UTC_MAX) {
        buf[cd_time_write_utc(buf, us, frac_digits)] = '\0';
        return;
    }
    if (size == 0)
        return;

    /* Too small: as much as fits, like snprintf. */
    char tmp[CD_TIME_UTC_MAX];
    size_t n = cd_time_write_utc(tmp, us, frac_digits);
    if (n > size - 1)
        n = size - 1;
    memcpy(buf, tmp, n);
    buf[n] = '\0';
}
