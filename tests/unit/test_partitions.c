/*
 * test_partitions.c -- the day arithmetic of events partitions: the UTC day
 * of a time, partition names and back, the first day retention keeps; and
 * the two settings.
 *
 * Names are checked against the C library's own calendar (gmtime_r), days
 * against values computed independently (Python's datetime.date).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "convdiag/config.h"
#include "convdiag/store.h"
#include "convdiag/timeutil.h"

#define DAY_US 86400000000LL

static int64_t at(const char *rfc3339)
{
    int64_t us = 0;
    cd_err_t err;
    assert_int_equal(cd_time_parse_rfc3339(rfc3339, 0, &us, &err), CD_OK);
    return us;
}

static void test_day(void **state)
{
    (void)state;
    assert_int_equal(cd_store_partitions_day(0), 0);
    assert_int_equal(cd_store_partitions_day(DAY_US - 1), 0);
    assert_int_equal(cd_store_partitions_day(DAY_US), 1);
    /* before 1970 the day is rounded down, not toward zero */
    assert_int_equal(cd_store_partitions_day(-1), -1);
    assert_int_equal(cd_store_partitions_day(-DAY_US), -1);
    assert_int_equal(cd_store_partitions_day(-DAY_US - 1), -2);
    /* UTC days, whatever offset the event was written with */
    assert_int_equal(cd_store_partitions_day(at("2026-11-22T00:00:00.000Z")), 20779);
    assert_int_equal(cd_store_partitions_day(at("2026-11-22T23:59:59.999999Z")), 20779);
    assert_int_equal(cd_store_partitions_day(at("2026-11-23T01:00:00.000+02:00")), 20779);
    assert_int_equal(cd_store_partitions_day(at("2026-11-21T22:00:00.000-02:00")), 20779);
    assert_int_equal(cd_store_partitions_day(at("2028-02-29T12:00:00.000Z")), 21243);
    assert_int_equal(cd_store_partitions_day(at("0001-01-01T00:00:00.000Z")), -719162);
    assert_int_equal(cd_store_partitions_day(at("9999-12-31T23:59:59.999999Z")), 2932896);
}

static void test_keep_from(void **state)
{
    (void)state;
    int64_t today = 20779; /* 2026-11-22 */
    assert_true(cd_store_partitions_keep_from(today, 0) == INT64_MIN);
    assert_int_equal(cd_store_partitions_keep_from(today, 30), 20749); /* 2026-10-23 */
    assert_int_equal(cd_store_partitions_keep_from(today, 1), today - 1);
    /* 2026-10-22 ended at 2026-10-23T00:00Z, more than 30 days before any time of
     * 2026-11-22: dropped.  2026-10-23 ended less than 30 days ago: kept. */
    int64_t keep = cd_store_partitions_keep_from(today, 30);
    assert_true(cd_store_partitions_day(at("2026-10-22T23:59:59.999999Z")) < keep);
    assert_true(cd_store_partitions_day(at("2026-10-23T00:00:00.000Z")) >= keep);
}

static void test_name(void **state)
{
    (void)state;
    char buf[32];
    static const struct {
        int64_t day;
        const char *name;
    } cases[] = {
        {20779, "events_20261122"},  {0, "events_19700101"},      {-1, "events_19691231"},
        {21243, "events_20280229"},  {-719162, "events_00010101"}, {2932896, "events_99991231"},
        {-718797, "events_00020101"}, {10957, "events_20000101"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t day = -1;
        assert_true(cd_store_partitions_name(cases[i].day, buf, sizeof(buf)));
        assert_string_equal(buf, cases[i].name);
        assert_true(cd_store_partitions_parse_name(cases[i].name, &day));
        assert_int_equal(day, cases[i].day);
    }
    /* no four-digit year, no name */
    strcpy(buf, "x");
    assert_false(cd_store_partitions_name(-719163, buf, sizeof(buf)));
    assert_string_equal(buf, "");
    assert_false(cd_store_partitions_name(2932897, buf, sizeof(buf)));
    assert_false(cd_store_partitions_name(INT64_MIN, buf, sizeof(buf)));
    assert_false(cd_store_partitions_name(INT64_MAX, buf, sizeof(buf)));
    /* a buffer too short is refused, not cut */
    assert_false(cd_store_partitions_name(20779, buf, 15));
    assert_true(cd_store_partitions_name(20779, buf, 16));
}

static void test_parse_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "events_20261131", /* no such date */
        "events_20260229", /* not a leap year */
        "events_21000229",
        "events_00000101", /* no year 0 */
        "events_2026112",  "events_202611220", "events_2026112x", "events_+0261122",
        "events_ 0261122", "evnts_20261122",   "events20261122",  "events_",
        "",                "events_20261122x", "EVENTS_20261122", "events_20261322",
        "events_20261100",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t day = 12345;
        if (cd_store_partitions_parse_name(bad[i], &day))
            fail_msg("'%s' was taken for day %lld", bad[i], (long long)day);
    }
}

/* Every day of a wide span against gmtime_r, and back. */
static void test_against_libc(void **state)
{
    (void)state;
    char name[32], want[32];
    for (int64_t day = -719162; day <= 2932896; day += (day > -1000 && day < 30000) ? 1 : 97) {
        time_t t = (time_t)(day * 86400);
        struct tm tm;
        int64_t back = 0;
        assert_non_null(gmtime_r(&t, &tm));
        snprintf(want, sizeof(want), "events_%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday);
        assert_true(cd_store_partitions_name(day, name, sizeof(name)));
        assert_string_equal(name, want);
        assert_true(cd_store_partitions_parse_name(name, &back));
        assert_int_equal(back, day);
        /* every time of the day maps to it */
        assert_int_equal(cd_store_partitions_day(day * DAY_US), day);
        assert_int_equal(cd_store_partitions_day(day * DAY_US + DAY_US - 1), day);
    }
}

/* events.retention.days and events.partition.ahead.days: defaults, range, environment. */
static void test_settings(void **state)
{
    (void)state;
    cd_config_t cfg;
    cd_err_t err;

    cd_config_init(&cfg);
    assert_int_equal(cfg.events_retention_days, 30);
    assert_int_equal(cfg.events_partition_ahead_days, 7);
    assert_int_equal(cd_config_set(&cfg, "events.retention.days", "0", &err), CD_OK);
    assert_int_equal(cfg.events_retention_days, 0);
    assert_int_equal(cd_config_set(&cfg, "events.retention.days", "-1", &err), CD_ERROR);
    assert_non_null(strstr(err.msg, "events.retention.days: '-1'"));
    assert_int_equal(cd_config_set(&cfg, "events.partition.ahead.days", "367", &err), CD_ERROR);
    assert_int_equal(cd_config_set(&cfg, "events.partition.ahead.days", "0", &err), CD_OK);
    assert_int_equal(cfg.events_partition_ahead_days, 0);
    setenv("CONVDIAG_EVENTS_RETENTION_DAYS", "90", 1);
    setenv("CONVDIAG_EVENTS_PARTITION_AHEAD_DAYS", "14", 1);
    assert_int_equal(cd_config_load_env(&cfg, &err), CD_OK);
    unsetenv("CONVDIAG_EVENTS_RETENTION_DAYS");
    unsetenv("CONVDIAG_EVENTS_PARTITION_AHEAD_DAYS");
    assert_int_equal(cfg.events_retention_days, 90);
    assert_int_equal(cfg.events_partition_ahead_days, 14);
    cd_config_fini(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_day),           cmocka_unit_test(test_keep_from),
        cmocka_unit_test(test_name),          cmocka_unit_test(test_parse_refused),
        cmocka_unit_test(test_against_libc), cmocka_unit_test(test_settings),
    };
    return cmocka_run_group_tests_name("partitions", tests, NULL, NULL);
}
