/*
 * test_utf8.c -- strict UTF-8 (RFC 3629): every class of ill-formed sequence
 * is refused at the offset of its first byte; code points are counted.
 *
 * Inputs are copied to heap buffers of exactly their length, so a look past
 * the end of a truncated sequence is caught under AddressSanitizer.
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

#include "convdiag/common.h"
#include "convdiag/utf8.h"

typedef struct utf8_case {
    const char *name;
    const char *bytes;
    size_t len;
    bool valid;
    size_t bad_at; /* when !valid */
    size_t chars;  /* when valid: code points */
} utf8_case_t;

#define OK(n, s, c) {n, s, sizeof(s) - 1, true, 0, c}
#define BAD(n, s, at) {n, s, sizeof(s) - 1, false, at, 0}

static const utf8_case_t cases[] = {
    /* well-formed */
    OK("empty", "", 0),
    OK("ASCII", "hello, world", 12),
    OK("NUL and DEL are code points", "a\0b\x7f", 4),
    OK("U+0080, smallest 2-byte", "\xC2\x80", 1),
    OK("U+00E9", "caf\xC3\xA9", 4),
    OK("U+07FF, largest 2-byte", "\xDF\xBF", 1),
    OK("U+0800, smallest 3-byte", "\xE0\xA0\x80", 1),
    OK("U+20AC euro sign", "\xE2\x82\xAC", 1),
    OK("U+D7FF, just below the surrogates", "\xED\x9F\xBF", 1),
    OK("U+E000, just above the surrogates", "\xEE\x80\x80", 1),
    OK("U+FFFD", "\xEF\xBF\xBD", 1),
    OK("U+FFFF", "\xEF\xBF\xBF", 1),
    OK("U+10000, smallest 4-byte", "\xF0\x90\x80\x80", 1),
    OK("U+1F600", "\xF0\x9F\x98\x80", 1),
    OK("U+10FFFF, largest code point", "\xF4\x8F\xBF\xBF", 1),
    OK("mixed widths", "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z", 5),
    OK("BOM is a code point", "\xEF\xBB\xBFx", 2),

    /* lone or unexpected continuation bytes */
    BAD("lone continuation 80", "\x80", 0),
    BAD("lone continuation BF after ASCII", "ab\xBF", 2),
    BAD("extra continuation after 2-byte", "\xC3\xA9\xA9", 2),
    BAD("extra continuation after 4-byte", "x\xF0\x9F\x98\x80\x80", 5),

    /* bytes that never occur */
    BAD("C0", "\xC0\x80", 0),
    BAD("C1", "a\xC1\xBF", 1),
    BAD("F5", "\xF5\x80\x80\x80", 0),
    BAD("F8 (old 5-byte lead)", "\xF8\x88\x80\x80\x80", 0),
    BAD("FC (old 6-byte lead)", "\xFC\x84\x80\x80\x80\x80", 0),
    BAD("FE", "\xFE", 0),
    BAD("FF", "ok\xFF", 2),

    /* overlong forms */
    BAD("overlong '/' as C0 AF", "\xC0\xAF", 0),
    BAD("overlong NUL as C0 80", "xy\xC0\x80", 2),
    BAD("overlong 3-byte E0 80 AF", "\xE0\x80\xAF", 0),
    BAD("overlong 3-byte E0 9F BF (U+07FF)", "\xE0\x9F\xBF", 0),
    BAD("overlong 4-byte F0 80 80 AF", "\xF0\x80\x80\xAF", 0),
    BAD("overlong 4-byte F0 8F BF BF (U+FFFF)", "abc\xF0\x8F\xBF\xBF", 3),

    /* surrogates, encoded directly */
    BAD("high surrogate ED A0 80 (U+D800)", "\xED\xA0\x80", 0),
    BAD("low surrogate ED BF BF (U+DFFF)", "a\xED\xBF\xBF", 1),
    BAD("surrogate pair as CESU-8", "\xED\xA0\xBD\xED\xB8\x80", 0),

    /* above U+10FFFF */
    BAD("F4 90 80 80 (U+110000)", "\xF4\x90\x80\x80", 0),
    BAD("F4 BF BF BF", "z\xF4\xBF\xBF\xBF", 1),

    /* truncated sequences */
    BAD("2-byte lead at end", "abc\xC3", 3),
    BAD("3-byte lead at end", "\xE2", 0),
    BAD("3-byte missing last byte at end", "a\xE2\x82", 1),
    BAD("4-byte missing last byte at end", "\xF0\x9F\x98", 0),
    BAD("4-byte missing two bytes at end", "ab\xF0\x9F", 2),
    BAD("2-byte lead before ASCII", "\xC3" "A", 0),
    BAD("3-byte cut by ASCII", "\xE2\x82" "A", 0),
    BAD("4-byte cut by ASCII", "x\xF0\x9F\x98" "A", 1),
    BAD("3-byte cut by a new lead", "\xE2\x82\xC3\xA9", 0),
    BAD("second byte not a continuation", "\xE2\x28\xA1", 0),
    BAD("third byte not a continuation", "\xE2\x82\x28", 0),
    BAD("fourth byte not a continuation", "\xF0\x9F\x98\x28", 0),

    /* the first error wins */
    BAD("valid then two errors", "\xC3\xA9 ok \xFF\xC0", 6),
    BAD("Latin-1 text", "caf\xE9 cr\xE8me", 3),
};

static void test_case(void **state)
{
    const utf8_case_t *c = *state;
    char *copy = malloc(c->len ? c->len : 1);
    assert_non_null(copy);
    memcpy(copy, c->bytes, c->len);

    size_t bad_at = (size_t)-1;
    bool valid = cd_utf8_valid(copy, c->len, &bad_at);
    if (valid != c->valid || (!valid && bad_at != c->bad_at))
        print_message("[%s] expected %s at %zu, got %s at %zu\n", c->name,
                      c->valid ? "valid" : "invalid", c->bad_at, valid ? "valid" : "invalid",
                      bad_at);
    if (c->valid) {
        assert_true(valid);
        assert_int_equal(cd_utf8_length(copy, c->len), c->chars);
    } else {
        assert_false(valid);
        assert_int_equal(bad_at, c->bad_at);
        /* bad_at is optional */
        assert_false(cd_utf8_valid(copy, c->len, NULL));
        /* everything before the bad sequence is valid on its own */
        assert_true(cd_utf8_valid(copy, c->bad_at, NULL));
    }
    free(copy);
}

/* The length argument, not a NUL, ends the input. */
static void test_length_is_respected(void **state)
{
    (void)state;
    static const char s[] = "ab\xC3\xA9\xFF";
    assert_true(cd_utf8_valid(s, 4, NULL));
    assert_false(cd_utf8_valid(s, 5, NULL));
    /* A sequence cut by the length is truncated even though more bytes follow. */
    size_t at = 99;
    assert_false(cd_utf8_valid(s, 3, &at));
    assert_int_equal(at, 2);
    assert_true(cd_utf8_valid(s, 0, NULL));
    assert_true(cd_utf8_valid(NULL, 0, NULL));
}

static void test_length_counts_code_points(void **state)
{
    (void)state;
    assert_int_equal(cd_utf8_length("", 0), 0);
    assert_int_equal(cd_utf8_length("abc", 3), 3);
    assert_int_equal(cd_utf8_length("\xC3\xA9\xC3\xA9", 4), 2);
    assert_int_equal(cd_utf8_length("\xE2\x82\xAC" "1", 4), 2);
    assert_int_equal(cd_utf8_length("\xF0\x9F\x98\x80\xF0\x9F\x98\x80", 8), 2);
    /* Only len bytes count. */
    assert_int_equal(cd_utf8_length("\xC3\xA9xyz", 2), 1);

    /* A long string: 1000 x U+1F600 is 4000 bytes and 1000 code points. */
    char *big = malloc(4000);
    assert_non_null(big);
    for (int i = 0; i < 1000; i++)
        memcpy(big + 4 * i, "\xF0\x9F\x98\x80", 4);
    assert_true(cd_utf8_valid(big, 4000, NULL));
    assert_int_equal(cd_utf8_length(big, 4000), 1000);
    /* Cut in the middle of the last character: invalid at its first byte. */
    size_t at = 0;
    assert_false(cd_utf8_valid(big, 3998, &at));
    assert_int_equal(at, 3996);
    free(big);
}

/* Every single byte on its own: ASCII is valid, nothing else is. */
static void test_every_single_byte(void **state)
{
    (void)state;
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        size_t at = 99;
        bool valid = cd_utf8_valid(&c, 1, &at);
        if (valid != (b < 0x80))
            print_message("byte %02X: %s\n", b, valid ? "valid" : "invalid");
        assert_int_equal(valid, b < 0x80);
        if (!valid)
            assert_int_equal(at, 0);
    }
}

/* Every two-byte sequence against the RFC 3629 table. */
static void test_every_two_byte_sequence(void **state)
{
    (void)state;
    for (int a = 0xC0; a <= 0xFF; a++) {
        for (int b = 0; b < 256; b++) {
            char s[2] = {(char)a, (char)b};
            bool want = a >= 0xC2 && a <= 0xDF && b >= 0x80 && b <= 0xBF;
            bool got = cd_utf8_valid(s, 2, NULL);
            if (got != want)
                print_message("%02X %02X: expected %s\n", a, b, want ? "valid" : "invalid");
            assert_int_equal(got, want);
        }
    }
}

/* Every 3-byte lead with every second byte (third byte 80). */
static void test_three_byte_second_byte_ranges(void **state)
{
    (void)state;
    for (int a = 0xE0; a <= 0xEF; a++) {
        int lo = a == 0xE0 ? 0xA0 : 0x80;
        int hi = a == 0xED ? 0x9F : 0xBF;
        for (int b = 0; b < 256; b++) {
            char s[3] = {(char)a, (char)b, (char)0x80};
            bool want = b >= lo && b <= hi;
            bool got = cd_utf8_valid(s, 3, NULL);
            if (got != want)
                print_message("%02X %02X 80: expected %s\n", a, b, want ? "valid" : "invalid");
            assert_int_equal(got, want);
        }
    }
}

/* Every 4-byte lead with every second byte (then 80 80). */
static void test_four_byte_second_byte_ranges(void **state)
{
    (void)state;
    for (int a = 0xF0; a <= 0xFF; a++) {
        int lo = a == 0xF0 ? 0x90 : 0x80;
        int hi = a == 0xF4 ? 0x8F : 0xBF;
        for (int b = 0; b < 256; b++) {
            char s[4] = {(char)a, (char)b, (char)0x80, (char)0x80};
            bool want = a <= 0xF4 && b >= lo && b <= hi;
            bool got = cd_utf8_valid(s, 4, NULL);
            if (got != want)
                print_message("%02X %02X 80 80: expected %s\n", a, b,
                              want ? "valid" : "invalid");
            assert_int_equal(got, want);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_length_is_respected),
        cmocka_unit_test(test_length_counts_code_points),
        cmocka_unit_test(test_every_single_byte),
        cmocka_unit_test(test_every_two_byte_sequence),
        cmocka_unit_test(test_three_byte_second_byte_ranges),
        cmocka_unit_test(test_four_byte_second_byte_ranges),
    };
    int failed = cmocka_run_group_tests_name("utf8", tests, NULL, NULL);

    size_t n = CD_ARRAY_LEN(cases);
    struct CMUnitTest *table = calloc(n, sizeof(*table));
    if (!table)
        return 1;
    for (size_t i = 0; i < n; i++) {
        table[i].name = cases[i].name;
        table[i].test_func = test_case;
        table[i].initial_state = (void *)&cases[i];
    }
    failed += _cmocka_run_group_tests("utf8_sequences", table, n, NULL, NULL);
    free(table);
    return failed;
}
