/*
 * test_plainjson.c -- the emulator's plain JSON parser against cJSON: every
 * text the parser accepts must give the very tree cJSON gives (member order,
 * valueint and links included), and every text cJSON refuses must be
 * declined.  Fixed cases first, then generated objects and their mutations.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_same.h"
#include "plainjson.h"

/* What cJSON makes of exactly text[0..len), as the emulator asks it. */
static cJSON *reference(const char *text, size_t len)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (root && end != text + len) {
        cJSON_Delete(root);
        root = NULL;
    }
    return root;
}

/*
 * Parses text[0..len) both ways from an exact-size copy (so that reading
 * past len is the sanitizer's to see); fails the test when the parser
 * accepts what cJSON refuses or builds another tree.  Returns whether the
 * parser accepted it.
 */
static bool check_len(const char *text, size_t len)
{
    char *copy = malloc(len ? len : 1), why[512];
    memcpy(copy, text, len);
    cJSON *plain = emu_plainjson_parse(copy, len), *ref = reference(copy, len);
    bool accepted = plain != NULL, same = !plain || json_same(plain, ref, why, sizeof(why));

    if (!same)
        print_error("differs from cJSON on %.*s: %s\n", (int)len, text, why);
    cJSON_Delete(plain);
    cJSON_Delete(ref);
    free(copy);
    assert_true(same);
    return accepted;
}

static bool check(const char *text) { return check_len(text, strlen(text)); }

static void test_accepted_like_cjson(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "{}",
        "{\"a\":\"b\"}",
        "{ \"a\" : \"b\" ,\n\t\"c\"\r:\"d\" }",
        "{\"e\":\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"}",
        "{\"n\":0,\"m\":-0,\"big\":123456789012345,\"neg\":-123456789012345}",
        "{\"int_max\":2147483647,\"above\":2147483648,\"below\":-2147483649}",
        "{\"t\":true,\"f\":false,\"z\":null}",
        "{\"a\":{\"b\":{\"c\":{}}},\"d\":{\"e\":1}}",
        "{\"dup\":\"first\",\"dup\":\"second\"}",
        "{\"utf8\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xff\"}",
        "{\"\":\"\"}",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        if (!check(texts[i]))
            fail_msg("declined plain JSON: %s", texts[i]);
}

static void test_declined(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "",  " {}", "{} ", "[]", "\"s\"", "{\"u\":\"\\u0041\"}",
        "{\"u\":\"\\ud83d\\ude00\"}", "{\"f\":1.5}", "{\"e\":1e3}", "{\"d\":1234567890123456}",
        "{\"z\":01}", "{\"a\":[1,2]}", "{\"c\":\"a\tb\"}", "{\"q\":\"open}", "{\"t\":tru}",
        "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "{\"a\":1", "{\"x\":\"\\q\"}", "{\"m\":-}",
        "{\"p\":+1}",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        if (check(texts[i]))
            fail_msg("accepted what it should leave to cJSON: %s", texts[i]);

    /* 32 levels are read, 33 are left to cJSON. */
    char deep[256] = "";
    for (int levels = 32; levels <= 33; levels++) {
        size_t n = 0;
        for (int i = 0; i < levels; i++)
            n += (size_t)sprintf(deep + n, "%s", i ? "\"k\":{" : "{");
        for (int i = 0; i < levels; i++)
            deep[n++] = '}';
        assert_int_equal(check_len(deep, n), levels == 32);
    }
}

/* ---- generated objects -------------------------------------------------------------------- */

static uint64_t rng_state = 0x853C49E6748FEA9BULL;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

typedef struct text {
    char *p;
    size_t len, cap;
} text_t;

static void put(text_t *t, const char *s, size_t n)
{
    if (t->len + n > t->cap) {
        t->cap = (t->len + n) * 2;
        t->p = realloc(t->p, t->cap);
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
}

static void puts_(text_t *t, const char *s) { put(t, s, strlen(s)); }

static void blanks(text_t *t)
{
    static const char blank[] = " \t\n\r";
    while (rnd(4) == 0)
        put(t, &blank[rnd(4)], 1);
}

/* A string literal: mostly plain bytes, some escapes, now and then what
 * the parser declines (\u, a raw control character). */
static void gen_string(text_t *t)
{
    static const char *const escapes[] = {"\\\"", "\\\\", "\\/", "\\b", "\\f",
                                          "\\n",  "\\r",  "\\t", "\\u00e9"};
    uint32_t n = rnd(4) == 0 ? rnd(40) : rnd(8);
    put(t, "\"", 1);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t kind = rnd(20);
        if (kind == 0) {
            puts_(t, escapes[rnd(rnd(50) == 0 ? 9 : 8)]);
        } else {
            char c = (char)(kind == 1 ? 0x80 + rnd(128) : 0x20 + rnd(0x5F));
            if (rnd(400) == 0)
                c = (char)(1 + rnd(31));
            if (c == '"' || c == '\\')
                c = 'x';
            put(t, &c, 1);
        }
    }
    put(t, "\"", 1);
}

static void gen_number(text_t *t)
{
    char num[40];
    switch (rnd(6)) {
    case 0: snprintf(num, sizeof(num), "%d", (int)rnd(100) - 50); break;
    case 1: snprintf(num, sizeof(num), "%lld", (long long)rng_state % 1000000000000000LL); break;
    case 2: snprintf(num, sizeof(num), "-%u%09u", rnd(4000000), rnd(1000000000)); break;
    case 3: snprintf(num, sizeof(num), "%u.%u", rnd(1000), rnd(1000)); break; /* declined */
    case 4: snprintf(num, sizeof(num), "%ue%d", rnd(10), (int)rnd(20) - 10); break; /* declined */
    default: snprintf(num, sizeof(num), "%u", rnd(10)); break;
    }
    puts_(t, num);
}

static void gen_object(text_t *t, int depth);

static void gen_value(text_t *t, int depth)
{
    switch (rnd(depth < 4 ? 7 : 5)) {
    case 0: case 1: case 2: gen_string(t); break;
    case 3: gen_number(t); break;
    case 4: puts_(t, rnd(3) == 0 ? "null" : rnd(2) ? "true" : "false"); break;
    default:
        if (rnd(30) == 0)
            puts_(t, "[1,\"a\"]"); /* declined */
        else
            gen_object(t, depth + 1);
    }
}

static void gen_object(text_t *t, int depth)
{
    uint32_t n = rnd(7);
    put(t, "{", 1);
    blanks(t);
    for (uint32_t i = 0; i < n; i++) {
        if (i) {
            put(t, ",", 1);
            blanks(t);
        }
        gen_string(t);
        blanks(t);
        put(t, ":", 1);
        blanks(t);
        gen_value(t, depth);
        blanks(t);
    }
    put(t, "}", 1);
}

#define GENERATED 20000

static void test_generated_like_cjson(void **state)
{
    (void)state;
    text_t t = {0};
    size_t accepted = 0, mutated_accepted = 0;

    for (int i = 0; i < GENERATED; i++) {
        t.len = 0;
        gen_object(&t, 0);
        accepted += check_len(t.p, t.len);

        /* The same text with one byte changed, or cut short: whatever the
         * parser still accepts must be what cJSON makes of it. */
        size_t at = rnd((uint32_t)t.len);
        if (rnd(2)) {
            static const char bytes[] = "{}[]\":,\\ 0-.e\x01";
            t.p[at] = bytes[rnd(sizeof(bytes) - 1)];
            mutated_accepted += check_len(t.p, t.len);
        } else {
            mutated_accepted += check_len(t.p, at);
        }
    }
    free(t.p);
    print_message("generated: %zu of %d accepted, %zu of their mutations\n", accepted,
                  GENERATED, mutated_accepted);
    /* Most generated objects are plain: a parser declining everything would
     * pass the comparisons and be useless. */
    assert_true(accepted > GENERATED / 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted_like_cjson),
        cmocka_unit_test(test_declined),
        cmocka_unit_test(test_generated_like_cjson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
