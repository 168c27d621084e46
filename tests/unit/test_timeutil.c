/*
 * test_timeutil.c -- RFC 3339 timestamps to microseconds since the epoch and
 * back: offsets, fractional digits, the calendar, dates before 1970.
 *
 * Expected instants were computed independently (calendar.timegm).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convdiag/common.h"
#include "convdiag/timeutil.h"

#define T_2026 1795341600123456LL /* 2026-11-22T10:00:00.123456Z */

/* ---- Parsing: accepted ---- */

typedef struct parse_ok_case {
    const char *in;
    int min_frac;
    int64_t us;
} parse_ok_case_t;

static const parse_ok_case_t parse_ok_cases[] = {
    /* one instant, every way of writing the offset */
    {"2026-11-22T10:00:00.123456Z", 3, T_2026},
    {"2026-11-22T10:00:00.123456z", 3, T_2026},
    {"2026-11-22t10:00:00.123456Z", 3, T_2026},
    {"2026-11-22T10:00:00.123456+00:00", 3, T_2026},
    {"2026-11-22T10:00:00.123456-00:00", 3, T_2026},
    {"2026-11-22T15:30:00.123456+05:30", 3, T_2026},
    {"2026-11-22T02:00:00.123456-08:00", 3, T_2026},
    {"2026-11-23T09:59:00.123456+23:59", 3, T_2026},
    {"2026-11-21T10:01:00.123456-23:59", 3, T_2026},
    {"2026-11-22T15:45:00.123456+05:45", 3, T_2026},
    /* fractional digits: 3, 6, 9 (truncated to µs, never rounded) */
    {"2026-11-22T10:00:00.123Z", 3, 1795341600123000LL},
    {"2026-11-22T10:00:00.1234Z", 3, 1795341600123400LL},
    {"2026-11-22T10:00:00.123456789Z", 3, T_2026},
    {"2026-11-22T10:00:00.999999999Z", 3, 1795341600999999LL},
    {"2026-11-22T10:00:00.000000001Z", 3, 1795341600000000LL},
    {"2026-11-22T10:00:00.12345678901234567890Z", 3, T_2026},
    {"2026-11-22T10:00:00.1Z", 1, 1795341600100000LL},
    {"2026-11-22T10:00:00Z", 0, 1795341600000000LL},
    {"2026-11-22T10:00:00.123456Z", 6, T_2026},
    /* the epoch and around it */
    {"1970-01-01T00:00:00.000Z", 3, 0},
    {"1970-01-01T05:30:00.000+05:30", 3, 0},
    {"1969-12-31T16:00:00.000-08:00", 3, 0},
    {"1970-01-01T00:00:00.000001Z", 3, 1},
    {"1969-12-31T23:59:59.999999Z", 3, -1},
    {"1969-12-31T23:59:59.000Z", 3, -1000000},
    {"1969-12-31T00:00:00.000Z", 3, -86400000000LL},
    {"1970-01-01T00:00:00.000-23:59", 3, 86340000000LL},
    /* before 1970 */
    {"1969-07-20T20:17:40.000Z", 3, -14182940000000LL},
    {"1900-01-01T00:00:00.000Z", 3, -2208988800000000LL},
    {"0001-01-01T00:00:00.000Z", 3, -62135596800000000LL},
    /* leap days */
    {"2024-02-29T12:00:00.000Z", 3, 1709208000000000LL},
    {"2024-02-29T00:00:00.000Z", 3, 1709164800000000LL},
    {"2024-03-01T00:00:00.000Z", 3, 1709251200000000LL},
    {"2000-02-29T23:59:59.999Z", 3, 951868799999000LL},
    {"1600-02-29T00:00:00.000Z", 3, -11670998400000000LL},
    {"2100-03-01T00:00:00.000Z", 3, 4107542400000000LL},
    /* the far end */
    {"9999-12-31T23:59:59.999999Z", 3, 253402300799999999LL},
};

static void test_parse_accepted(void **state)
{
    (void)state;
    for (size_t i = 0; i < CD_ARRAY_LEN(parse_ok_cases); i++) {
        const parse_ok_case_t *c = &parse_ok_cases[i];
        cd_err_t err = {"(no reason set)"};
        int64_t us = INT64_MIN;
        cd_status_t st = cd_time_parse_rfc3339(c->in, c->min_frac, &us, &err);
        if (st != CD_OK || us != c->us)
            print_message("'%s' (min %d): status %d, %" PRId64 ", expected %" PRId64
                          "; reason: %s\n",
                          c->in, c->min_frac, (int)st, us, c->us, st == CD_OK ? "-" : err.msg);
        assert_int_equal(st, CD_OK);
        assert_int_equal(us, c->us);
    }
}

/* ---- Parsing: refused ---- */

typedef struct parse_bad_case {
    const char *in;
    int min_frac;
    const char *expect; /* after the quoted value */
} parse_bad_case_t;

static const parse_bad_case_t parse_bad_cases[] = {
    /* the calendar */
    {"2023-02-29T00:00:00.000Z", 3, "has no such date"},
    {"1900-02-29T00:00:00.000Z", 3, "has no such date"},
    {"2100-02-29T00:00:00.000Z", 3, "has no such date"},
    {"2024-02-30T00:00:00.000Z", 3, "has no such date"},
    {"2024-04-31T00:00:00.000Z", 3, "has no such date"},
    {"2024-06-31T00:00:00.000Z", 3, "has no such date"},
    {"2024-09-31T00:00:00.000Z", 3, "has no such date"},
    {"2024-11-31T00:00:00.000Z", 3, "has no such date"},
    {"2024-01-32T00:00:00.000Z", 3, "has no such date"},
    {"2024-01-00T00:00:00.000Z", 3, "has no such date"},
    {"2024-00-10T00:00:00.000Z", 3, "has no such date"},
    {"2024-13-10T00:00:00.000Z", 3, "has no such date"},
    /* the clock */
    {"2024-01-01T24:00:00.000Z", 3, "has no such time of day"},
    {"2024-01-01T23:60:00.000Z", 3, "has no such time of day"},
    {"2024-01-01T23:59:61.000Z", 3, "has no such time of day"},
    {"2024-01-01T99:00:00.000Z", 3, "has no such time of day"},
    /* the shape */
    {"", 3, "is not an RFC 3339 date-time"},
    {"2024", 3, "is not an RFC 3339 date-time"},
    {"2024-01-01", 3, "is not an RFC 3339 date-time"},
    {"2024-1-01T00:00:00.000Z", 3, "is not an RFC 3339 date-time"},
    {"2024-01-01 12:00:00.000Z", 3, "is not an RFC 3339 date-time"},
    {"2024/01/01T12:00:00.000Z", 3, "is not an RFC 3339 date-time"},
    {"20240101T120000.000Z", 3, "is not an RFC 3339 date-time"},
    {"2024-01-01T12:00.000Z", 3, "is not an RFC 3339 date-time"},
    {"2024-01-01T12:0a:00.000Z", 3, "is not an RFC 3339 date-time"},
    {" 2024-01-01T12:00:00.000Z", 3, "is not an RFC 3339 date-time"},
    {"-2024-01-01T12:00:00.000Z", 3, "is not an RFC 3339 date-time"},
    {"+12024-01-01T12:00:00.000Z", 3, "is not an RFC 3339 date-time"},
    {"1795341600123", 3, "is not an RFC 3339 date-time"},
    /* the fraction */
    {"2024-01-01T12:00:00Z", 3, "needs at least 3 fractional digits (millisecond precision)"},
    {"2024-01-01T12:00:00.1Z", 3, "needs at least 3 fractional digits"},
    {"2024-01-01T12:00:00.12Z", 3, "needs at least 3 fractional digits"},
    {"2024-01-01T12:00:00.12345Z", 6, "needs at least 6 fractional digits"},
    {"2024-01-01T12:00:00,123Z", 3, "needs at least 3 fractional digits"},
    {"2024-01-01T12:00:00.Z", 3, "has an empty fraction of a second"},
    {"2024-01-01T12:00:00.Z", 0, "has an empty fraction of a second"},
    /* the offset */
    {"2024-01-01T12:00:00.000", 3, "lacks a UTC offset ('Z' or '+hh:mm')"},
    {"2024-01-01T12:00:00", 0, "lacks a UTC offset"},
    {"2024-01-01T12:00:00.000 Z", 3, "lacks a UTC offset"},
    {"2024-01-01T12:00:00.000UTC", 3, "lacks a UTC offset"},
    {"2024-01-01T12:00:00.000+05", 3, "has a malformed UTC offset"},
    {"2024-01-01T12:00:00.000+0530", 3, "has a malformed UTC offset"},
    {"2024-01-01T12:00:00.000+5:30", 3, "has a malformed UTC offset"},
    {"2024-01-01T12:00:00.000+05:60", 3, "has a malformed UTC offset"},
    {"2024-01-01T12:00:00.000+24:00", 3, "has a malformed UTC offset"},
    {"2024-01-01T12:00:00.000-", 3, "has a malformed UTC offset"},
    {"2024-01-01T12:00:00.000+05:3", 3, "has a malformed UTC offset"},
    {"2024-01-01T12:00:00.000+", 3, "has a malformed UTC offset"},
    /* after the offset */
    {"2024-01-01T12:00:00.000Zjunk", 3, "has trailing characters"},
    {"2024-01-01T12:00:00.000ZZ", 3, "has trailing characters"},
    {"2024-01-01T12:00:00.000Z ", 3, "has trailing characters"},
    {"2024-01-01T12:00:00.000+05:30:00", 3, "has trailing characters"},
    {"2024-01-01T12:00:00.000+05:30\n", 3, "has trailing characters"},
};

static void test_parse_refused(void **state)
{
    (void)state;
    for (size_t i = 0; i < CD_ARRAY_LEN(parse_bad_cases); i++) {
        const parse_bad_case_t *c = &parse_bad_cases[i];
        /* A heap copy of exactly the string, so a read past its end is caught. */
        char *in = strdup(c->in);
        assert_non_null(in);
        cd_err_t err = {"(no reason set)"};
        int64_t us = 0;
        char want[256];
        snprintf(want, sizeof(want), "'%s' %s", c->in, c->expect);
        cd_status_t st = cd_time_parse_rfc3339(in, c->min_frac, &us, &err);
        free(in);
        if (st != CD_ERROR || !strstr(err.msg, want))
            print_message("'%s' (min %d): status %d\n  expected: %s\n  actual:   %s\n", c->in,
                          c->min_frac, (int)st, want, err.msg);
        assert_int_equal(st, CD_ERROR);
        assert_non_null(strstr(err.msg, want));
    }
}

/* Every prefix of a valid timestamp is refused, and read without overrun. */
static void test_every_prefix_refused(void **state)
{
    (void)state;
    static const char full[] = "2026-11-22T15:30:00.123456+05:30";
    for (size_t n = 0; n < sizeof(full) - 1; n++) {
        char *in = strndup(full, n);
        assert_non_null(in);
        int64_t us = 0;
        cd_err_t err;
        cd_status_t st = cd_time_parse_rfc3339(in, 3, &us, &err);
        if (st != CD_ERROR)
            print_message("prefix '%s' accepted\n", in);
        free(in);
        assert_int_equal(st, CD_ERROR);
    }
}

/* err may be NULL (cd_err_set allows it). */
static void test_parse_null_err(void **state)
{
    (void)state;
    int64_t us = 0;
    assert_int_equal(cd_time_parse_rfc3339("nope", 3, &us, NULL), CD_ERROR);
    assert_int_equal(cd_time_parse_rfc3339("1970-01-01T00:00:01.000Z", 3, &us, NULL), CD_OK);
    assert_int_equal(us, 1000000);
}

/* ---- Formatting ---- */

typedef struct format_case {
    int64_t us;
    int digits;
    const char *out;
} format_case_t;

static const format_case_t format_cases[] = {
    {0, 3, "1970-01-01T00:00:00.000Z"},
    {0, 6, "1970-01-01T00:00:00.000000Z"},
    {1, 6, "1970-01-01T00:00:00.000001Z"},
    {T_2026, 6, "2026-11-22T10:00:00.123456Z"},
    {T_2026, 3, "2026-11-22T10:00:00.123Z"},
    {1795341600999999LL, 3, "2026-11-22T10:00:00.999Z"}, /* truncated, not rounded */
    {1709208000000000LL, 3, "2024-02-29T12:00:00.000Z"},
    {951868799999000LL, 6, "2000-02-29T23:59:59.999000Z"},
    {4107542400000000LL, 3, "2100-03-01T00:00:00.000Z"},
    /* negative values: the instant before the epoch, fraction counted forward */
    {-1, 6, "1969-12-31T23:59:59.999999Z"},
    {-1, 3, "1969-12-31T23:59:59.999Z"},
    {-500, 3, "1969-12-31T23:59:59.999Z"},
    {-999999, 6, "1969-12-31T23:59:59.000001Z"},
    {-1000000, 6, "1969-12-31T23:59:59.000000Z"},
    {-1000001, 6, "1969-12-31T23:59:58.999999Z"},
    {-86400000000LL, 6, "1969-12-31T00:00:00.000000Z"},
    {-86400000001LL, 6, "1969-12-30T23:59:59.999999Z"},
    {-14182940000000LL, 3, "1969-07-20T20:17:40.000Z"},
    {-14182939999999LL, 6, "1969-07-20T20:17:40.000001Z"},
    {-2208988800000000LL, 6, "1900-01-01T00:00:00.000000Z"},
    {-11670998400000000LL, 3, "1600-02-29T00:00:00.000Z"},
    {-62135596800000000LL, 6, "0001-01-01T00:00:00.000000Z"},
    {253402300799999999LL, 6, "9999-12-31T23:59:59.999999Z"},
    /* outside 0000..9999 the year is written as printf's "%04d" would */
    {-62167219200000000LL, 6, "0000-01-01T00:00:00.000000Z"},
    {-62167219200000001LL, 6, "-001-12-31T23:59:59.999999Z"},
    {253402300800000000LL, 3, "10000-01-01T00:00:00.000Z"},
};

static void test_format(void **state)
{
    (void)state;
    for (size_t i = 0; i < CD_ARRAY_LEN(format_cases); i++) {
        const format_case_t *c = &format_cases[i];
        char buf[32];
        memset(buf, '#', sizeof(buf));
        cd_time_format_utc(c->us, c->digits, buf, sizeof(buf));
        if (strcmp(buf, c->out) != 0)
            print_message("%" PRId64 " (%d digits): expected %s, got %s\n", c->us, c->digits,
                          c->out, buf);
        assert_string_equal(buf, c->out);
    }
}

/* cd_time_write_utc writes the same text, without a NUL, and returns its length. */
static void test_write_utc(void **state)
{
    (void)state;
    for (size_t i = 0; i < CD_ARRAY_LEN(format_cases); i++) {
        const format_case_t *c = &format_cases[i];
        char buf[CD_TIME_UTC_MAX + 8];
        memset(buf, '#', sizeof(buf));
        size_t n = cd_time_write_utc(buf, c->us, c->digits);
        assert_true(n <= CD_TIME_UTC_MAX);
        assert_int_equal(n, strlen(c->out));
        assert_memory_equal(buf, c->out, n);
        for (size_t k = n; k < sizeof(buf); k++)
            assert_int_equal(buf[k], '#');
    }
    /* The extremes of int64_t fit in CD_TIME_UTC_MAX. */
    char buf[CD_TIME_UTC_MAX + 8];
    memset(buf, '#', sizeof(buf));
    assert_true(cd_time_write_utc(buf, INT64_MAX, 6) <= CD_TIME_UTC_MAX);
    assert_int_equal(buf[CD_TIME_UTC_MAX], '#');
    memset(buf, '#', sizeof(buf));
    assert_true(cd_time_write_utc(buf, INT64_MIN, 6) <= CD_TIME_UTC_MAX);
    assert_int_equal(buf[CD_TIME_UTC_MAX], '#');
}

/* The buffer size is respected: a short buffer gets a truncated, terminated string, as
 * snprintf would leave it, and nothing is written past it. */
static void test_format_short_buffer(void **state)
{
    (void)state;
    static const char full[] = "2026-11-22T10:00:00.123456Z";
    for (size_t size = 0; size <= sizeof(full) + 4; size++) {
        char buf[48];
        memset(buf, '#', sizeof(buf));
        cd_time_format_utc(T_2026, 6, buf, size);
        if (size == 0) {
            assert_int_equal(buf[0], '#');
            continue;
        }
        size_t n = size - 1 < sizeof(full) - 1 ? size - 1 : sizeof(full) - 1;
        assert_int_equal(strlen(buf), n);
        assert_memory_equal(buf, full, n);
        for (size_t k = size; k < sizeof(buf); k++)
            assert_int_equal(buf[k], '#');
    }
}

static uint64_t next_rand(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static int64_t floor_ms(int64_t us)
{
    int64_t r = us % 1000;
    return r < 0 ? us - r - 1000 : us - r;
}

static void round_trip(int64_t us)
{
    char buf[32];
    int64_t back = INT64_MIN;
    cd_err_t err;

    cd_time_format_utc(us, 6, buf, sizeof(buf));
    assert_int_equal(strlen(buf), 27);
    if (cd_time_parse_rfc3339(buf, 6, &back, &err) != CD_OK || back != us)
        print_message("%" PRId64 " -> %s -> %" PRId64 "\n", us, buf, back);
    assert_int_equal(cd_time_parse_rfc3339(buf, 6, &back, &err), CD_OK);
    assert_int_equal(back, us);

    cd_time_format_utc(us, 3, buf, sizeof(buf));
    assert_int_equal(strlen(buf), 24);
    if (cd_time_parse_rfc3339(buf, 3, &back, &err) != CD_OK || back != floor_ms(us))
        print_message("%" PRId64 " -> %s -> %" PRId64 "\n", us, buf, back);
    assert_int_equal(cd_time_parse_rfc3339(buf, 3, &back, &err), CD_OK);
    assert_int_equal(back, floor_ms(us));
}

static void test_round_trip(void **state)
{
    (void)state;
    static const int64_t fixed[] = {
        0, 1, -1, 999, -999, 1000, -1000, 1001, -1001, 999999, -999999, 1000000, -1000000,
        86399999999LL, -86399999999LL, 86400000000LL, -86400000000LL, T_2026, -T_2026,
        951782400000000LL, /* 2000-02-28 */ 951868800000000LL, /* 2000-03-01 */
        -62135596800000000LL, 253402300799999999LL,
    };
    for (size_t i = 0; i < CD_ARRAY_LEN(fixed); i++)
        round_trip(fixed[i]);

    /* Years 0001..9999, both signs, every digit position. */
    const int64_t lo = -62135596800000000LL, hi = 253402300799999999LL;
    uint64_t seed = 42;
    for (int i = 0; i < 20000; i++) {
        int64_t us = lo + (int64_t)(next_rand(&seed) % (uint64_t)(hi - lo + 1));
        round_trip(us);
    }
    /* Every day boundary over four years around the epoch, and one µs either side. */
    for (int64_t d = -2 * 366; d <= 2 * 366; d++) {
        round_trip(d * 86400000000LL);
        round_trip(d * 86400000000LL - 1);
        round_trip(d * 86400000000LL + 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_accepted),
        cmocka_unit_test(test_parse_refused),
        cmocka_unit_test(test_every_prefix_refused),
        cmocka_unit_test(test_parse_null_err),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_write_utc),
        cmocka_unit_test(test_format_short_buffer),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests_name("timeutil", tests, NULL, NULL);
}
