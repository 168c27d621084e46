/*
 * test_tag_state.c -- the conversation state a writer keeps between
 * batches (tagging.h): found by liveWorkItemId through growth, changed
 * conversations listed once each, a commit storing them (one version up,
 * ended runs gone, open ones kept in order), a failed batch dropping what it
 * changed, a revoked partition dropping its conversations, and memory held
 * to max_bytes by letting the least recently used go.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convdiag/tagging.h"

static char *name(char *buf, size_t size, int i)
{
    snprintf(buf, size, "lwi-%05d", i);
    return buf;
}

/* n conversations lwi-00000.., each with one open and one completed run. */
static void fill(cd_tag_state_t *st, int n, uint64_t source)
{
    char lwi[32];
    for (int i = 0; i < n; i++) {
        cd_conversation_t *c = cd_tag_state_add(st, name(lwi, sizeof(lwi), i));
        assert_non_null(c);
        c->source = source;
        cd_run_t *open = cd_conversation_add_run(c), *done = cd_conversation_add_run(c);
        assert_non_null(open);
        assert_non_null(done);
        open->state = CD_RUN_OPEN;
        open->scenario = strdup("QueueAssignment");
        done->state = CD_RUN_COMPLETED;
        done->scenario = strdup("AgentAccepted");
        assert_true(cd_tag_state_touch(st, c));
    }
}

static void test_find_through_growth(void **state)
{
    (void)state;
    cd_tag_state_t st;
    char lwi[32];
    cd_tag_state_init(&st, SIZE_MAX);
    fill(&st, 5000, 1);
    assert_int_equal(st.count, 5000);
    for (int i = 0; i < 5000; i++) {
        const cd_conversation_t *c = cd_tag_state_find(&st, name(lwi, sizeof(lwi), i));
        assert_non_null(c);
        assert_string_equal(c->live_work_item_id, lwi);
    }
    assert_null(cd_tag_state_find(&st, "lwi-05000"));
    /* Each changed conversation is listed once, however often touched. */
    assert_true(cd_tag_state_touch(&st, cd_tag_state_find(&st, "lwi-00007")));
    assert_int_equal(st.touched_count, 5000);
    size_t listed = 0;
    for (const cd_conversation_t *c = cd_tag_state_first(&st); c; c = c->older)
        listed++;
    assert_int_equal(listed, 5000);
    /* The last touched is the newest. */
    assert_string_equal(cd_tag_state_first(&st)->live_work_item_id, "lwi-00007");
    cd_tag_state_fini(&st);
}

static void test_commit(void **state)
{
    (void)state;
    cd_tag_state_t st;
    cd_tag_state_init(&st, SIZE_MAX);
    fill(&st, 3, 1);
    cd_conversation_t *c = cd_tag_state_find(&st, "lwi-00001");
    c->version = 41;
    cd_tag_state_commit(&st);
    assert_int_equal(st.touched_count, 0);
    assert_false(c->dirty);
    assert_true(c->stored);
    assert_int_equal(c->version, 42);
    /* The completed run left memory; the open one stays, stored and clean. */
    assert_int_equal(c->runs_count, 1);
    assert_int_equal(c->runs[0].state, CD_RUN_OPEN);
    assert_string_equal(c->runs[0].scenario, "QueueAssignment");
    assert_true(c->runs[0].stored);
    assert_false(c->runs[0].dirty);
    /* Nothing changed since: a commit leaves it as it is. */
    cd_tag_state_commit(&st);
    assert_int_equal(c->version, 42);
    assert_int_equal(st.count, 3);
    cd_tag_state_fini(&st);
}

static void test_discard(void **state)
{
    (void)state;
    cd_tag_state_t st;
    cd_tag_state_init(&st, SIZE_MAX);
    fill(&st, 4, 1);
    cd_tag_state_commit(&st);
    /* A failed batch changed two of them and added one. */
    assert_true(cd_tag_state_touch(&st, cd_tag_state_find(&st, "lwi-00000")));
    assert_true(cd_tag_state_touch(&st, cd_tag_state_find(&st, "lwi-00002")));
    cd_conversation_t *n = cd_tag_state_add(&st, "lwi-new");
    assert_non_null(n);
    assert_true(cd_tag_state_touch(&st, n));
    cd_tag_state_discard(&st);
    assert_int_equal(st.count, 2);
    assert_int_equal(st.touched_count, 0);
    assert_null(cd_tag_state_find(&st, "lwi-00000"));
    assert_null(cd_tag_state_find(&st, "lwi-00002"));
    assert_null(cd_tag_state_find(&st, "lwi-new"));
    assert_non_null(cd_tag_state_find(&st, "lwi-00001"));
    assert_non_null(cd_tag_state_find(&st, "lwi-00003"));
    cd_tag_state_fini(&st);
}

static void test_forget_source(void **state)
{
    (void)state;
    cd_tag_state_t st;
    char lwi[32];
    uint64_t p0 = cd_tag_source("events", 0), p1 = cd_tag_source("events", 1);
    assert_true(p0 != p1);
    assert_true(cd_tag_source("events", 0) == p0);
    assert_true(cd_tag_source("other", 0) != p0);
    cd_tag_state_init(&st, SIZE_MAX);
    for (int i = 0; i < 100; i++) {
        cd_conversation_t *c = cd_tag_state_add(&st, name(lwi, sizeof(lwi), i));
        assert_non_null(c);
        c->source = i % 2 ? p1 : p0;
    }
    cd_tag_state_forget_source(&st, p1);
    assert_int_equal(st.count, 50);
    for (int i = 0; i < 100; i++)
        assert_true((cd_tag_state_find(&st, name(lwi, sizeof(lwi), i)) != NULL) == (i % 2 == 0));
    cd_tag_state_fini(&st);
}

static void test_bounded(void **state)
{
    (void)state;
    cd_tag_state_t st;
    char lwi[32];
    cd_tag_state_init(&st, 64 * 1024);
    for (int batch = 0; batch < 50; batch++) {
        for (int i = 0; i < 100; i++) {
            cd_conversation_t *c = cd_tag_state_add(&st, name(lwi, sizeof(lwi), batch * 100 + i));
            assert_non_null(c);
            assert_true(cd_tag_state_touch(&st, c));
        }
        cd_tag_state_commit(&st);
        assert_true(st.bytes <= 64 * 1024);
        /* What the last batch changed is kept, newest first. */
        assert_non_null(cd_tag_state_find(&st, name(lwi, sizeof(lwi), batch * 100 + 99)));
    }
    assert_true(st.count > 0 && st.count < 5000);
    /* Those let go are the least recently used: the oldest batches'. */
    assert_null(cd_tag_state_find(&st, "lwi-00000"));
    size_t bytes = 0;
    for (const cd_conversation_t *c = cd_tag_state_first(&st); c; c = c->older)
        bytes += c->bytes;
    assert_int_equal(bytes, st.bytes);
    /* Nothing kept between batches at 0. */
    cd_tag_state_t none;
    cd_tag_state_init(&none, 0);
    fill(&none, 10, 1);
    cd_tag_state_commit(&none);
    assert_int_equal(none.count, 0);
    assert_int_equal(none.bytes, 0);
    cd_tag_state_fini(&none);
    cd_tag_state_fini(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find_through_growth),
        cmocka_unit_test(test_commit),
        cmocka_unit_test(test_discard),
        cmocka_unit_test(test_forget_source),
        cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
