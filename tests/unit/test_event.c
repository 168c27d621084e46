/*
 * test_event.c -- cd_event_parse: the input event, contract version 1.
 *
 * A valid event lands field by field in cd_event_t; every kind of bad input
 * is refused with a reason naming the field, the value and the rule.  The
 * invalid inputs are one table, each row its own test, asserting the exact
 * wording (or a distinctive part of it) of the reason.
 *
 * Every message is parsed from a heap copy of exactly its length, freed right
 * after the call: under AddressSanitizer a read past the end of the message
 * or a pointer into the caller's buffer shows up as an error.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convdiag/common.h"
#include "convdiag/event.h"
#include "convdiag/utf8.h"

#define ORG "8a6d5c2e-1f3b-4c7d-9e0a-2b4c6d8e0f12"
#define LWI "5f2e7a90-3c1d-4b8e-a6f0-9d2c4b7e1a35"
#define USER "0c8d2f6e-7a1b-4e3c-9d5f-1a2b3c4d5e6f"
#define TS "2026-11-22T10:00:00.123456Z"
#define TS_US 1795341600123456LL /* 2026-11-22T10:00:00.123456Z */

/* String building blocks: S8(x) is x eight times. */
#define S8(x) x x x x x x x x
#define A128 S8(S8("aa"))                        /* 128 ASCII characters */
#define E128 S8(S8("\xC3\xA9" "\xC3\xA9"))       /* 128 x U+00E9, 256 bytes */
#define A36 S8("aaaa") "aaaa"                    /* what an excerpt keeps of a long value */

/* ---- Helpers ---- */

static void print_escaped(const char *label, const char *s, size_t len)
{
    char out[700];
    size_t o = 0;
    for (size_t i = 0; i < len && o + 8 < sizeof(out); i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f)
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, sizeof(out) - o, "\\x%02X", c);
    }
    out[o] = '\0';
    print_message("  %-9s %s%s\n", label, out, o + 8 >= sizeof(out) ? "..." : "");
}

/*
 * Parses a heap copy of exactly len bytes (not NUL-terminated), then scribbles
 * over and frees the copy: the event must not point into the caller's bytes.
 */
static cd_status_t parse_copy(cd_event_t *ev, const char *msg, size_t len,
                              const cd_event_limits_t *lim, cd_err_t *err)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, msg, len);
    snprintf(err->msg, sizeof(err->msg), "(no reason set)");
    cd_status_t st = cd_event_parse(ev, copy, len, lim, err);
    memset(copy, 'X', len);
    free(copy);
    return st;
}

typedef enum { OP_END = 0, OP_SET, OP_DEL, OP_ADD } op_t;

typedef struct mod {
    op_t op;
    const char *key;
    const char *value; /* raw JSON */
} mod_t;

/* SET replaces a base field (or appends a new one), DEL removes it, ADD appends
 * even when the field is already there. */
#define SET(k, v) {OP_SET, k, v}
#define DEL(k) {OP_DEL, k, NULL}
#define ADD(k, v) {OP_ADD, k, v}
#define MAX_MODS 4

/* The base event: the required fields only, status Started. */
static const struct {
    const char *key;
    const char *value;
} base_fields[] = {
    {"eventId", "\"evt-0001\""},
    {"timestamp", "\"" TS "\""},
    {"organizationId", "\"" ORG "\""},
    {"liveWorkItemId", "\"" LWI "\""},
    {"scenario", "\"ConversationInitialized\""},
    {"status", "\"Started\""},
    {"channelType", "\"livechat\""},
};

static bool in_base(const char *key)
{
    for (size_t i = 0; i < CD_ARRAY_LEN(base_fields); i++)
        if (strcmp(base_fields[i].key, key) == 0)
            return true;
    return false;
}

/* The base event with mods applied; the caller frees it. */
static char *build_event(const mod_t *mods)
{
    char *out = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&out, &size);
    assert_non_null(f);
    bool first = true;

    fputc('{', f);
    for (size_t i = 0; i < CD_ARRAY_LEN(base_fields); i++) {
        const char *value = base_fields[i].value;
        for (size_t m = 0; m < MAX_MODS && mods[m].op != OP_END; m++)
            if (mods[m].op != OP_ADD && strcmp(mods[m].key, base_fields[i].key) == 0)
                value = mods[m].op == OP_SET ? mods[m].value : NULL;
        if (!value)
            continue;
        fprintf(f, "%s\"%s\":%s", first ? "" : ",", base_fields[i].key, value);
        first = false;
    }
    for (size_t m = 0; m < MAX_MODS && mods[m].op != OP_END; m++) {
        if (mods[m].op == OP_ADD || (mods[m].op == OP_SET && !in_base(mods[m].key))) {
            fprintf(f, "%s\"%s\":%s", first ? "" : ",", mods[m].key, mods[m].value);
            first = false;
        }
    }
    fputc('}', f);
    fclose(f);
    return out;
}

static cd_event_limits_t default_limits(void)
{
    cd_event_limits_t lim;
    cd_event_limits_init(&lim);
    return lim;
}

/* Parses the base event with mods; fails the test unless it is accepted. */
static void parse_ok(cd_event_t *ev, const mod_t *mods, const cd_event_limits_t *lim)
{
    char *msg = build_event(mods);
    cd_err_t err;
    cd_status_t st = parse_copy(ev, msg, strlen(msg), lim, &err);
    if (st != CD_OK) {
        print_message("refused a valid event\n");
        print_escaped("input:", msg, strlen(msg));
        print_message("  reason:   %s\n", err.msg);
        free(msg);
        fail();
    }
    free(msg);
}

/* ---- Valid events ---- */

static void test_limits_defaults(void **state)
{
    (void)state;
    cd_event_limits_t lim;
    memset(&lim, 0xFF, sizeof(lim));
    cd_event_limits_init(&lim);
    assert_int_equal(lim.max_bytes, 65536);
    assert_int_equal(lim.max_id_chars, 128);
    assert_int_equal(lim.max_text_chars, 8192);
    assert_int_equal(lim.max_attributes, 64);
    assert_false(lim.strict_scenarios);
}

static void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(cd_event_status_name(CD_EVENT_STARTED), "Started");
    assert_string_equal(cd_event_status_name(CD_EVENT_COMPLETED), "Completed");
    assert_string_equal(cd_event_status_name(CD_EVENT_FAILED), "Failed");
}

static void test_base_event(void **state)
{
    (void)state;
    cd_event_limits_t lim = default_limits();
    cd_event_t ev;
    const mod_t none[MAX_MODS] = {{0}};

    parse_ok(&ev, none, &lim);
    assert_string_equal(ev.event_id, "evt-0001");
    assert_string_equal(ev.timestamp, TS);
    assert_int_equal(ev.ts_us, TS_US);
    assert_string_equal(ev.organization_id, ORG);
    assert_string_equal(ev.live_work_item_id, LWI);
    assert_string_equal(ev.scenario_received, "ConversationInitialized");
    assert_string_equal(ev.scenario, "ConversationInitialized");
    assert_string_equal(ev.category, "ConversationInitiation");
    assert_true(ev.scenario_known);
    assert_int_equal(ev.status, CD_EVENT_STARTED);
    assert_string_equal(ev.channel_type, "livechat");
    /* Absent optional fields. */
    assert_null(ev.participant_type);
    assert_null(ev.user_id);
    assert_null(ev.session_id);
    assert_null(ev.transaction_id);
    assert_null(ev.traceparent);
    assert_null(ev.tracestate);
    assert_int_equal(ev.duration_ms, -1);
    assert_null(ev.failure_reason);
    assert_null(ev.attributes_json);
    assert_non_null(ev.root);
    cd_event_fini(&ev);
    assert_null(ev.root);
    assert_null(ev.attributes_json);
}

static void test_full_event(void **state)
{
    (void)state;
    cd_event_limits_t lim = default_limits();
    static const char msg[] =
        "{\n"
        "  \"eventId\": \"evt-42\",\n"
        "  \"timestamp\": \"2026-11-22T15:30:00.123456+05:30\",\n"
        "  \"organizationId\": \"" ORG "\",\n"
        "  \"liveWorkItemId\": \"" LWI "\",\n"
        "  \"scenario\": \"CSRAccepted\",\n"
        "  \"status\": \"Failed\",\n"
        "  \"channelType\": \"whatsapp\",\n"
        "  \"participantType\": \"HumanAgent\",\n"
        "  \"userId\": \"" USER "\",\n"
        "  \"sessionId\": \"sess-7\",\n"
        "  \"transactionId\": \"txn-9\",\n"
        "  \"traceparent\": \"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\",\n"
        "  \"tracestate\": \"congo=t61rcWkgMzE\",\n"
        "  \"durationMs\": 1500,\n"
        "  \"failureReason\": \"agent did not answer\",\n"
        "  \"attributes\": {\"queue\": \"billing\", \"priority\": 3, \"vip\": true}\n"
        "}\n";
    cd_event_t ev;
    cd_err_t err;

    cd_status_t st = parse_copy(&ev, msg, sizeof(msg) - 1, &lim, &err);
    if (st != CD_OK)
        print_message("reason: %s\n", err.msg);
    assert_int_equal(st, CD_OK);
    assert_string_equal(ev.event_id, "evt-42");
    assert_string_equal(ev.timestamp, "2026-11-22T15:30:00.123456+05:30");
    assert_int_equal(ev.ts_us, TS_US); /* the same instant as 10:00:00.123456Z */
    assert_string_equal(ev.organization_id, ORG);
    assert_string_equal(ev.live_work_item_id, LWI);
    assert_string_equal(ev.scenario_received, "CSRAccepted");
    assert_string_equal(ev.scenario, "AgentAccepted");
    assert_string_equal(ev.category, "HumanAgentInteraction");
    assert_true(ev.scenario_known);
    assert_int_equal(ev.status, CD_EVENT_FAILED);
    assert_string_equal(ev.channel_type, "whatsapp");
    assert_string_equal(ev.participant_type, "HumanAgent");
    assert_string_equal(ev.user_id, USER);
    assert_string_equal(ev.session_id, "sess-7");
    assert_string_equal(ev.transaction_id, "txn-9");
    assert_string_equal(ev.traceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    assert_string_equal(ev.tracestate, "congo=t61rcWkgMzE");
    assert_int_equal(ev.duration_ms, 1500);
    assert_string_equal(ev.failure_reason, "agent did not answer");
    assert_non_null(ev.attributes_json);
    assert_string_equal(ev.attributes_json, "{\"queue\":\"billing\",\"priority\":3,\"vip\":true}");
    cd_event_fini(&ev);
}

static void test_completed_with_duration(void **state)
{
    (void)state;
    cd_event_limits_t lim = default_limits();
    cd_event_t ev;
    const mod_t mods[MAX_MODS] = {SET("status", "\"Completed\""), SET("durationMs", "0")};

    parse_ok(&ev, mods, &lim);
    assert_int_equal(ev.status, CD_EVENT_COMPLETED);
    assert_int_equal(ev.duration_ms, 0);
    cd_event_fini(&ev);

    const mod_t big[MAX_MODS] = {SET("status", "\"Completed\""), SET("durationMs", "31622400000")};
    parse_ok(&ev, big, &lim);
    assert_int_equal(ev.duration_ms, 31622400000LL); /* 366 days, the upper bound */
    cd_event_fini(&ev);

    const mod_t expo[MAX_MODS] = {SET("status", "\"Completed\""), SET("durationMs", "2.5e3")};
    parse_ok(&ev, expo, &lim);
    assert_int_equal(ev.duration_ms, 2500);
    cd_event_fini(&ev);
}

static void test_alias_scenario(void **state)
{
    (void)state;
    cd_event_limits_t lim = default_limits();
    cd_event_t ev;
    const mod_t mods[MAX_MODS] = {SET("scenario", "\"RTQ\"")};

    parse_ok(&ev, mods, &lim);
    assert_string_equal(ev.scenario_received, "RTQ");
    assert_string_equal(ev.scenario, "QueueAssignment");
    assert_string_equal(ev.category, "Routing");
    assert_true(ev.scenario_known);
    cd_event_fini(&ev);

    /* An alias is known, so the strict setting accepts it too. */
    lim.strict_scenarios = true;
    const mod_t bot[MAX_MODS] = {SET("scenario", "\"BotEscalationToHuman\"")};
    parse_ok(&ev, bot, &lim);
    assert_string_equal(ev.scenario_received, "BotEscalationToHuman");
    assert_string_equal(ev.scenario, "VirtualAgentEscalatedToHumanAgent");
    assert_string_equal(ev.category, "VirtualAgentInteraction");
    cd_event_fini(&ev);
}

static void test_unknown_scenario(void **state)
{
    (void)state;
    cd_event_limits_t lim = default_limits();
    cd_event_t ev;
    const mod_t mods[MAX_MODS] = {SET("scenario", "\"CustomerSentSticker\"")};

    parse_ok(&ev, mods, &lim);
    assert_string_equal(ev.scenario_received, "CustomerSentSticker");
    assert_string_equal(ev.scenario, "CustomerSentSticker");
    assert_string_equal(ev.category, "Other");
    assert_false(ev.scenario_known);
    cd_event_fini(&ev);

    /* Names are case-sensitive: a wrongly cased canonical name is unknown. */
    const mod_t lower[MAX_MODS] = {SET("scenario", "\"agentaccepted\"")};
    parse_ok(&ev, lower, &lim);
    assert_string_equal(ev.category, "Other");
    assert_false(ev.scenario_known);
    cd_event_fini(&ev);
}

static void test_strict_scenarios_refuse_unknown(void **state)
{
    (void)state;
    cd_event_limits_t lim = default_limits();
    lim.strict_scenarios = true;
    char *msg = build_event((const mod_t[MAX_MODS]){SET("scenario", "\"CustomerSentSticker\"")});
    cd_event_t ev;
    cd_err_t err;

    cd_status_t st = parse_copy(&ev, msg, strlen(msg), &lim, &err);
    free(msg);
    assert_int_equal(st, CD_ERROR);
    assert_null(ev.root);
    assert_string_equal(err.msg,
                        "scenario: 'CustomerSentSticker' is not a known scenario or alias");
}

static void test_null_optional_fields_are_absent(void **state)
{
    (void)state;
    cd_event_limits_t lim = default_limits();
    cd_event_t ev;
    char *msg = build_event((const mod_t[MAX_MODS]){{0}});
    /* Replace the closing brace with every optional field set to null. */
    static const char nulls[] =
        ",\"participantType\":null,\"userId\":null,\"sessionId\":null,\"transactionId\":null,"
        "\"traceparent\":null,\"tracestate\":null,\"durationMs\":null,\"failureReason\":null,"
        "\"attributes\":null}";
    size_t n = strlen(msg);
    char *full = malloc(n + sizeof(nulls));
    assert_non_null(full);
    memcpy(full, msg, n - 1);
    memcpy(full + n - 1, nulls, sizeof(nulls));
    free(msg);

    cd_err_t err;
    cd_status_t st = parse_copy(&ev, full, strlen(full), &lim, &err);
    if (st != CD_OK)
        print_message("reason: %s\n", err.msg);
    free(full);
    assert_int_equal(st, CD_OK);
    assert_null(ev.participant_type);
    assert_null(ev.user_id);
    assert_null(ev.session_id);
    assert_null(ev.transaction_id);
    assert_null(ev.traceparent);
    assert_null(ev.tracestate);
    assert_int_equal(ev.duration_ms, -1);
    assert_null(ev.failure_reason);
    assert_null(ev.attributes_json);
    /* durationMs: null on Started and failureReason: null on Started are fine: absent. */
    assert_int_equal(ev.status, CD_EVENT_STARTED);
    cd_event_fini(&ev);
}

static void test_attributes_reserialized(void **state)
{
    (void)state;
    cd_event_limits_t lim = default_limits();
    cd_event_t ev;

    /* Whitespace goes, order and values stay, escapes are re-encoded. */
    const mod_t mods[MAX_MODS] = {
        SET("attributes", "{ \"b\" : \"x\\\"y\" , \"a\" : -2.5 ,\"c\":false, \"d\":\"caf\\u00e9\" }")};
    parse_ok(&ev, mods, &lim);
    assert_non_null(ev.attributes_json);
    assert_string_equal(ev.attributes_json,
                        "{\"b\":\"x\\\"y\",\"a\":-2.5,\"c\":false,\"d\":\"caf\xC3\xA9\"}");
    cd_event_fini(&ev);

    const mod_t empty[MAX_MODS] = {SET("attributes", "{}")};
    parse_ok(&ev, empty, &lim);
    assert_non_null(ev.attributes_json);
    assert_string_equal(ev.attributes_json, "{}");
    cd_event_fini(&ev);
}

/*
 * Attribute numbers are passed through: re-serializing must give back the
 * same number (the same double at least), whatever its number of digits.
 */
static void test_attribute_numbers_keep_their_value(void **state)
{
    (void)state;
    static const char *const numbers[] = {
        "0", "-1", "42", "3.5", "-2.25", "0.1", "1e300", "123456789012",
        "1795341600123456",    /* a µs timestamp: 16 significant digits */
        "9007199254740992",    /* 2^53: 1 ulp from its 15-digit form */
        "0.30000000000000004", /* 0.1 + 0.2 */
        "2.718281828459045",
    };
    cd_event_limits_t lim = default_limits();
    int bad = 0;

    for (size_t i = 0; i < CD_ARRAY_LEN(numbers); i++) {
        char attrs[128];
        snprintf(attrs, sizeof(attrs), "{\"n\":%s}", numbers[i]);
        cd_event_t ev;
        parse_ok(&ev, (const mod_t[MAX_MODS]){SET("attributes", attrs)}, &lim);
        const char *json = ev.attributes_json;
        assert_non_null(json);
        assert_true(strncmp(json, "{\"n\":", 5) == 0);
        double want = strtod(numbers[i], NULL);
        double got = strtod(json + 5, NULL);
        if (got != want) {
            print_message("attribute %s re-serialized as %s\n", numbers[i], json);
            bad++;
        }
        cd_event_fini(&ev);
    }
    assert_int_equal(bad, 0);
}

/* The message is buf[0..len): bytes after len are not part of it. */
static void test_length_bounds_the_message(void **state)
{
    (void)state;
    cd_event_limits_t lim = default_limits();
    char *msg = build_event((const mod_t[MAX_MODS]){{0}});
    size_t n = strlen(msg);
    char *padded = malloc(n + 8);
    assert_non_null(padded);
    memcpy(padded, msg, n);
    memcpy(padded + n, "garbage", 8);
    cd_event_t ev;
    cd_err_t err;

    assert_int_equal(cd_event_parse(&ev, padded, n, &lim, &err), CD_OK);
    cd_event_fini(&ev);
    /* ... and the same buffer with the garbage counted is refused. */
    assert_int_equal(cd_event_parse(&ev, padded, n + 7, &lim, &err), CD_ERROR);
    assert_non_null(strstr(err.msg, "message has data after the JSON value"));
    free(padded);
    free(msg);
}

static void test_max_bytes_boundary(void **state)
{
    (void)state;
    cd_event_limits_t lim = default_limits();
    char *msg = build_event((const mod_t[MAX_MODS]){{0}});
    size_t n = strlen(msg);
    cd_event_t ev;
    cd_err_t err;
    char want[128];

    lim.max_bytes = n;
    assert_int_equal(parse_copy(&ev, msg, n, &lim, &err), CD_OK);
    cd_event_fini(&ev);

    lim.max_bytes = n - 1;
    assert_int_equal(parse_copy(&ev, msg, n, &lim, &err), CD_ERROR);
    snprintf(want, sizeof(want), "message is %zu bytes, over the limit of %zu", n, n - 1);
    assert_string_equal(err.msg, want);
    free(msg);
}

/* Ids are limited in characters (code points), not bytes. */
static void test_id_length_in_characters(void **state)
{
    (void)state;
    cd_event_limits_t lim = default_limits();
    cd_event_t ev;

    const mod_t ascii[MAX_MODS] = {SET("eventId", "\"" A128 "\""),
                                   SET("liveWorkItemId", "\"" A128 "\""),
                                   SET("sessionId", "\"" A128 "\""),
                                   SET("transactionId", "\"" A128 "\"")};
    parse_ok(&ev, ascii, &lim);
    assert_int_equal(strlen(ev.event_id), 128);
    assert_int_equal(strlen(ev.live_work_item_id), 128);
    cd_event_fini(&ev);

    const mod_t multi[MAX_MODS] = {SET("eventId", "\"" E128 "\""),
                                   SET("liveWorkItemId", "\"" E128 "\"")};
    parse_ok(&ev, multi, &lim);
    assert_int_equal(strlen(ev.event_id), 256);
    assert_string_equal(ev.event_id, E128);
    assert_string_equal(ev.live_work_item_id, E128);
    cd_event_fini(&ev);

    /* The same 128 characters sent as \u escapes. */
    const mod_t escaped[MAX_MODS] = {SET("eventId", "\"" S8(S8("\\u00e9\\u00e9")) "\"")};
    parse_ok(&ev, escaped, &lim);
    assert_string_equal(ev.event_id, E128);
    cd_event_fini(&ev);

    /* A 4-byte character (U+1F600) counts as one. */
    const mod_t astral[MAX_MODS] = {
        SET("eventId", "\"" S8(S8("\xF0\x9F\x98\x80" "\xF0\x9F\x98\x80")) "\"")};
    parse_ok(&ev, astral, &lim);
    assert_int_equal(strlen(ev.event_id), 512);
    cd_event_fini(&ev);
}

static void test_accepted_variants(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        mod_t mods[MAX_MODS];
    } rows[] = {
        {"upper-case UUID", {SET("organizationId", "\"8A6D5C2E-1F3B-4C7D-9E0A-2B4C6D8E0F12\"")}},
        {"lower-case t and z", {SET("timestamp", "\"2026-11-22t10:00:00.123z\"")}},
        {"9 fractional digits", {SET("timestamp", "\"2026-11-22T10:00:00.123456789Z\"")}},
        {"negative offset", {SET("timestamp", "\"2026-11-22T02:00:00.000-08:00\"")}},
        {"channel with digits, '_' and '-'", {SET("channelType", "\"custom_2-web\"")}},
        {"every participant type", {SET("participantType", "\"System\"")}},
        {"failureReason with newline on Failed",
         {SET("status", "\"Failed\""), SET("failureReason", "\"line 1\\nline 2\\ttab\"")}},
        {"brackets inside strings do not nest",
         {SET("eventId", "\"" S8("[[[{") "\""), SET("sessionId", "\"" S8("{{{[") "\"")}},
        {"escaped quote, then brackets inside the string",
         {SET("eventId", "\"a\\\"" S8("[[") S8("[[") "[\"")}},
        {"value ending in an escaped backslash, then brackets in a string",
         {SET("eventId", "\"x\\\\\""), SET("sessionId", "\"" S8("[[") S8("[[") "[\"")}},
        {"escaped backslash before the text u0000", {SET("sessionId", "\"\\\\u0000\"")}},
        {"null durationMs on Started", {SET("durationMs", "null")}},
        {"null failureReason on Completed",
         {SET("status", "\"Completed\""), SET("failureReason", "null")}},
    };
    cd_event_limits_t lim = default_limits();

    for (size_t i = 0; i < CD_ARRAY_LEN(rows); i++) {
        cd_event_t ev;
        print_message("accepted: %s\n", rows[i].name);
        parse_ok(&ev, rows[i].mods, &lim);
        cd_event_fini(&ev);
    }

    /* Leading and trailing whitespace around the object. */
    char *msg = build_event((const mod_t[MAX_MODS]){{0}});
    size_t n = strlen(msg);
    char *ws = malloc(n + 7);
    assert_non_null(ws);
    memcpy(ws, " \t\r\n", 4);
    memcpy(ws + 4, msg, n);
    memcpy(ws + 4 + n, "\r\n ", 3);
    cd_event_t ev;
    cd_err_t err;
    cd_status_t st = parse_copy(&ev, ws, n + 7, &lim, &err);
    if (st != CD_OK)
        print_message("reason: %s\n", err.msg);
    assert_int_equal(st, CD_OK);
    cd_event_fini(&ev);
    free(ws);
    free(msg);
}

/* ---- Nesting, entries and key lengths: generated inputs ---- */

static char *nested(const char *prefix, int depth, const char *suffix)
{
    size_t p = strlen(prefix), d = (size_t)depth, q = strlen(suffix);
    char *s = malloc(p + 2 * d + q + 1);
    assert_non_null(s);
    memcpy(s, prefix, p);
    memset(s + p, '[', d);
    memset(s + p + d, ']', d);
    memcpy(s + p + 2 * d, suffix, q + 1);
    return s;
}

static void test_nesting_depth(void **state)
{
    (void)state;
    cd_event_limits_t lim = default_limits();
    cd_event_t ev;
    cd_err_t err;

    /* 16 levels pass the nesting rule (and are refused for not being an object). */
    char *s = nested("", 16, "");
    assert_int_equal(parse_copy(&ev, s, strlen(s), &lim, &err), CD_ERROR);
    assert_string_equal(err.msg, "message is an array, not a JSON object");
    free(s);

    s = nested("", 17, "");
    assert_int_equal(parse_copy(&ev, s, strlen(s), &lim, &err), CD_ERROR);
    assert_string_equal(err.msg, "message nests deeper than 16 levels");
    free(s);

    /* Inside an event: the object is level 1, so 16 arrays in attributes make 17. */
    s = nested("{\"attributes\":", 16, "}");
    assert_int_equal(parse_copy(&ev, s, strlen(s), &lim, &err), CD_ERROR);
    assert_string_equal(err.msg, "message nests deeper than 16 levels");
    free(s);

    s = nested("{\"attributes\":", 15, "}");
    assert_int_equal(parse_copy(&ev, s, strlen(s), &lim, &err), CD_ERROR);
    assert_string_equal(err.msg, "attributes: expected an object, got an array");
    free(s);

    /* Very deep input (just under the size limit) is refused before any recursion. */
    s = nested("", 30000, "");
    assert_int_equal(parse_copy(&ev, s, strlen(s), &lim, &err), CD_ERROR);
    assert_string_equal(err.msg, "message nests deeper than 16 levels");
    free(s);
}

static char *attributes_event(size_t entries, size_t key_chars)
{
    char *out = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&out, &size);
    assert_non_null(f);
    char *base = build_event((const mod_t[MAX_MODS]){{0}});
    fwrite(base, 1, strlen(base) - 1, f);
    free(base);
    fputs(",\"attributes\":{", f);
    for (size_t i = 0; i < entries; i++) {
        fprintf(f, "%s\"k%zu", i ? "," : "", i);
        /* pad the key to key_chars characters */
        int digits = snprintf(NULL, 0, "k%zu", i);
        for (size_t c = (size_t)digits; c < key_chars; c++)
            fputc('x', f);
        fprintf(f, "\":%zu", i);
    }
    fputs("}}", f);
    fclose(f);
    return out;
}

static void test_attribute_entries_and_keys(void **state)
{
    (void)state;
    cd_event_limits_t lim = default_limits();
    cd_event_t ev;
    cd_err_t err;

    char *s = attributes_event(64, 0);
    assert_int_equal(parse_copy(&ev, s, strlen(s), &lim, &err), CD_OK);
    assert_non_null(strstr(ev.attributes_json, "\"k63\":63"));
    cd_event_fini(&ev);
    free(s);

    s = attributes_event(65, 0);
    assert_int_equal(parse_copy(&ev, s, strlen(s), &lim, &err), CD_ERROR);
    assert_string_equal(err.msg, "attributes: more than 64 entries");
    free(s);

    s = attributes_event(1, 150);
    assert_int_equal(parse_copy(&ev, s, strlen(s), &lim, &err), CD_OK);
    cd_event_fini(&ev);
    free(s);

    s = attributes_event(1, 151);
    assert_int_equal(parse_copy(&ev, s, strlen(s), &lim, &err), CD_ERROR);
    assert_non_null(strstr(err.msg, "attributes: key 'k0xxx"));
    assert_non_null(strstr(err.msg, "' must have 1 to 150 characters"));
    free(s);
}

/*
 * A reason is stored in a PostgreSQL text column (dead_letters.reason), so it
 * must be valid UTF-8 whatever the input: long values are shortened without
 * splitting a character.  Each string field gets a long value of 3-byte
 * characters behind 0, 1 and 2 ASCII bytes, so that any byte-count cut falls
 * inside a character for one of them.
 */
static void test_reason_is_valid_utf8_for_long_values(void **state)
{
    (void)state;
    static const char *const fields[] = {
        "eventId", "timestamp", "organizationId", "liveWorkItemId", "scenario", "status",
        "channelType", "participantType", "userId", "sessionId", "transactionId",
        "traceparent", "tracestate", "failureReason", "bogusField",
    };
    cd_event_limits_t lim = default_limits();
    lim.max_text_chars = 100; /* so that failureReason is refused too */
    int bad = 0;

    for (size_t f = 0; f < CD_ARRAY_LEN(fields); f++) {
        for (int pad = 0; pad < 3; pad++) {
            char value[2048];
            size_t o = 0;
            value[o++] = '"';
            for (int i = 0; i < pad; i++)
                value[o++] = 'x';
            for (int i = 0; i < 400; i++) {
                memcpy(value + o, "\xE2\x82\xAC", 3); /* U+20AC */
                o += 3;
            }
            value[o++] = '"';
            value[o] = '\0';

            char *msg;
            if (strcmp(fields[f], "bogusField") == 0) {
                /* a long unknown field name */
                char mod_key[1300];
                snprintf(mod_key, sizeof(mod_key), "%.*s", (int)(o - 2), value + 1);
                msg = build_event((const mod_t[MAX_MODS]){SET(mod_key, "1")});
            } else {
                msg = build_event((const mod_t[MAX_MODS]){SET("status", "\"Failed\""),
                                                          SET(fields[f], value)});
            }
            cd_event_t ev;
            cd_err_t err;
            cd_status_t st = parse_copy(&ev, msg, strlen(msg), &lim, &err);
            free(msg);
            if (st != CD_ERROR) {
                print_message("%s (pad %d): accepted\n", fields[f], pad);
                if (st == CD_OK)
                    cd_event_fini(&ev);
                bad++;
                continue;
            }
            size_t at = 0;
            if (!cd_utf8_valid(err.msg, strlen(err.msg), &at)) {
                print_message("%s (pad %d): reason is not valid UTF-8 at byte %zu of %zu\n",
                              fields[f], pad, at, strlen(err.msg));
                print_escaped("reason:", err.msg, strlen(err.msg));
                bad++;
            }
        }
    }
    assert_int_equal(bad, 0);
}

/* ---- Invalid inputs: one row each ---- */

typedef struct bad_case {
    const char *name;
    const char *raw;    /* the whole message instead of the base event with mods */
    size_t raw_len;     /* 0: strlen(raw) */
    mod_t mods[MAX_MODS];
    size_t max_bytes;      /* 0: default */
    size_t max_attributes; /* 0: default */
    size_t max_text_chars; /* 0: default */
    bool strict;
    const char *expect; /* must occur in the reason */
} bad_case_t;

#define RAW(s) .raw = s, .raw_len = sizeof(s) - 1
#define MODS(...) .mods = {__VA_ARGS__}

static const bad_case_t bad_cases[] = {
    /* -- not JSON by RFC 8259, though a lenient parser takes it (any reason will do) -- */
    {.name = "raw tab inside a string",
     MODS(SET("status", "\"Failed\""), SET("failureReason", "\"a\tb\"")), .expect = ""},
    {.name = "raw newline inside an attribute value", MODS(SET("attributes", "{\"k\":\"a\nb\"}")),
     .expect = ""},
    {.name = "number with leading zeros",
     MODS(SET("status", "\"Completed\""), SET("durationMs", "0012")), .expect = ""},
    {.name = "number with a trailing dot",
     MODS(SET("status", "\"Completed\""), SET("durationMs", "12.")), .expect = ""},

    /* -- the message as a whole -- */
    {.name = "empty message", RAW(""), .expect = "message is empty"},
    {.name = "not JSON", RAW("not json"), .expect = "message is not valid JSON"},
    {.name = "whitespace only", RAW("  \n "), .expect = "message is not valid JSON"},
    {.name = "truncated object", RAW("{\"eventId\":\"a\""),
     .expect = "message is not valid JSON"},
    {.name = "single quotes", RAW("{'eventId':'a'}"), .expect = "message is not valid JSON"},
    {.name = "trailing comma", RAW("{\"eventId\":\"a\",}"), .expect = "message is not valid JSON"},
    {.name = "trailing data", RAW("{} x"),
     .expect = "message has data after the JSON value (byte offset 3)"},
    {.name = "two objects", RAW("{}{}"),
     .expect = "message has data after the JSON value (byte offset 2)"},
    {.name = "array root", RAW("[{\"eventId\":\"a\"}]"),
     .expect = "message is an array, not a JSON object"},
    {.name = "string root", RAW("\"event\""), .expect = "message is a string, not a JSON object"},
    {.name = "number root", RAW("42"), .expect = "message is a number, not a JSON object"},
    {.name = "null root", RAW("null"), .expect = "message is null, not a JSON object"},
    {.name = "true root", RAW("true"), .expect = "message is a boolean, not a JSON object"},
    {.name = "oversize", .max_bytes = 100, .expect = "bytes, over the limit of 100"},
    {.name = "oversize checked before anything else", RAW("\xFF\xFF\xFF\xFF\xFF"),
     .max_bytes = 4, .expect = "message is 5 bytes, over the limit of 4"},

    /* -- UTF-8: the offset is that of the first byte of the bad sequence -- */
    {.name = "UTF-8 overlong 2-byte (C0 AF)", MODS(SET("eventId", "\"\xC0\xAF\"")),
     .expect = "message is not valid UTF-8 (byte offset 12)"},
    {.name = "UTF-8 overlong 3-byte (E0 80 AF)", MODS(SET("eventId", "\"ab\xE0\x80\xAF\"")),
     .expect = "message is not valid UTF-8 (byte offset 14)"},
    {.name = "UTF-8 overlong 4-byte (F0 8F BF BF)", MODS(SET("eventId", "\"\xF0\x8F\xBF\xBF\"")),
     .expect = "message is not valid UTF-8 (byte offset 12)"},
    {.name = "UTF-8 surrogate (ED A0 80)", MODS(SET("eventId", "\"\xED\xA0\x80\"")),
     .expect = "message is not valid UTF-8 (byte offset 12)"},
    {.name = "UTF-8 above U+10FFFF (F4 90 80 80)", MODS(SET("eventId", "\"\xF4\x90\x80\x80\"")),
     .expect = "message is not valid UTF-8 (byte offset 12)"},
    {.name = "UTF-8 truncated sequence before quote", MODS(SET("eventId", "\"a\xE2\x82\"")),
     .expect = "message is not valid UTF-8 (byte offset 13)"},
    {.name = "UTF-8 truncated sequence at end of message", RAW("{}\xF0\x9F\x98"),
     .expect = "message is not valid UTF-8 (byte offset 2)"},
    {.name = "UTF-8 byte FF", MODS(SET("eventId", "\"\xFF\"")),
     .expect = "message is not valid UTF-8 (byte offset 12)"},
    {.name = "UTF-8 lone continuation byte", MODS(SET("eventId", "\"\xC3\xA9\x80\"")),
     .expect = "message is not valid UTF-8 (byte offset 14)"},
    {.name = "UTF-8 Latin-1 byte", RAW("{\"eventId\":\"caf\xE9\"}"),
     .expect = "message is not valid UTF-8 (byte offset 15)"},

    /* -- what a PostgreSQL text column cannot hold -- */
    {.name = "NUL byte", RAW("{\"eventId\":\"a\0b\"}"),
     .expect = "message contains a NUL byte at offset 13"},
    {.name = "NUL byte outside strings", RAW("{}\0"),
     .expect = "message contains a NUL byte at offset 2"},
    {.name = "escaped NUL", MODS(SET("eventId", "\"a\\u0000b\"")),
     .expect = "message contains an escaped NUL (\\u0000) at offset 13"},
    {.name = "escaped NUL in an attribute key", MODS(SET("attributes", "{\"\\u0000\":1}")),
     .expect = "message contains an escaped NUL (\\u0000)"},

    /* -- required fields -- */
    {.name = "eventId missing", MODS(DEL("eventId")),
     .expect = "eventId: required field is missing"},
    {.name = "timestamp missing", MODS(DEL("timestamp")),
     .expect = "timestamp: required field is missing"},
    {.name = "organizationId missing", MODS(DEL("organizationId")),
     .expect = "organizationId: required field is missing"},
    {.name = "liveWorkItemId missing", MODS(DEL("liveWorkItemId")),
     .expect = "liveWorkItemId: required field is missing"},
    {.name = "scenario missing", MODS(DEL("scenario")),
     .expect = "scenario: required field is missing"},
    {.name = "status missing", MODS(DEL("status")), .expect = "status: required field is missing"},
    {.name = "channelType missing", MODS(DEL("channelType")),
     .expect = "channelType: required field is missing"},
    {.name = "empty object", RAW("{}"), .expect = "required field is missing"},
    {.name = "eventId null", MODS(SET("eventId", "null")),
     .expect = "eventId: expected a string, got null"},
    {.name = "channelType null", MODS(SET("channelType", "null")),
     .expect = "channelType: expected a string, got null"},
    {.name = "status null", MODS(SET("status", "null")),
     .expect = "status: expected a string, got null"},

    /* -- types -- */
    {.name = "eventId number", MODS(SET("eventId", "42")),
     .expect = "eventId: expected a string, got a number"},
    {.name = "timestamp number", MODS(SET("timestamp", "1795341600123")),
     .expect = "timestamp: expected a string, got a number"},
    {.name = "organizationId object", MODS(SET("organizationId", "{}")),
     .expect = "organizationId: expected a string, got an object"},
    {.name = "liveWorkItemId array", MODS(SET("liveWorkItemId", "[\"" LWI "\"]")),
     .expect = "liveWorkItemId: expected a string, got an array"},
    {.name = "scenario number", MODS(SET("scenario", "7")),
     .expect = "scenario: expected a string, got a number"},
    {.name = "status boolean", MODS(SET("status", "true")),
     .expect = "status: expected a string, got a boolean"},
    {.name = "channelType number", MODS(SET("channelType", "1")),
     .expect = "channelType: expected a string, got a number"},
    {.name = "participantType number", MODS(SET("participantType", "2")),
     .expect = "participantType: expected a string, got a number"},
    {.name = "userId boolean", MODS(SET("userId", "false")),
     .expect = "userId: expected a string, got a boolean"},
    {.name = "sessionId number", MODS(SET("sessionId", "12")),
     .expect = "sessionId: expected a string, got a number"},
    {.name = "transactionId array", MODS(SET("transactionId", "[]")),
     .expect = "transactionId: expected a string, got an array"},
    {.name = "traceparent object", MODS(SET("traceparent", "{}")),
     .expect = "traceparent: expected a string, got an object"},
    {.name = "tracestate number", MODS(SET("tracestate", "5")),
     .expect = "tracestate: expected a string, got a number"},
    {.name = "durationMs string", MODS(SET("status", "\"Completed\""), SET("durationMs", "\"100\"")),
     .expect = "durationMs: expected a number, got a string"},
    {.name = "durationMs boolean", MODS(SET("status", "\"Completed\""), SET("durationMs", "true")),
     .expect = "durationMs: expected a number, got a boolean"},
    {.name = "failureReason number", MODS(SET("status", "\"Failed\""), SET("failureReason", "5")),
     .expect = "failureReason: expected a string, got a number"},
    {.name = "attributes string", MODS(SET("attributes", "\"a=b\"")),
     .expect = "attributes: expected an object, got a string"},
    {.name = "attributes array", MODS(SET("attributes", "[1,2]")),
     .expect = "attributes: expected an object, got an array"},

    /* -- status -- */
    {.name = "status Done", MODS(SET("status", "\"Done\"")),
     .expect = "status: 'Done' is not one of Started, Completed, Failed"},
    {.name = "status lower case", MODS(SET("status", "\"started\"")),
     .expect = "status: 'started' is not one of Started, Completed, Failed"},
    {.name = "status empty", MODS(SET("status", "\"\"")),
     .expect = "status: '' is not one of Started, Completed, Failed"},

    /* -- UUIDs -- */
    {.name = "organizationId not a UUID", MODS(SET("organizationId", "\"not-a-uuid\"")),
     .expect = "organizationId: 'not-a-uuid' is not a UUID"},
    {.name = "organizationId empty", MODS(SET("organizationId", "\"\"")),
     .expect = "organizationId: '' is not a UUID"},
    {.name = "organizationId without dashes",
     MODS(SET("organizationId", "\"8a6d5c2e1f3b4c7d9e0a2b4c6d8e0f12\"")),
     .expect = "organizationId: '8a6d5c2e1f3b4c7d9e0a2b4c6d8e0f12' is not a UUID"},
    {.name = "organizationId in braces", MODS(SET("organizationId", "\"{" ORG "}\"")),
     .expect = "organizationId: '{" ORG "}' is not a UUID"},
    {.name = "organizationId one digit too many", MODS(SET("organizationId", "\"" ORG "0\"")),
     .expect = "organizationId: '" ORG "0' is not a UUID"},
    {.name = "organizationId one digit short",
     MODS(SET("organizationId", "\"8a6d5c2e-1f3b-4c7d-9e0a-2b4c6d8e0f1\"")),
     .expect = "is not a UUID"},
    {.name = "organizationId non-hex digit",
     MODS(SET("organizationId", "\"8a6d5c2e-1f3b-4c7d-9e0a-2b4c6d8e0f1g\"")),
     .expect = "is not a UUID"},
    {.name = "organizationId dash misplaced",
     MODS(SET("organizationId", "\"8a6d5c2e1-f3b-4c7d-9e0a-2b4c6d8e0f12\"")),
     .expect = "is not a UUID"},
    {.name = "userId not a UUID", MODS(SET("userId", "\"agent-17\"")),
     .expect = "userId: 'agent-17' is not a UUID"},

    /* -- timestamps -- */
    {.name = "timestamp without offset", MODS(SET("timestamp", "\"2026-11-22T10:00:00.123\"")),
     .expect = "timestamp: '2026-11-22T10:00:00.123' lacks a UTC offset ('Z' or '+hh:mm')"},
    {.name = "timestamp without fraction", MODS(SET("timestamp", "\"2026-11-22T10:00:00Z\"")),
     .expect = "timestamp: '2026-11-22T10:00:00Z' needs at least 3 fractional digits "
               "(millisecond precision)"},
    {.name = "timestamp with 2 fractional digits",
     MODS(SET("timestamp", "\"2026-11-22T10:00:00.12Z\"")),
     .expect = "timestamp: '2026-11-22T10:00:00.12Z' needs at least 3 fractional digits"},
    {.name = "timestamp with empty fraction", MODS(SET("timestamp", "\"2026-11-22T10:00:00.Z\"")),
     .expect = "timestamp: '2026-11-22T10:00:00.Z' has an empty fraction of a second"},
    {.name = "timestamp Feb 30", MODS(SET("timestamp", "\"2026-02-30T10:00:00.000Z\"")),
     .expect = "timestamp: '2026-02-30T10:00:00.000Z' has no such date"},
    {.name = "timestamp Feb 29 of a common year",
     MODS(SET("timestamp", "\"2025-02-29T10:00:00.000Z\"")),
     .expect = "timestamp: '2025-02-29T10:00:00.000Z' has no such date"},
    {.name = "timestamp month 13", MODS(SET("timestamp", "\"2026-13-01T10:00:00.000Z\"")),
     .expect = "has no such date"},
    {.name = "timestamp day 0", MODS(SET("timestamp", "\"2026-11-00T10:00:00.000Z\"")),
     .expect = "has no such date"},
    {.name = "timestamp hour 24", MODS(SET("timestamp", "\"2026-11-22T24:00:00.000Z\"")),
     .expect = "timestamp: '2026-11-22T24:00:00.000Z' has no such time of day"},
    {.name = "timestamp minute 60", MODS(SET("timestamp", "\"2026-11-22T10:60:00.000Z\"")),
     .expect = "has no such time of day"},
    {.name = "timestamp with a space", MODS(SET("timestamp", "\"2026-11-22 10:00:00.000Z\"")),
     .expect = "timestamp: '2026-11-22 10:00:00.000Z' is not an RFC 3339 date-time"},
    {.name = "timestamp date only", MODS(SET("timestamp", "\"2026-11-22\"")),
     .expect = "timestamp: '2026-11-22' is not an RFC 3339 date-time"},
    {.name = "timestamp empty", MODS(SET("timestamp", "\"\"")),
     .expect = "timestamp: '' is not an RFC 3339 date-time"},
    {.name = "timestamp offset without colon",
     MODS(SET("timestamp", "\"2026-11-22T10:00:00.000+0530\"")),
     .expect = "timestamp: '2026-11-22T10:00:00.000+0530' has a malformed UTC offset"},
    {.name = "timestamp offset hour 24", MODS(SET("timestamp", "\"2026-11-22T10:00:00.000+24:00\"")),
     .expect = "has a malformed UTC offset"},
    {.name = "timestamp trailing characters",
     MODS(SET("timestamp", "\"2026-11-22T10:00:00.000Z \"")),
     .expect = "timestamp: '2026-11-22T10:00:00.000Z ' has trailing characters"},

    /* -- ids: length, emptiness, control characters -- */
    {.name = "eventId 129 characters", MODS(SET("eventId", "\"" A128 "a\"")),
     .expect = "eventId: '" A36 "...' is 129 characters, over the limit of 128"},
    {.name = "eventId 129 two-byte characters", MODS(SET("eventId", "\"" E128 "\xC3\xA9\"")),
     .expect = "eventId: '" S8("\xC3\xA9" "\xC3\xA9") "\xC3\xA9" "\xC3\xA9"
               "...' is 129 characters, over the limit of 128"},
    {.name = "liveWorkItemId 129 characters", MODS(SET("liveWorkItemId", "\"" A128 "a\"")),
     .expect = "liveWorkItemId: '" A36 "...' is 129 characters, over the limit of 128"},
    {.name = "sessionId 129 characters", MODS(SET("sessionId", "\"" A128 "a\"")),
     .expect = "sessionId: '" A36 "...' is 129 characters, over the limit of 128"},
    {.name = "transactionId 129 characters", MODS(SET("transactionId", "\"" A128 "a\"")),
     .expect = "transactionId: '" A36 "...' is 129 characters, over the limit of 128"},
    {.name = "scenario 129 characters", MODS(SET("scenario", "\"" A128 "a\"")),
     .expect = "is 129 characters, over the limit of 128"},
    {.name = "eventId empty", MODS(SET("eventId", "\"\"")), .expect = "eventId: must not be empty"},
    {.name = "liveWorkItemId empty", MODS(SET("liveWorkItemId", "\"\"")),
     .expect = "liveWorkItemId: must not be empty"},
    {.name = "scenario empty", MODS(SET("scenario", "\"\"")),
     .expect = "scenario: must not be empty"},
    {.name = "eventId with tab", MODS(SET("eventId", "\"a\\tb\"")),
     .expect = "eventId: 'a\tb' contains a control character"},
    {.name = "eventId with raw DEL", MODS(SET("eventId", "\"a\x7f" "b\"")),
     .expect = "eventId: 'a\x7f" "b' contains a control character"},
    {.name = "liveWorkItemId with U+001F", MODS(SET("liveWorkItemId", "\"x\\u001fy\"")),
     .expect = "liveWorkItemId: 'x\x1fy' contains a control character"},
    {.name = "sessionId with newline", MODS(SET("sessionId", "\"s\\n\"")),
     .expect = "sessionId: 's\n' contains a control character"},
    {.name = "transactionId with CR", MODS(SET("transactionId", "\"t\\r\"")),
     .expect = "transactionId: 't\r' contains a control character"},
    {.name = "scenario with newline", MODS(SET("scenario", "\"AgentAccepted\\n\"")),
     .expect = "scenario: 'AgentAccepted\n' contains a control character"},
    {.name = "traceparent with newline", MODS(SET("traceparent", "\"00-\\n\"")),
     .expect = "traceparent: '00-\n' contains a control character"},

    /* -- channelType, participantType -- */
    {.name = "channelType upper case", MODS(SET("channelType", "\"LiveChat\"")),
     .expect = "channelType: 'LiveChat' must be lower-case letters, digits, '_' or '-'"},
    {.name = "channelType with space", MODS(SET("channelType", "\"live chat\"")),
     .expect = "channelType: 'live chat' must be lower-case letters, digits, '_' or '-'"},
    {.name = "channelType with non-ASCII letter", MODS(SET("channelType", "\"t\xC3\xA9l\xC3\xA9\"")),
     .expect = "must be lower-case letters, digits, '_' or '-'"},
    {.name = "channelType empty", MODS(SET("channelType", "\"\"")),
     .expect = "channelType: must not be empty"},
    {.name = "channelType 65 characters", MODS(SET("channelType", "\"" S8("abcdefgh") "x\"")),
     .expect = "is 65 characters, over the limit of 64"},
    {.name = "participantType unknown", MODS(SET("participantType", "\"Bot\"")),
     .expect = "participantType: 'Bot' is not one of HumanAgent, VirtualAgent, Customer, "
               "Supervisor, System"},
    {.name = "participantType lower case", MODS(SET("participantType", "\"humanagent\"")),
     .expect = "participantType: 'humanagent' is not one of"},

    /* -- durationMs and failureReason, and the status they need -- */
    {.name = "durationMs negative", MODS(SET("status", "\"Completed\""), SET("durationMs", "-5")),
     .expect = "durationMs: -5 is not a whole number of milliseconds between 0 and 31622400000"},
    {.name = "durationMs fractional", MODS(SET("status", "\"Completed\""), SET("durationMs", "1.5")),
     .expect = "durationMs: 1.5 is not a whole number of milliseconds between 0 and 31622400000"},
    {.name = "durationMs over a year",
     MODS(SET("status", "\"Failed\""), SET("durationMs", "31622400001")),
     .expect = "is not a whole number of milliseconds between 0 and 31622400000"},
    {.name = "durationMs huge", MODS(SET("status", "\"Failed\""), SET("durationMs", "1e400")),
     .expect = "is not a whole number of milliseconds"},
    {.name = "durationMs on Started", MODS(SET("durationMs", "100")),
     .expect = "durationMs: only allowed when status is Completed or Failed"},
    {.name = "durationMs 0 on Started", MODS(SET("durationMs", "0")),
     .expect = "durationMs: only allowed when status is Completed or Failed"},
    {.name = "durationMs before status Started",
     MODS(DEL("status"), ADD("durationMs", "10"), ADD("status", "\"Started\"")),
     .expect = "durationMs: only allowed when status is Completed or Failed"},
    {.name = "failureReason on Completed",
     MODS(SET("status", "\"Completed\""), SET("failureReason", "\"timeout\"")),
     .expect = "failureReason: only allowed when status is Failed, not Completed"},
    {.name = "failureReason on Started", MODS(SET("failureReason", "\"timeout\"")),
     .expect = "failureReason: only allowed when status is Failed, not Started"},
    {.name = "failureReason empty", MODS(SET("status", "\"Failed\""), SET("failureReason", "\"\"")),
     .expect = "failureReason: must not be empty"},
    {.name = "failureReason over max_text_chars",
     MODS(SET("status", "\"Failed\""), SET("failureReason", "\"abcdefghijk\"")),
     .max_text_chars = 10, .expect = "failureReason: 'abcdefghijk' is 11 characters, over the limit of 10"},
    {.name = "attributes allocated, then failureReason refused",
     MODS(SET("attributes", "{\"a\":1}"), SET("status", "\"Completed\""),
          SET("failureReason", "\"x\"")),
     .expect = "failureReason: only allowed when status is Failed, not Completed"},

    /* -- attributes -- */
    {.name = "attributes nested object", MODS(SET("attributes", "{\"a\":{\"b\":1}}")),
     .expect = "attributes.a: expected a string, number or boolean, got an object"},
    {.name = "attributes nested array", MODS(SET("attributes", "{\"ok\":1,\"list\":[1,2]}")),
     .expect = "attributes.list: expected a string, number or boolean, got an array"},
    {.name = "attributes null value", MODS(SET("attributes", "{\"a\":null}")),
     .expect = "attributes.a: expected a string, number or boolean, got null"},
    {.name = "attributes too many entries", MODS(SET("attributes", "{\"a\":1,\"b\":2,\"c\":3}")),
     .max_attributes = 2, .expect = "attributes: more than 2 entries"},
    {.name = "attributes duplicate key", MODS(SET("attributes", "{\"a\":1,\"b\":2,\"a\":\"x\"}")),
     .expect = "attributes: key 'a' appears twice"},
    {.name = "attributes empty key", MODS(SET("attributes", "{\"\":1}")),
     .expect = "attributes: key '' must have 1 to 150 characters"},
    {.name = "attributes string value over max_text_chars",
     MODS(SET("attributes", "{\"note\":\"12345\"}")), .max_text_chars = 4,
     .expect = "attributes.note: value is over the limit of 4 characters"},

    /* -- fields -- */
    {.name = "duplicate eventId", MODS(ADD("eventId", "\"evt-0002\"")),
     .expect = "eventId: field appears twice"},
    {.name = "duplicate status with same value", MODS(ADD("status", "\"Started\"")),
     .expect = "status: field appears twice"},
    {.name = "duplicate optional field, first null",
     MODS(SET("sessionId", "null"), ADD("sessionId", "\"s\"")),
     .expect = "sessionId: field appears twice"},
    {.name = "unknown field", MODS(SET("foo", "1")),
     .expect = "foo: unknown field (contract v1 has no such field)"},
    {.name = "field name in wrong case", MODS(SET("EventId", "\"x\"")),
     .expect = "EventId: unknown field (contract v1 has no such field)"},
    {.name = "unknown field with null value", MODS(SET("extra", "null")),
     .expect = "extra: unknown field"},
    {.name = "strict scenarios refuse unknown", MODS(SET("scenario", "\"NotAScenario\"")),
     .strict = true, .expect = "scenario: 'NotAScenario' is not a known scenario or alias"},
};

static void test_bad_case(void **state)
{
    const bad_case_t *c = *state;
    cd_event_limits_t lim = default_limits();
    if (c->max_bytes)
        lim.max_bytes = c->max_bytes;
    if (c->max_attributes)
        lim.max_attributes = c->max_attributes;
    if (c->max_text_chars)
        lim.max_text_chars = c->max_text_chars;
    lim.strict_scenarios = c->strict;

    char *built = c->raw ? NULL : build_event(c->mods);
    const char *msg = c->raw ? c->raw : built;
    size_t len = c->raw ? (c->raw_len ? c->raw_len : strlen(c->raw)) : strlen(built);

    cd_event_t ev;
    cd_err_t err;
    cd_status_t st = parse_copy(&ev, msg, len, &lim, &err);
    bool ok = st == CD_ERROR && strstr(err.msg, c->expect) != NULL;
    if (!ok) {
        print_message("[%s] %s\n", c->name,
                      st == CD_ERROR ? "wrong reason" : "accepted an invalid event");
        print_escaped("input:", msg, len);
        print_escaped("expected:", c->expect, strlen(c->expect));
        print_escaped("actual:", err.msg, strlen(err.msg));
    }
    if (st == CD_OK)
        cd_event_fini(&ev);
    free(built);
    assert_true(ok);
    /* Nothing to release after a refusal. */
    assert_null(ev.root);
    assert_null(ev.attributes_json);
    /* The reason goes to a text column. */
    assert_true(cd_utf8_valid(err.msg, strlen(err.msg), NULL));
}


/* ---- the reason of a malformed message does not depend on other threads ---- */

/* Messages cut short at different places: each has its own error offset. */
static const char *const truncated[] = {
    "{\"eventId\":\"e1\",\"timestamp\":\"2026-11-22T10:00:00Z\",\"status\":",
    "{\"eventId\":\"e2\",\"scen",
    "{\"a\":tru",
    "[1,2,{\"x\":[",
};
#define PARSERS 4
#define ROUNDS 20000

typedef struct parse_job {
    char want[CD_ARRAY_LEN(truncated)][CD_ERR_MAX];
    int start; /* which message this thread begins with, so threads interleave */
    int mismatches;
} parse_job_t;

static void *parse_many(void *arg)
{
    parse_job_t *job = arg;
    cd_event_limits_t lim = default_limits();
    for (int i = 0; i < ROUNDS; i++) {
        size_t k = (size_t)(job->start + i) % CD_ARRAY_LEN(truncated);
        cd_event_t ev;
        cd_err_t err;
        if (cd_event_parse(&ev, truncated[k], strlen(truncated[k]), &lim, &err) == CD_OK) {
            cd_event_fini(&ev);
            job->mismatches++;
        } else if (strcmp(err.msg, job->want[k]) != 0) {
            job->mismatches++;
        }
    }
    return NULL;
}

static void test_parse_error_per_thread(void **state)
{
    (void)state;
    cd_event_limits_t lim = default_limits();
    parse_job_t jobs[PARSERS];
    pthread_t threads[PARSERS];

    /* What each message gets when parsed alone. */
    for (size_t k = 0; k < CD_ARRAY_LEN(truncated); k++) {
        cd_event_t ev;
        cd_err_t err;
        assert_int_equal(cd_event_parse(&ev, truncated[k], strlen(truncated[k]), &lim, &err),
                         CD_ERROR);
        assert_non_null(strstr(err.msg, "not valid JSON"));
        for (int t = 0; t < PARSERS; t++)
            snprintf(jobs[t].want[k], sizeof(jobs[t].want[k]), "%s", err.msg);
    }
    /* The offsets differ, so a reason taken from another thread's parse shows. */
    assert_string_not_equal(jobs[0].want[0], jobs[0].want[1]);
    for (int t = 0; t < PARSERS; t++) {
        jobs[t].start = t;
        jobs[t].mismatches = 0;
        assert_int_equal(pthread_create(&threads[t], NULL, parse_many, &jobs[t]), 0);
    }
    for (int t = 0; t < PARSERS; t++) {
        pthread_join(threads[t], NULL);
        assert_int_equal(jobs[t].mismatches, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits_defaults),
        cmocka_unit_test(test_parse_error_per_thread),
        cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_base_event),
        cmocka_unit_test(test_full_event),
        cmocka_unit_test(test_completed_with_duration),
        cmocka_unit_test(test_alias_scenario),
        cmocka_unit_test(test_unknown_scenario),
        cmocka_unit_test(test_strict_scenarios_refuse_unknown),
        cmocka_unit_test(test_null_optional_fields_are_absent),
        cmocka_unit_test(test_attributes_reserialized),
        cmocka_unit_test(test_attribute_numbers_keep_their_value),
        cmocka_unit_test(test_length_bounds_the_message),
        cmocka_unit_test(test_max_bytes_boundary),
        cmocka_unit_test(test_id_length_in_characters),
        cmocka_unit_test(test_accepted_variants),
        cmocka_unit_test(test_nesting_depth),
        cmocka_unit_test(test_attribute_entries_and_keys),
        cmocka_unit_test(test_reason_is_valid_utf8_for_long_values),
    };
    int failed = cmocka_run_group_tests_name("event", tests, NULL, NULL);

    size_t n = CD_ARRAY_LEN(bad_cases);
    struct CMUnitTest *table = calloc(n, sizeof(*table));
    if (!table)
        return 1;
    for (size_t i = 0; i < n; i++) {
        table[i].name = bad_cases[i].name;
        table[i].test_func = test_bad_case;
        table[i].initial_state = (void *)&bad_cases[i];
    }
    failed += _cmocka_run_group_tests("event_invalid", table, n, NULL, NULL);
    free(table);
    return failed;
}
