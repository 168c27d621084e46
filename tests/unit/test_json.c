/*
 * test_json.c -- JSON strings written as cJSON writes them (the emulator
 * stores customDimensions with cd_json_put_string where it used cJSON's
 * printer), and the plain run every string scan relies on: every byte
 * value at every offset within and across its eight-byte steps.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "convdiag/buf.h"
#include "convdiag/json.h"

static void test_plain_run_stops_at_each_special_byte(void **state)
{
    (void)state;
    char s[40];

    for (int c = 0; c < 256; c++) {
        bool special = c < 0x20 || c == '"' || c == '\\';
        for (size_t at = 0; at < sizeof(s); at++) {
            memset(s, 'a', sizeof(s));
            s[at] = (char)c;
            const char *stop = cd_json_plain_run(s, s + sizeof(s));
            assert_ptr_equal(stop, special ? s + at : s + sizeof(s));
            /* An end before the byte hides it. */
            assert_ptr_equal(cd_json_plain_run(s, s + at), s + at);
        }
    }
}

static uint64_t rng_state = 0x2545F4914F6CDD1DULL;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static void test_put_string_like_cjson(void **state)
{
    (void)state;
    char s[96];
    cd_buf_t b;

    cd_buf_init(&b);
    for (int i = 0; i < 20000; i++) {
        size_t n = rnd(sizeof(s));
        for (size_t k = 0; k < n; k++) /* a third control characters and ASCII punctuation */
            s[k] = (char)(rnd(3) == 0 ? 1 + rnd(0x3F) : 1 + rnd(255));
        s[n] = '\0';
        if (i == 0)
            strcpy(s, "\"\\\b\f\n\r\t\x01\x1f\x7f/\xc3\xa9");

        cJSON *item = cJSON_CreateString(s);
        char *expected = cJSON_PrintUnformatted(item);
        cd_buf_reset(&b);
        cd_json_put_string(&b, s);
        assert_false(b.oom);
        assert_int_equal(b.len, strlen(expected));
        assert_memory_equal(b.data, expected, b.len);
        free(expected);
        cJSON_Delete(item);
    }
    cd_buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_run_stops_at_each_special_byte),
        cmocka_unit_test(test_put_string_like_cjson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
