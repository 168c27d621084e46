/*
 * test_batch.c -- the ingest's unit of work: records pushed past the
 * initial capacity, parsed into events or reasons, rejected after parsing,
 * cleared and released; the copies of messages' bytes it keeps, views of
 * part of it, records filtered out.  Leaks and use-after-free are the
 * sanitizer's to find.
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

#include "convdiag/batch.h"
#include "convdiag/common.h"
#include "convdiag/event.h"

#define ORG "8a6d5c2e-1f3b-4c7d-9e0a-2b4c6d8e0f12"

/* A valid event with the given eventId and status. */
static char *event_json(const char *event_id, const char *status, const char *extra)
{
    char *s = NULL;
    int n = asprintf(&s,
                     "{\"eventId\":\"%s\",\"timestamp\":\"2026-11-22T10:00:00.123Z\","
                     "\"organizationId\":\"" ORG "\",\"liveWorkItemId\":\"lwi-%s\","
                     "\"scenario\":\"QueueAssignment\",\"status\":\"%s\","
                     "\"channelType\":\"voice\"%s}",
                     event_id, event_id, status, extra ? extra : "");
    assert_true(n > 0);
    return s;
}

static void test_init(void **state)
{
    (void)state;
    cd_batch_t b;
    assert_int_equal(cd_batch_init(&b, 0), CD_OK);
    assert_non_null(b.records);
    assert_int_equal(b.count, 0);
    assert_true(b.cap > 0); /* a default capacity */
    cd_batch_fini(&b);
    assert_null(b.records);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.count, 0);

    assert_int_equal(cd_batch_init(&b, 3), CD_OK);
    assert_int_equal(b.cap, 3);
    assert_int_equal(b.count, 0);
    cd_batch_fini(&b);
}

static void test_push_grows(void **state)
{
    (void)state;
    cd_batch_t b;
    assert_int_equal(cd_batch_init(&b, 2), CD_OK);

    for (int i = 0; i < 1000; i++) {
        cd_record_t *r = cd_batch_push(&b);
        assert_non_null(r);
        assert_int_equal(b.count, (size_t)i + 1);
        assert_true(b.cap >= b.count);
        assert_ptr_equal(r, &b.records[i]);
        /* a pushed record is empty */
        assert_null(r->topic);
        assert_null(r->payload);
        assert_null(r->key);
        assert_null(r->reason);
        assert_null(r->event.root);
        assert_false(r->valid);
        assert_int_equal(r->len, 0);
        assert_int_equal(r->key_len, 0);
        assert_int_equal(r->kafka_ts_ms, -1);
        r->partition = i % 7;
        r->offset = 1000 + i;
    }
    /* the records written before each growth are intact */
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(b.records[i].partition, i % 7);
        assert_int_equal(b.records[i].offset, 1000 + i);
    }
    cd_batch_fini(&b);
}

/* A record reused after clear is empty again, whatever it held before. */
static void test_push_after_clear_is_empty(void **state)
{
    (void)state;
    cd_batch_t b;
    assert_int_equal(cd_batch_init(&b, 1), CD_OK);
    cd_record_t *r = cd_batch_push(&b);
    r->offset = 9;
    r->kafka_ts_ms = 123;
    r->partition = 4;
    cd_record_reject(r, "some reason");
    cd_batch_clear(&b);
    assert_int_equal(b.count, 0);

    r = cd_batch_push(&b);
    assert_int_equal(r->offset, 0);
    assert_int_equal(r->partition, 0);
    assert_int_equal(r->kafka_ts_ms, -1);
    assert_null(r->reason);
    assert_false(r->valid);
    cd_batch_fini(&b);
}

typedef struct parse_row {
    const char *name;
    char *payload; /* owned by the test */
    size_t len;
    bool valid;
    const char *reason; /* substring, when !valid */
} parse_row_t;

static void test_parse_sets_valid_and_reason(void **state)
{
    (void)state;
    parse_row_t rows[] = {
        {"Started", event_json("e1", "Started", NULL), 0, true, NULL},
        {"not JSON", strdup("this is not json"), 0, false, "message is not valid JSON"},
        {"Completed with duration", event_json("e2", "Completed", ",\"durationMs\":1200"), 0, true,
         NULL},
        {"status Done", event_json("e3", "Done", NULL), 0, false,
         "status: 'Done' is not one of Started, Completed, Failed"},
        {"empty payload", strdup(""), 0, false, "message is empty"},
        {"Failed with reason", event_json("e4", "Failed", ",\"failureReason\":\"no agent\""), 0,
         true, NULL},
        {"unknown field", event_json("e5", "Started", ",\"x\":1"), 0, false,
         "x: unknown field (contract v1 has no such field)"},
        {"with attributes", event_json("e6", "Started", ",\"attributes\":{\"q\":\"vip\"}"), 0,
         true, NULL},
        {"attributes, then a refused field",
         event_json("e7", "Started", ",\"attributes\":{\"q\":1},\"failureReason\":\"x\""), 0,
         false, "failureReason: only allowed when status is Failed, not Started"},
    };
    const size_t n = CD_ARRAY_LEN(rows);
    cd_event_limits_t lim;
    cd_event_limits_init(&lim);
    cd_batch_t b;
    /* capacity 2: the batch grows while being filled */
    assert_int_equal(cd_batch_init(&b, 2), CD_OK);

    for (size_t i = 0; i < n; i++) {
        assert_non_null(rows[i].payload);
        rows[i].len = strlen(rows[i].payload);
        cd_record_t *r = cd_batch_push(&b);
        assert_non_null(r);
        r->topic = "conversation-events";
        r->partition = 3;
        r->offset = (int64_t)(100 + i);
        r->payload = rows[i].payload;
        r->len = rows[i].len;
    }
    cd_batch_parse(&b, &lim);
    assert_int_equal(b.count, n);

    /* The events own their data: the payloads can go now. */
    for (size_t i = 0; i < n; i++) {
        memset(rows[i].payload, 'Z', rows[i].len);
        free(rows[i].payload);
        rows[i].payload = NULL;
    }

    for (size_t i = 0; i < n; i++) {
        const cd_record_t *r = &b.records[i];
        if (r->valid != rows[i].valid)
            print_message("[%s] valid=%d, expected %d; reason: %s\n", rows[i].name, r->valid,
                          rows[i].valid, r->reason ? r->reason : "(none)");
        assert_int_equal(r->valid, rows[i].valid);
        /* Kafka coordinates are untouched by parsing. */
        assert_int_equal(r->offset, (int64_t)(100 + i));
        assert_int_equal(r->partition, 3);
        if (rows[i].valid) {
            assert_null(r->reason);
            /* The strings are the batch's copies; the tree is gone. */
            assert_null(r->event.root);
            assert_non_null(r->event.event_id);
            assert_true(r->event.event_id < r->payload || r->event.event_id >= r->payload + r->len);
            assert_string_equal(r->event.live_work_item_id + 4, r->event.event_id);
            assert_string_equal(r->event.scenario, "QueueAssignment");
            assert_string_equal(r->event.category, "Routing");
            assert_string_equal(r->event.channel_type, "voice");
        } else {
            assert_non_null(r->reason);
            if (!strstr(r->reason, rows[i].reason))
                print_message("[%s]\n  expected: %s\n  actual:   %s\n", rows[i].name,
                              rows[i].reason, r->reason);
            assert_non_null(strstr(r->reason, rows[i].reason));
            assert_null(r->event.root);
            assert_null(r->event.attributes_json);
        }
    }
    assert_string_equal(b.records[0].event.event_id, "e1");
    assert_int_equal(b.records[2].event.duration_ms, 1200);
    assert_int_equal(b.records[2].event.status, CD_EVENT_COMPLETED);
    assert_string_equal(b.records[5].event.failure_reason, "no agent");
    assert_string_equal(b.records[7].event.attributes_json, "{\"q\":\"vip\"}");

    cd_batch_fini(&b);
}

/* Parsing twice does not parse again (and leaks nothing); records added later are parsed. */
static void test_parse_is_incremental(void **state)
{
    (void)state;
    cd_event_limits_t lim;
    cd_event_limits_init(&lim);
    cd_batch_t b;
    assert_int_equal(cd_batch_init(&b, 1), CD_OK);

    char *p1 = event_json("a1", "Started", NULL);
    char *p2 = strdup("[]");
    cd_record_t *r = cd_batch_push(&b);
    r->payload = p1;
    r->len = strlen(p1);
    r = cd_batch_push(&b);
    r->payload = p2;
    r->len = strlen(p2);
    cd_batch_parse(&b, &lim);
    assert_true(b.records[0].valid);
    assert_false(b.records[1].valid);
    const char *event_id = b.records[0].event.event_id;
    const char *reason = b.records[1].reason;

    char *p3 = event_json("a3", "Completed", NULL);
    r = cd_batch_push(&b);
    r->payload = p3;
    r->len = strlen(p3);
    cd_batch_parse(&b, &lim);
    assert_ptr_equal(b.records[0].event.event_id, event_id);
    assert_ptr_equal(b.records[1].reason, reason);
    assert_true(b.records[2].valid);
    assert_string_equal(b.records[2].event.event_id, "a3");

    /* A record rejected before parsing keeps its reason. */
    char *p4 = event_json("a4", "Started", NULL);
    r = cd_batch_push(&b);
    r->payload = p4;
    r->len = strlen(p4);
    cd_record_reject(r, "refused upstream");
    cd_batch_parse(&b, &lim);
    assert_false(b.records[3].valid);
    assert_string_equal(b.records[3].reason, "refused upstream");

    cd_batch_fini(&b);
    free(p1);
    free(p2);
    free(p3);
    free(p4);
}

static void test_reject_valid_record(void **state)
{
    (void)state;
    cd_event_limits_t lim;
    cd_event_limits_init(&lim);
    cd_batch_t b;
    assert_int_equal(cd_batch_init(&b, 4), CD_OK);

    char *p = event_json("r1", "Started", ",\"attributes\":{\"k\":\"v\"}");
    cd_record_t *r = cd_batch_push(&b);
    r->payload = p;
    r->len = strlen(p);
    cd_batch_parse(&b, &lim);
    assert_true(r->valid);
    assert_non_null(r->event.attributes_json);

    /* The reason is copied: the caller's buffer may change or go. */
    char why[64];
    snprintf(why, sizeof(why), "eventId 'r1' refused by the store: value too long");
    cd_record_reject(r, why);
    memset(why, 'Q', sizeof(why) - 1);
    assert_false(r->valid);
    assert_non_null(r->reason);
    assert_string_equal(r->reason, "eventId 'r1' refused by the store: value too long");
    assert_null(r->event.root);
    assert_null(r->event.attributes_json);

    /* Rejecting again replaces the reason (the first one is freed). */
    cd_record_reject(r, "second reason");
    assert_string_equal(r->reason, "second reason");
    assert_false(r->valid);

    cd_batch_fini(&b);
    free(p);
}

/* clear releases every event and reason; the batch is reusable; fini releases the rest. */
static void test_clear_and_reuse(void **state)
{
    (void)state;
    cd_event_limits_t lim;
    cd_event_limits_init(&lim);
    cd_batch_t b;
    assert_int_equal(cd_batch_init(&b, 0), CD_OK);

    for (int round = 0; round < 3; round++) {
        char *payloads[50];
        for (int i = 0; i < 50; i++) {
            char id[32];
            snprintf(id, sizeof(id), "c%d-%d", round, i);
            payloads[i] = i % 3 == 0 ? strdup("{\"eventId\":1}")
                                     : event_json(id, i % 2 ? "Started" : "Failed",
                                                  ",\"attributes\":{\"n\":1}");
            cd_record_t *r = cd_batch_push(&b);
            assert_non_null(r);
            r->payload = payloads[i];
            r->len = strlen(payloads[i]);
        }
        cd_batch_parse(&b, &lim);
        size_t valid = 0, invalid = 0;
        for (size_t i = 0; i < b.count; i++) {
            if (b.records[i].valid)
                valid++;
            else
                invalid++;
        }
        assert_int_equal(valid, 33);
        assert_int_equal(invalid, 17);
        assert_string_equal(b.records[0].reason, "eventId: expected a string, got a number");
        /* one valid record rejected after parsing */
        cd_record_reject(&b.records[1], "late refusal");

        size_t cap = b.cap;
        cd_batch_clear(&b);
        assert_int_equal(b.count, 0);
        assert_int_equal(b.cap, cap); /* the array is kept for the next round */
        assert_non_null(b.records);
        for (int i = 0; i < 50; i++)
            free(payloads[i]);
    }
    cd_batch_fini(&b);
    assert_null(b.records);
    assert_int_equal(b.count, 0);
    assert_int_equal(b.cap, 0);
}

/* fini on a batch that still holds events and reasons releases them all. */
static void test_fini_releases_everything(void **state)
{
    (void)state;
    cd_event_limits_t lim;
    cd_event_limits_init(&lim);
    cd_batch_t b;
    assert_int_equal(cd_batch_init(&b, 2), CD_OK);
    char *a = event_json("f1", "Started", ",\"attributes\":{\"a\":true}");
    char *c = strdup("nope");
    cd_record_t *r = cd_batch_push(&b);
    r->payload = a;
    r->len = strlen(a);
    r = cd_batch_push(&b);
    r->payload = c;
    r->len = strlen(c);
    r = cd_batch_push(&b); /* never parsed: empty payload */
    cd_batch_parse(&b, &lim);
    assert_true(b.records[0].valid);
    assert_false(b.records[1].valid);
    assert_false(b.records[2].valid);
    assert_string_equal(b.records[2].reason, "message is empty");
    cd_batch_fini(&b);
    free(a);
    free(c);
}


/* Copies stay where they are while more are made, small and big alike. */
static void test_copies(void **state)
{
    (void)state;
    cd_batch_t b;
    const char *small[3000];
    char expect[64];
    assert_int_equal(cd_batch_init(&b, 4), CD_OK);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 3000; i++) {
            int n = snprintf(expect, sizeof(expect), "message %d of round %d", i, round);
            assert_non_null(small[i] = cd_batch_copy(&b, expect, (size_t)n));
        }
        /* A message bigger than a block, and one of no bytes. */
        size_t big_len = 1024 * 1024 + 17;
        char *big = malloc(big_len);
        assert_non_null(big);
        memset(big, 'x', big_len);
        const char *copy = cd_batch_copy(&b, big, big_len);
        assert_non_null(copy);
        assert_memory_equal(copy, big, big_len);
        assert_int_equal(copy[big_len], '\0');
        free(big);
        const char *none = cd_batch_copy(&b, NULL, 0);
        assert_non_null(none);
        assert_int_equal(none[0], '\0');
        for (int i = 0; i < 3000; i++) {
            snprintf(expect, sizeof(expect), "message %d of round %d", i, round);
            assert_string_equal(small[i], expect);
        }
        cd_batch_clear(&b);
    }
    cd_batch_fini(&b);
}

static bool keep_even(cd_record_t *rec, void *arg)
{
    (void)arg;
    return rec->offset % 2 == 0;
}

/* A view is the records it names, in order; filtering keeps the order. */
static void test_view_and_filter(void **state)
{
    (void)state;
    cd_batch_t b;
    assert_int_equal(cd_batch_init(&b, 2), CD_OK);
    for (int i = 0; i < 10; i++) {
        cd_record_t *r = cd_batch_push(&b);
        assert_non_null(r);
        r->offset = i;
        r->payload = cd_batch_copy(&b, "abc", 3);
        r->len = 3;
        b.bytes += r->len;
        if (i == 3)
            cd_record_reject(r, "refused");
    }
    cd_batch_t v = cd_batch_view(&b, 4, 3);
    assert_int_equal(v.count, 3);
    assert_int_equal(v.cap, 0);
    assert_ptr_equal(v.records, &b.records[4]);
    assert_int_equal(v.records[2].offset, 6);

    assert_int_equal(cd_batch_filter(&b, keep_even, NULL), 5);
    assert_int_equal(b.count, 5);
    assert_int_equal(b.bytes, 15);
    for (size_t i = 0; i < b.count; i++) {
        assert_int_equal(b.records[i].offset, (int64_t)(2 * i));
        assert_string_equal(b.records[i].payload, "abc");
    }
    cd_batch_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_push_grows),
        cmocka_unit_test(test_push_after_clear_is_empty),
        cmocka_unit_test(test_parse_sets_valid_and_reason),
        cmocka_unit_test(test_parse_is_incremental),
        cmocka_unit_test(test_reject_valid_record),
        cmocka_unit_test(test_clear_and_reuse),
        cmocka_unit_test(test_fini_releases_everything),
        cmocka_unit_test(test_copies),
        cmocka_unit_test(test_view_and_filter),
    };
    return cmocka_run_group_tests_name("batch", tests, NULL, NULL);
}
