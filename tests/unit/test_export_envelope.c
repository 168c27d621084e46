/*
 * test_export_envelope.c -- the Application Insights envelope of a stored
 * event, compared byte for byte with tests/golden/envelope_<case>.json (the
 * envelope and a newline, as it goes into a request body).
 *
 * The golden directory comes from CD_GOLDEN_DIR.  With CD_GOLDEN_UPDATE=1 the
 * files are written instead of compared; review the difference before
 * committing it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convdiag/buf.h"
#include "convdiag/common.h"
#include "convdiag/export.h"
#include "convdiag/timeutil.h"

#define IKEY "1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d"
#define ORG "62206a64-7414-46f3-b0b7-963a1ee4ff66"
#define LWI "9f0c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f"
#define OP_ID "9f0c1d2e3a4b4c5d8e6f7a8b9c0d1e2f"
#define AGENT "5d1f7a0e-2b3c-4d5e-9f60-718293a4b5c6"

#define EURO "\xE2\x82\xAC"           /* U+20AC: 3 bytes, 1 UTF-16 unit */
#define E_ACUTE "\xC3\xA9"            /* U+00E9: 2 bytes, 1 unit */
#define U_UMLAUT "\xC3\xBC"           /* U+00FC */
#define N_TILDE "\xC3\xB1"            /* U+00F1 */
#define BETA "\xCE\xB2"               /* U+03B2 */
#define GRIN "\xF0\x9F\x98\x80"       /* U+1F600: 4 bytes, 2 units */
#define GRIN2 "\xF0\x9F\x98\x81"      /* U+1F601 */

static const cd_export_config_t config = {
    .ikey = IKEY,
    .cloud_role = "convdiag",
    .cloud_role_instance = "ingest-7f9c",
    .sdk_version = "convdiag:0.1.0",
};

/* Strings a case builds; freed after it. */
typedef struct fixture {
    cd_export_item_t item;
    cd_export_config_t config;
    char *owned[16];
    size_t nowned;
} fixture_t;

static const char *own(fixture_t *f, char *s)
{
    assert_non_null(s);
    assert_true(f->nowned < CD_ARRAY_LEN(f->owned));
    f->owned[f->nowned++] = s;
    return s;
}

/* head, then unit n times, then tail. */
static const char *repeat(fixture_t *f, const char *head, const char *unit, size_t n,
                          const char *tail)
{
    cd_buf_t b;
    cd_buf_init(&b);
    cd_buf_puts(&b, head);
    for (size_t i = 0; i < n; i++)
        cd_buf_puts(&b, unit);
    cd_buf_puts(&b, tail);
    assert_false(b.oom);
    return own(f, b.data);
}

static int64_t at(const char *rfc3339)
{
    int64_t us;
    cd_err_t err;
    assert_int_equal(cd_time_parse_rfc3339(rfc3339, 3, &us, &err), CD_OK);
    return us;
}

/* A QueueAssignment that started: the required fields only. */
static void base_item(fixture_t *f)
{
    memset(f, 0, sizeof(*f));
    f->config = config;
    f->item = (cd_export_item_t){
        .event_id = "e-0001",
        .time_us = at("2026-11-20T08:00:00.123456Z"),
        .organization_id = ORG,
        .live_work_item_id = LWI,
        .scenario = "QueueAssignment",
        .category = "Routing",
        .status = CD_EVENT_STARTED,
        .channel_type = "livechat",
        .operation_id = OP_ID,
        .duration_ms = -1,
    };
}

static void case_started_minimal(fixture_t *f) { base_item(f); }

static void case_completed_full(fixture_t *f)
{
    base_item(f);
    f->item.event_id = "e-0002";
    f->item.time_us = at("2026-11-20T08:00:05.357Z");
    f->item.scenario = "AgentAccepted";
    f->item.category = "HumanAgentInteraction";
    f->item.status = CD_EVENT_COMPLETED;
    f->item.participant_type = "HumanAgent";
    f->item.user_id = AGENT;
    f->item.session_id = "sess-42";
    f->item.duration_ms = 5234;
    f->item.attributes_json = "{\"queue\": \"Tier 2\", \"priority\": 3, \"vip\": true}";
}

static void case_failed(fixture_t *f)
{
    base_item(f);
    f->item.event_id = "e-0003";
    f->item.time_us = at("2026-11-20T08:02:00.000Z");
    f->item.scenario = "AgentAccepted";
    f->item.category = "HumanAgentInteraction";
    f->item.status = CD_EVENT_FAILED;
    f->item.participant_type = "System";
    f->item.duration_ms = 120000; /* the run's: the event had none */
    f->item.failure_reason = "No agent accepted within 120 s \"Tier 2\"";
}

static void case_unknown_scenario(fixture_t *f)
{
    base_item(f);
    f->item.event_id = "e-0004";
    f->item.scenario = "TransferToExternalSystem";
    f->item.category = "Other";
    f->item.channel_type = "voice";
    f->item.operation_id = NULL; /* no ai.operation.id tag */
}

/* Attributes named like standard properties (Duration even though this
 * event has one, failureReason though it has none), one named like the
 * renamed Duration, and values of every type with characters to escape. */
static void case_attributes(fixture_t *f)
{
    base_item(f);
    f->item.event_id = "e-0005";
    f->item.status = CD_EVENT_COMPLETED;
    f->item.duration_ms = 1500;
    f->item.attributes_json =
        "{\"Duration\": \"fast\", \"queue\": \"Tier 2\", \"waitSeconds\": 12.5, "
        "\"big\": 12345678901234567890, \"escalated\": false, \"failureReason\": \"none\", "
        "\"attributes.Duration\": \"literal\", \"Category\": \"VIP\", "
        "\"note\": \"line\\nbreak\\ttab \\\"quoted\\\" \\\\ \\u0001 caf\\u00e9 " GRIN "\", "
        "\"convdiag.truncated\": \"no\", \"empty\": \"\", \"organizationid\": \"case differs\"}";
}

/*
 * Every limit cut through multi-byte characters.  Counting UTF-16 code
 * units, U+20AC, U+00E9, U+00FC, U+00F1 and U+03B2 count 1 each (byte
 * counting would keep a third or half as many); U+1F600 counts 2 and is
 * dropped whole where 1 unit is left.
 */
static void case_limits(fixture_t *f)
{
    base_item(f);
    f->item.event_id = "e-0006";
    f->item.status = CD_EVENT_FAILED;
    f->item.duration_ms = 42;
    /* Cut to the number of units in the comment. */
    f->item.operation_id = repeat(f, "", EURO, 130, "");                /* 128 */
    f->item.live_work_item_id = repeat(f, "", "L", 127, GRIN "x");       /* tag 127 */
    f->item.scenario = repeat(f, "", E_ACUTE, 1030, "");                 /* tag 1024 */
    f->item.session_id = repeat(f, "", "S", 63, GRIN);                   /* 63 */
    f->item.user_id = repeat(f, "", U_UMLAUT, 200, "");                  /* 128 */
    f->config.cloud_role = repeat(f, "", "r", 255, GRIN);                /* 255 */
    f->config.cloud_role_instance = repeat(f, "", N_TILDE, 300, "");     /* 256 */
    f->config.sdk_version = repeat(f, "convdiag:", BETA, 60, "");        /* 9 + 55 */
    f->item.failure_reason = repeat(f, "", "a", 8191, GRIN "zzz");       /* 8191 */
    /* The LiveWorkItem ID and the scenario stay whole in the properties
     * (LiveWorkItemID, powerplatform.analytics.*), whose limit is 8192. */
    /* Two keys that are the same once cut to 150 units, and a value of 8200. */
    const char *key1 = repeat(f, "", "k", 149, GRIN "x");
    const char *key2 = repeat(f, "", "k", 149, GRIN2);
    cd_buf_t b;
    cd_buf_init(&b);
    cd_buf_printf(&b, "{\"%s\": \"one\", \"%s\": \"two\", \"long\": \"", key1, key2);
    for (int i = 0; i < 8200; i++)
        cd_buf_puts(&b, EURO);
    cd_buf_puts(&b, "\"}");
    assert_false(b.oom);
    f->item.attributes_json = own(f, b.data);
}

/*
 * Too large for 64 KiB: two attributes of 8192 three-byte characters fit
 * with the rest, a third does not; it goes, and so does the small one after
 * it in name order (attributes go last first), while the small one before
 * stays.
 */
static void case_too_large(fixture_t *f)
{
    base_item(f);
    f->item.event_id = "e-0007";
    cd_buf_t b;
    cd_buf_init(&b);
    cd_buf_puts(&b, "{\"a_first\": \"kept\"");
    for (int k = 1; k <= 3; k++) {
        cd_buf_printf(&b, ", \"big%d\": \"", k);
        for (int i = 0; i < 8192; i++)
            cd_buf_puts(&b, EURO);
        cd_buf_putc(&b, '"');
    }
    cd_buf_puts(&b, ", \"z_last\": \"dropped\"}");
    assert_false(b.oom);
    f->item.attributes_json = own(f, b.data);
}

typedef struct golden_case {
    const char *name;
    void (*build)(fixture_t *f);
} golden_case_t;

static const golden_case_t golden_cases[] = {
    {"started_minimal", case_started_minimal},
    {"completed_full", case_completed_full},
    {"failed", case_failed},
    {"unknown_scenario", case_unknown_scenario},
    {"attributes", case_attributes},
    {"limits", case_limits},
    {"too_large", case_too_large},
};

static void free_fixture(fixture_t *f)
{
    for (size_t i = 0; i < f->nowned; i++)
        free(f->owned[i]);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    cd_buf_t b;
    cd_buf_init(&b);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        cd_buf_append(&b, chunk, n);
    fclose(fp);
    *len = b.len;
    return b.data ? b.data : calloc(1, 1);
}

static void golden_path(char *path, size_t size, const char *name)
{
    const char *dir = getenv("CD_GOLDEN_DIR");
    if (!dir || !dir[0])
        fail_msg("CD_GOLDEN_DIR is not set: it names the tests/golden directory");
    snprintf(path, size, "%s/envelope_%s.json", dir, name);
}

/* What holds for every envelope: valid JSON, within 64 KiB with its newline,
 * and every tag and property a string. */
static void check_shape(const char *json, size_t len)
{
    assert_true(len + 1 <= CD_EXPORT_ITEM_MAX_BYTES);
    cJSON *root = cJSON_ParseWithLength(json, len);
    assert_non_null(root);
    cJSON *tags = cJSON_GetObjectItemCaseSensitive(root, "tags");
    cJSON *props = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "data"),
                                         "baseData"),
        "properties");
    assert_true(cJSON_IsObject(tags));
    assert_true(cJSON_IsObject(props));
    for (cJSON *t = tags->child; t; t = t->next)
        assert_true(cJSON_IsString(t));
    for (cJSON *p = props->child; p; p = p->next)
        assert_true(cJSON_IsString(p));
    cJSON_Delete(root);
}

static void test_golden(void **state)
{
    const golden_case_t *c = *state;
    fixture_t f;
    cd_buf_t out;
    cd_err_t err = {{0}};
    char path[4096];

    c->build(&f);
    cd_buf_init(&out);
    if (cd_export_envelope_write(&out, &f.config, &f.item, &err) != CD_OK)
        fail_msg("refused: %s", err.msg);
    check_shape(out.data, out.len);
    cd_buf_putc(&out, '\n');

    golden_path(path, sizeof(path), c->name);
    const char *update = getenv("CD_GOLDEN_UPDATE");
    if (update && strcmp(update, "1") == 0) {
        FILE *fp = fopen(path, "wb");
        assert_non_null(fp);
        assert_int_equal(fwrite(out.data, 1, out.len, fp), out.len);
        assert_int_equal(fclose(fp), 0);
    } else {
        size_t len = 0;
        char *want = read_file(path, &len);
        if (!want)
            fail_msg("cannot read %s", path);
        size_t i = 0;
        while (i < len && i < out.len && want[i] == out.data[i])
            i++;
        if (i < len || i < out.len)
            fail_msg("%s differs from byte %zu on: got \"%.60s\", want \"%.60s\"", path, i,
                     out.data + i, want + i);
        free(want);
    }
    cd_buf_fini(&out);
    free_fixture(&f);
}

/* Writes the envelope of f into a buffer holding `before`, expecting failure:
 * the buffer must be left exactly as it was. */
static void expect_refused(fixture_t *f, cd_status_t want, const char *msg)
{
    static const char before[] = "{\"earlier\":\"envelope\"}\n";
    cd_buf_t out;
    cd_err_t err = {{0}};

    cd_buf_init(&out);
    cd_buf_puts(&out, before);
    assert_int_equal(cd_export_envelope_write(&out, &f->config, &f->item, &err), want);
    assert_string_equal(err.msg, msg);
    assert_false(out.oom);
    assert_int_equal(out.len, strlen(before));
    assert_string_equal(out.data, before);
    cd_buf_fini(&out);
}

static void test_attributes_not_an_object(void **state)
{
    (void)state;
    static const char *const bad[] = {"[1, 2]", "\"text\"", "{", "{\"a\": 1} x", "null"};
    fixture_t f;

    base_item(&f);
    for (size_t i = 0; i < CD_ARRAY_LEN(bad); i++) {
        f.item.attributes_json = bad[i];
        expect_refused(&f, CD_ERROR, "event 'e-0001': attributes are not a JSON object");
    }
}

static void test_attribute_of_another_type(void **state)
{
    (void)state;
    fixture_t f;

    base_item(&f);
    f.item.attributes_json = "{\"ok\": 1, \"list\": [1]}";
    expect_refused(&f, CD_ERROR,
                   "event 'e-0001': attribute 'list' is an array, not a string, number or "
                   "boolean");
    f.item.attributes_json = "{\"obj\": {}}";
    expect_refused(&f, CD_ERROR,
                   "event 'e-0001': attribute 'obj' is an object, not a string, number or "
                   "boolean");
    f.item.attributes_json = "{\"nothing\": null}";
    expect_refused(&f, CD_ERROR,
                   "event 'e-0001': attribute 'nothing' is null, not a string, number or "
                   "boolean");
}

/* Values of 8192 control characters take six bytes each once escaped: two of
 * them pass 64 KiB with no attribute to leave out. */
static void test_too_large_without_attributes(void **state)
{
    (void)state;
    fixture_t f;

    base_item(&f);
    f.item.status = CD_EVENT_FAILED;
    f.item.failure_reason = repeat(&f, "", "\x01", 8192, "");
    f.item.scenario = repeat(&f, "", "\x02", 8192, "");
    expect_refused(&f, CD_ERROR,
                   "event 'e-0001': the envelope would take 105529 bytes even without "
                   "attributes, over the limit of 65536");
    f.item.attributes_json = "{\"a\": \"b\"}";
    expect_refused(&f, CD_ERROR,
                   "event 'e-0001': the envelope would take 105563 bytes even without "
                   "attributes, over the limit of 65536");
    free_fixture(&f);
}

/* The exporter writes a batch into one buffer: an envelope is appended. */
static void test_appends(void **state)
{
    (void)state;
    fixture_t f;
    cd_buf_t one, batch;
    cd_err_t err;

    base_item(&f);
    cd_buf_init(&one);
    cd_buf_init(&batch);
    assert_int_equal(cd_export_envelope_write(&one, &f.config, &f.item, &err), CD_OK);
    assert_int_equal(cd_export_envelope_write(&batch, &f.config, &f.item, &err), CD_OK);
    cd_buf_putc(&batch, '\n');
    assert_int_equal(cd_export_envelope_write(&batch, &f.config, &f.item, &err), CD_OK);
    assert_int_equal(batch.len, 2 * one.len + 1);
    assert_memory_equal(batch.data + one.len + 1, one.data, one.len);
    cd_buf_fini(&one);
    cd_buf_fini(&batch);
}

/* {"p0": "<lens[0] p's>", ... } for eight attributes. */
static char *padding_attributes(const size_t lens[8])
{
    cd_buf_t b;
    cd_buf_init(&b);
    for (int k = 0; k < 8; k++) {
        cd_buf_printf(&b, "%s\"p%d\": \"", k ? ", " : "{", k);
        for (size_t i = 0; i < lens[k]; i++)
            cd_buf_putc(&b, 'p');
        cd_buf_putc(&b, '"');
    }
    cd_buf_putc(&b, '}');
    assert_false(b.oom);
    return b.data;
}

/* Fits exactly: attributes that bring the envelope and its newline to 65536
 * bytes all stay; one byte more and the last goes. */
static void test_size_boundary(void **state)
{
    (void)state;
    size_t lens[8] = {0};
    fixture_t f;
    cd_buf_t out;
    cd_err_t err;

    base_item(&f);
    cd_buf_init(&out);
    f.item.attributes_json = own(&f, padding_attributes(lens));
    assert_int_equal(cd_export_envelope_write(&out, &f.config, &f.item, &err), CD_OK);
    size_t missing = CD_EXPORT_ITEM_MAX_BYTES - 1 - out.len;
    for (int k = 0; k < 8; k++) {
        lens[k] = missing / 8 + (k < (int)(missing % 8) ? 1 : 0);
        assert_true(lens[k] <= 8192);
    }

    f.item.attributes_json = own(&f, padding_attributes(lens));
    cd_buf_reset(&out);
    assert_int_equal(cd_export_envelope_write(&out, &f.config, &f.item, &err), CD_OK);
    assert_int_equal(out.len + 1, CD_EXPORT_ITEM_MAX_BYTES);
    assert_null(strstr(out.data, "convdiag.truncated"));

    lens[7]++;
    f.item.attributes_json = own(&f, padding_attributes(lens));
    cd_buf_reset(&out);
    assert_int_equal(cd_export_envelope_write(&out, &f.config, &f.item, &err), CD_OK);
    assert_non_null(strstr(out.data, "\"p6\""));
    assert_null(strstr(out.data, "\"p7\""));
    assert_non_null(strstr(out.data, ",\"convdiag.truncated\":\"attributes\"}}}}"));

    cd_buf_fini(&out);
    free_fixture(&f);
}

/* A Started event never carries Duration, whatever duration_ms says; an empty
 * attributes object adds nothing. */
static void test_started_has_no_duration(void **state)
{
    (void)state;
    fixture_t f;
    cd_buf_t out, plain;
    cd_err_t err;

    base_item(&f);
    cd_buf_init(&plain);
    assert_int_equal(cd_export_envelope_write(&plain, &f.config, &f.item, &err), CD_OK);
    f.item.duration_ms = 250;
    f.item.attributes_json = "{}";
    cd_buf_init(&out);
    assert_int_equal(cd_export_envelope_write(&out, &f.config, &f.item, &err), CD_OK);
    assert_string_equal(out.data, plain.data);
    assert_null(strstr(out.data, "Duration"));
    cd_buf_fini(&out);
    cd_buf_fini(&plain);
}

/* The key in the name loses its dashes and its capitals; iKey keeps both. */
static void test_name_from_upper_case_key(void **state)
{
    (void)state;
    fixture_t f;
    cd_buf_t out;
    cd_err_t err;

    base_item(&f);
    f.config.ikey = "1B2C3D4E-5F60-4A7B-8C9D-0E1F2A3B4C5D";
    cd_buf_init(&out);
    assert_int_equal(cd_export_envelope_write(&out, &f.config, &f.item, &err), CD_OK);
    assert_non_null(strstr(out.data,
                           "\"name\":\"Microsoft.ApplicationInsights."
                           "1b2c3d4e5f604a7b8c9d0e1f2a3b4c5d.Message\""));
    assert_non_null(strstr(out.data, "\"iKey\":\"1B2C3D4E-5F60-4A7B-8C9D-0E1F2A3B4C5D\""));
    cd_buf_fini(&out);
}

/* Before 1970 and at the last microsecond of a second: seven digits, rounded down. */
static void test_time_format(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } times[] = {
        {"2026-11-20T08:00:00.000Z", "\"time\":\"2026-11-20T08:00:00.0000000Z\""},
        {"2026-12-31T23:59:59.999999Z", "\"time\":\"2026-12-31T23:59:59.9999990Z\""},
        {"2026-11-20T09:30:00.500+01:30", "\"time\":\"2026-11-20T08:00:00.5000000Z\""},
        {"1969-12-31T23:59:59.999Z", "\"time\":\"1969-12-31T23:59:59.9990000Z\""},
    };
    fixture_t f;
    cd_buf_t out;
    cd_err_t err;

    base_item(&f);
    cd_buf_init(&out);
    for (size_t i = 0; i < CD_ARRAY_LEN(times); i++) {
        f.item.time_us = at(times[i].in);
        cd_buf_reset(&out);
        assert_int_equal(cd_export_envelope_write(&out, &f.config, &f.item, &err), CD_OK);
        if (!strstr(out.data, times[i].out))
            fail_msg("%s: expected %s in %s", times[i].in, times[i].out, out.data);
    }
    cd_buf_fini(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attributes_not_an_object),
        cmocka_unit_test(test_attribute_of_another_type),
        cmocka_unit_test(test_too_large_without_attributes),
        cmocka_unit_test(test_appends),
        cmocka_unit_test(test_size_boundary),
        cmocka_unit_test(test_started_has_no_duration),
        cmocka_unit_test(test_name_from_upper_case_key),
        cmocka_unit_test(test_time_format),
    };
    int failed = cmocka_run_group_tests_name("export_envelope", tests, NULL, NULL);

    size_t n = CD_ARRAY_LEN(golden_cases);
    struct CMUnitTest *table = calloc(n, sizeof(*table));
    if (!table)
        return 1;
    for (size_t i = 0; i < n; i++) {
        table[i].name = golden_cases[i].name;
        table[i].test_func = test_golden;
        table[i].initial_state = (void *)&golden_cases[i];
    }
    failed += _cmocka_run_group_tests("export_envelope_golden", table, n, NULL, NULL);
    free(table);
    return failed;
}
