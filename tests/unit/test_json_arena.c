/*
 * test_json_arena.c -- cJSON trees in an arena: allocations inside it come
 * from it and are never freed one by one, outside it cJSON works as usual,
 * a value larger than a chunk gets a chunk of its own, and a reset makes the
 * memory serve the next trees.  Overruns, leaks and frees of arena memory
 * are the sanitizer's to find.
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

#include "convdiag/batch.h"
#include "convdiag/json_arena.h"

static int install(void **state)
{
    (void)state;
    cd_json_arena_install();
    return 0;
}

/* A JSON object {"k0":"v0-<pad>", ...} of n members, each value len bytes. */
static char *object_text(int n, size_t len)
{
    size_t cap = (size_t)n * (len + 32) + 8;
    char *s = malloc(cap), *p = s;
    *p++ = '{';
    for (int i = 0; i < n; i++) {
        p += sprintf(p, "%s\"k%d\":\"", i ? "," : "", i);
        memset(p, 'a' + i % 26, len);
        p += len;
        *p++ = '"';
    }
    *p++ = '}';
    *p = '\0';
    return s;
}

static void check_object(const cJSON *root, int n, size_t len)
{
    assert_non_null(root);
    assert_int_equal(cJSON_GetArraySize(root), n);
    for (int i = 0; i < n; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", i);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
        assert_true(cJSON_IsString(v));
        assert_int_equal(strlen(v->valuestring), len);
        assert_int_equal(v->valuestring[len - 1], 'a' + i % 26);
    }
}

static void test_trees_live_until_reset(void **state)
{
    (void)state;
    cd_json_arena_t a;
    cJSON *roots[200];
    char *small = object_text(20, 30);
    char *big = object_text(2, 300 * 1024); /* larger than a chunk */

    cd_json_arena_init(&a);
    for (int round = 0; round < 3; round++) {
        assert_true(cd_json_arena_enter(&a));
        for (int i = 0; i < 200; i++)
            roots[i] = cJSON_Parse(i == 100 ? big : small);
        /* A failed parse frees what it made: nothing, inside the arena. */
        assert_null(cJSON_Parse("{\"k\":[1,2,"));
        cd_json_arena_leave();

        /* Outside, cJSON allocates and frees as usual. */
        cJSON *own = cJSON_Parse(small);
        check_object(own, 20, 30);
        cJSON_Delete(own);

        for (int i = 0; i < 200; i++)
            check_object(roots[i], i == 100 ? 2 : 20, i == 100 ? 300 * 1024 : 30);
        cd_json_arena_reset(&a);
    }
    cd_json_arena_fini(&a);
    free(small);
    free(big);
}

static void test_one_thread_two_arenas(void **state)
{
    (void)state;
    cd_json_arena_t a, b;
    char *text = object_text(5, 10);

    /* One thread switching between arenas, as the ingest does with its two
     * batches: each tree stays with the arena it was made in. */
    cd_json_arena_init(&a);
    cd_json_arena_init(&b);
    assert_true(cd_json_arena_enter(&a));
    cJSON *in_a = cJSON_Parse(text);
    cd_json_arena_leave();
    assert_true(cd_json_arena_enter(&b));
    cJSON *in_b = cJSON_Parse(text);
    cd_json_arena_leave();
    cd_json_arena_reset(&b);
    check_object(in_a, 5, 10);
    (void)in_b;
    cd_json_arena_fini(&a);
    cd_json_arena_fini(&b);
    free(text);
}

/* Batches parse into their arena; records rejected after parsing and
 * cleared batches give nothing back to free(). */
static void test_batch_uses_its_arena(void **state)
{
    (void)state;
    cd_event_limits_t lim;
    cd_batch_t b;
    char *ok = strdup("{\"eventId\":\"e1\",\"timestamp\":\"2026-11-22T10:00:00.123Z\","
                      "\"organizationId\":\"8a6d5c2e-1f3b-4c7d-9e0a-2b4c6d8e0f12\","
                      "\"liveWorkItemId\":\"lwi-1\",\"scenario\":\"QueueAssignment\","
                      "\"status\":\"Started\",\"channelType\":\"voice\"}");
    char *bad = strdup("{\"eventId\":1}");

    cd_event_limits_init(&lim);
    assert_int_equal(cd_batch_init(&b, 2), CD_OK);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 40; i++) {
            cd_record_t *r = cd_batch_push(&b);
            r->payload = i % 4 ? ok : bad;
            r->len = strlen(r->payload);
        }
        cd_batch_parse(&b, &lim);
        for (int i = 0; i < 40; i++) {
            assert_int_equal(b.records[i].valid, i % 4 != 0);
            assert_null(b.records[i].event.root); /* built in the arena, gone with it */
        }
        assert_string_equal(b.records[1].event.event_id, "e1");
        cd_record_reject(&b.records[1], "refused later");
        assert_string_equal(b.records[2].event.live_work_item_id, "lwi-1");
        cd_batch_clear(&b);
    }
    cd_batch_fini(&b);
    free(ok);
    free(bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trees_live_until_reset),
        cmocka_unit_test(test_one_thread_two_arenas),
        cmocka_unit_test(test_batch_uses_its_arena),
    };
    return cmocka_run_group_tests_name("json_arena", tests, install, NULL);
}
