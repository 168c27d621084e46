/*
 * fuzz_event.c -- libFuzzer target over the input side of the pipeline: event
 * parsing and validation (cd_event_parse) and the W3C Trace Context parsers
 * (cd_traceparent_parse, cd_tracestate_valid).
 *
 * The first byte of the input chooses what is fuzzed:
 *
 *   'T' + bytes                      cd_traceparent_parse on the bytes
 *   'S' + bytes                      cd_tracestate_valid on the bytes
 *   'H' + traceparent '\n' tracestate  both, as the tagger sees a header pair
 *   anything else                    the whole input is a Kafka payload
 *
 * so the seed events in corpus/event/ are plain JSON, and the trace context
 * seeds carry a one-letter prefix.
 *
 * A payload is parsed twice: with the default limits, and with strict
 * scenarios and a small max_bytes.  When a parse succeeds, what the header
 * promises about the event is checked, and the two results must agree with
 * each other.  Any broken promise ends in __builtin_trap(), which libFuzzer
 * reports as a crash with the input saved.  Every buffer taken here is given
 * back, so LeakSanitizer reports only leaks of the library.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "convdiag/event.h"
#include "convdiag/scenario.h"
#include "convdiag/timeutil.h"
#include "convdiag/tracecontext.h"
#include "convdiag/utf8.h"

/* Below the size of most seed events, so both sides of the limit are reached. */
#define SMALL_MAX_BYTES 384
/* What event.c allows for durationMs: one year of 366 days. */
#define MAX_DURATION_MS (366LL * 24 * 3600 * 1000)

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "fuzz_event: invariant violated at %s:%d: %s\n", __FILE__,     \
                    __LINE__, #cond);                                                      \
            __builtin_trap();                                                              \
        }                                                                                  \
    } while (0)

/* ---- helpers ---------------------------------------------------------------------------- */

/* An exact-size copy without a terminating NUL: a parser that reads past len is caught by
 * AddressSanitizer instead of finding a convenient NUL. */
static char *dup_exact(const void *p, size_t n)
{
    char *d = malloc(n ? n : 1);
    CHECK(d != NULL);
    if (n)
        memcpy(d, p, n);
    return d;
}

static bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

static bool all_lower_hex_not_zero(const char *s, size_t n)
{
    bool nonzero = false;
    for (size_t i = 0; i < n; i++) {
        if (!is_lower_hex(s[i]))
            return false;
        if (s[i] != '0')
            nonzero = true;
    }
    return nonzero && s[n] == '\0';
}

static bool no_control_chars(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

static size_t chars_of(const char *s) { return cd_utf8_length(s, strlen(s)); }

static bool streq_or_both_null(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

/* ---- trace context ---------------------------------------------------------------------- */

/* p[0..n) is an exact-size buffer (see dup_exact).  Spaces and tabs around the value are
 * dropped before parsing (tracecontext.c, after RFC 7230 OWS); the rest must follow the
 * header's rules. */
static bool check_traceparent(const char *p, size_t n)
{
    cd_traceparent_t tp, again;
    memset(&tp, 0xA5, sizeof(tp));
    memset(&again, 0x5A, sizeof(again));

    bool ok = cd_traceparent_parse(p, n, &tp);
    CHECK(cd_traceparent_parse(p, n, &again) == ok); /* no hidden state */
    if (!ok)
        return false;
    CHECK(memcmp(&tp, &again, sizeof(tp)) == 0);

    size_t b = 0, e = n;
    while (b < e && (p[b] == ' ' || p[b] == '\t'))
        b++;
    while (e > b && (p[e - 1] == ' ' || p[e - 1] == '\t'))
        e--;
    const char *v = p + b;
    size_t len = e - b;

    CHECK(len >= 55);
    CHECK(tp.version != 0xff);
    CHECK(tp.version != 0 || len == 55);
    CHECK(len == 55 || v[55] == '-');
    CHECK(all_lower_hex_not_zero(tp.trace_id, 32));
    CHECK(all_lower_hex_not_zero(tp.parent_id, 16));

    /* What was parsed, written back, is the version-00 prefix of the value. */
    char text[56];
    int w = snprintf(text, sizeof(text), "%02x-%s-%s-%02x", tp.version, tp.trace_id,
                     tp.parent_id, tp.flags);
    CHECK(w == 55);
    CHECK(memcmp(text, v, 55) == 0);

    /* Upper-case hex anywhere in the prefix makes it invalid. */
    char *m = dup_exact(p, n);
    for (size_t i = b; i < b + 55; i++) {
        if (m[i] >= 'a' && m[i] <= 'f') {
            m[i] = (char)(m[i] - 'a' + 'A');
            CHECK(!cd_traceparent_parse(m, n, &again));
            m[i] = p[i];
            break;
        }
    }
    /* So does version ff. */
    m[b] = 'f';
    m[b + 1] = 'f';
    CHECK(!cd_traceparent_parse(m, n, &again));
    free(m);
    return true;
}

/* p[0..n) is an exact-size buffer (see dup_exact). */
static bool check_tracestate(const char *p, size_t n)
{
    bool ok = cd_tracestate_valid(p, n);
    CHECK(cd_tracestate_valid(p, n) == ok);
    if (!ok)
        return false;

    /* Keys, values, ',' and optional white space are all printable ASCII (or tab); each
     * member has exactly one '=' (neither keys nor values may hold one): at most 32. */
    size_t members = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        CHECK(c == '\t' || (c >= 0x20 && c <= 0x7e));
        if (c == '=')
            members++;
    }
    CHECK(members <= 32);
    return true;
}

/* A NUL-terminated string from the event tree, parsed from an exact-size copy. */
static void check_traceparent_str(const char *s)
{
    size_t n = strlen(s);
    char *copy = dup_exact(s, n);
    check_traceparent(copy, n);
    free(copy);
}

static void check_tracestate_str(const char *s)
{
    size_t n = strlen(s);
    char *copy = dup_exact(s, n);
    check_tracestate(copy, n);
    free(copy);
}

/* 'H' mode: "traceparent\ntracestate", as the tagger gets them from one event. */
static void check_header_pair(const char *p, size_t n)
{
    const char *nl = memchr(p, '\n', n);
    size_t tp_len = nl ? (size_t)(nl - p) : n;
    char *tp = dup_exact(p, tp_len);
    bool tp_ok = check_traceparent(tp, tp_len);
    free(tp);
    if (nl && tp_ok) {
        size_t ts_len = n - tp_len - 1;
        char *ts = dup_exact(nl + 1, ts_len);
        check_tracestate(ts, ts_len);
        free(ts);
    }
}

/* ---- events ----------------------------------------------------------------------------- */

static int64_t ts_lo, ts_hi; /* instants whose UTC year has four digits */

static bool is_canonical_scenario(const char *name, const char *category)
{
    size_t count;
    const cd_scenario_t *all = cd_scenario_all(&count);
    for (size_t i = 0; i < count; i++)
        if (all[i].name == name)
            return strcmp(all[i].category, category) == 0;
    return false;
}

static void check_event(const cd_event_t *ev, const cd_event_limits_t *lim)
{
    CHECK(ev->root != NULL && cJSON_IsObject(ev->root));

    /* Required fields. */
    CHECK(ev->event_id && ev->event_id[0] != '\0');
    CHECK(chars_of(ev->event_id) <= lim->max_id_chars);
    CHECK(no_control_chars(ev->event_id));
    CHECK(ev->timestamp != NULL);
    CHECK(ev->organization_id && strlen(ev->organization_id) == 36);
    CHECK(ev->live_work_item_id && ev->live_work_item_id[0] != '\0');
    CHECK(chars_of(ev->live_work_item_id) <= lim->max_id_chars);
    CHECK(no_control_chars(ev->live_work_item_id));
    CHECK(ev->scenario_received && ev->scenario_received[0] != '\0');
    CHECK(no_control_chars(ev->scenario_received));
    CHECK(ev->status >= CD_EVENT_STARTED && ev->status <= CD_EVENT_FAILED);
    CHECK(cd_event_status_name(ev->status) != NULL);

    /* Scenario and category. */
    CHECK(ev->scenario != NULL && ev->category != NULL);
    const cd_scenario_t *sc = cd_scenario_lookup(ev->scenario_received);
    CHECK(ev->scenario_known == (sc != NULL));
    if (ev->scenario_known) {
        CHECK(ev->scenario == sc->name && ev->category == sc->category);
        CHECK(is_canonical_scenario(ev->scenario, ev->category));
    } else {
        CHECK(!lim->strict_scenarios);
        CHECK(ev->scenario == ev->scenario_received);
        CHECK(strcmp(ev->category, CD_CATEGORY_OTHER) == 0);
    }

    /* The timestamp: the same instant when parsed again, and when written back in UTC. */
    int64_t us;
    cd_err_t terr;
    CHECK(cd_time_parse_rfc3339(ev->timestamp, 3, &us, &terr) == CD_OK && us == ev->ts_us);
    if (ev->ts_us >= ts_lo && ev->ts_us <= ts_hi) {
        char utc[CD_TIME_UTC_MAX + 1];
        cd_time_format_utc(ev->ts_us, 6, utc, sizeof(utc));
        CHECK(cd_time_parse_rfc3339(utc, 6, &us, &terr) == CD_OK && us == ev->ts_us);
    }

    /* Optional fields. */
    if (ev->channel_type) {
        CHECK(ev->channel_type[0] != '\0' && strlen(ev->channel_type) <= 64);
        for (const char *p = ev->channel_type; *p; p++)
            CHECK((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' ||
                  *p == '-');
    }
    if (ev->participant_type) {
        static const char *const types[] = {"HumanAgent", "VirtualAgent", "Customer",
                                            "Supervisor", "System"};
        bool found = false;
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
            found = found || strcmp(ev->participant_type, types[i]) == 0;
        CHECK(found);
    }
    if (ev->user_id)
        CHECK(strlen(ev->user_id) == 36);
    if (ev->session_id)
        CHECK(ev->session_id[0] && chars_of(ev->session_id) <= lim->max_id_chars &&
              no_control_chars(ev->session_id));
    if (ev->transaction_id)
        CHECK(ev->transaction_id[0] && chars_of(ev->transaction_id) <= lim->max_id_chars &&
              no_control_chars(ev->transaction_id));
    if (ev->traceparent)
        CHECK(ev->traceparent[0] && chars_of(ev->traceparent) <= lim->max_text_chars &&
              no_control_chars(ev->traceparent));
    if (ev->tracestate)
        CHECK(ev->tracestate[0] && chars_of(ev->tracestate) <= lim->max_text_chars &&
              no_control_chars(ev->tracestate));

    CHECK(ev->duration_ms == -1 || (ev->duration_ms >= 0 && ev->duration_ms <= MAX_DURATION_MS));
    CHECK(ev->duration_ms == -1 || ev->status != CD_EVENT_STARTED);
    if (ev->failure_reason) {
        CHECK(ev->status == CD_EVENT_FAILED);
        CHECK(ev->failure_reason[0] && chars_of(ev->failure_reason) <= lim->max_text_chars);
    }

    /* attributes_json: valid JSON (it goes into a jsonb column), an object of at most
     * max_attributes scalar members, and read back it is the object received: same keys in
     * the same order, same strings, same numbers to the bit, same booleans. */
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(ev->root, "attributes");
    if (ev->attributes_json) {
        CHECK(cJSON_IsObject(attrs));
        cJSON *back = cJSON_Parse(ev->attributes_json);
        CHECK(back != NULL && cJSON_IsObject(back));
        CHECK((size_t)cJSON_GetArraySize(back) <= lim->max_attributes);
        CHECK(cJSON_GetArraySize(back) == cJSON_GetArraySize(attrs));
        const cJSON *orig = attrs->child;
        for (const cJSON *a = back->child; a; a = a->next, orig = orig->next) {
            CHECK(orig != NULL && strcmp(a->string, orig->string) == 0);
            if (cJSON_IsString(orig))
                CHECK(cJSON_IsString(a) && strcmp(a->valuestring, orig->valuestring) == 0);
            else if (cJSON_IsNumber(orig))
                CHECK(cJSON_IsNumber(a) && a->valuedouble == orig->valuedouble);
            else
                CHECK(cJSON_IsBool(orig) && cJSON_IsTrue(a) == cJSON_IsTrue(orig) &&
                      cJSON_IsFalse(a) == cJSON_IsFalse(orig));
        }
        cJSON_Delete(back);
    } else {
        CHECK(attrs == NULL || cJSON_IsNull(attrs));
    }

    /* The tagger's view of the trace context: a tracestate counts only with a valid
     * traceparent, but both parsers must cope with whatever the event carries. */
    if (ev->traceparent)
        check_traceparent_str(ev->traceparent);
    if (ev->tracestate)
        check_tracestate_str(ev->tracestate);
}

/* The strict, small-limit parse accepts exactly what the default parse accepts with a
 * known scenario and at most SMALL_MAX_BYTES bytes, and reads it the same way. */
static void check_agree(const cd_event_t *d, const cd_event_t *s)
{
    CHECK(strcmp(d->event_id, s->event_id) == 0);
    CHECK(strcmp(d->timestamp, s->timestamp) == 0 && d->ts_us == s->ts_us);
    CHECK(strcmp(d->organization_id, s->organization_id) == 0);
    CHECK(strcmp(d->live_work_item_id, s->live_work_item_id) == 0);
    CHECK(d->scenario == s->scenario && d->category == s->category);
    CHECK(d->status == s->status && d->duration_ms == s->duration_ms);
    CHECK(streq_or_both_null(d->channel_type, s->channel_type));
    CHECK(streq_or_both_null(d->participant_type, s->participant_type));
    CHECK(streq_or_both_null(d->user_id, s->user_id));
    CHECK(streq_or_both_null(d->session_id, s->session_id));
    CHECK(streq_or_both_null(d->transaction_id, s->transaction_id));
    CHECK(streq_or_both_null(d->traceparent, s->traceparent));
    CHECK(streq_or_both_null(d->tracestate, s->tracestate));
    CHECK(streq_or_both_null(d->failure_reason, s->failure_reason));
    CHECK(streq_or_both_null(d->attributes_json, s->attributes_json));
}

static void check_error(cd_status_t st, const cd_err_t *err)
{
    CHECK(st == CD_ERROR);
    CHECK(err->msg[0] != '\0');
    CHECK(memchr(err->msg, '\0', sizeof(err->msg)) != NULL);
}

static void fuzz_event(const char *buf, size_t len)
{
    cd_event_limits_t def, strict;
    cd_event_limits_init(&def);
    strict = def;
    strict.strict_scenarios = true;
    strict.max_bytes = SMALL_MAX_BYTES;

    cd_event_t ev_def, ev_strict;
    cd_err_t err;

    err.msg[0] = '\0';
    cd_status_t st_def = cd_event_parse(&ev_def, buf, len, &def, &err);
    if (st_def == CD_OK)
        check_event(&ev_def, &def);
    else
        check_error(st_def, &err);

    err.msg[0] = '\0';
    cd_status_t st_strict = cd_event_parse(&ev_strict, buf, len, &strict, &err);
    if (st_strict == CD_OK)
        check_event(&ev_strict, &strict);
    else
        check_error(st_strict, &err);

    bool expect_strict_ok = st_def == CD_OK && ev_def.scenario_known && len <= SMALL_MAX_BYTES;
    CHECK((st_strict == CD_OK) == expect_strict_ok);
    if (st_strict == CD_OK)
        check_agree(&ev_def, &ev_strict);

    if (st_strict == CD_OK)
        cd_event_fini(&ev_strict);
    if (st_def == CD_OK) {
        cd_event_fini(&ev_def);
        CHECK(ev_def.root == NULL && ev_def.attributes_json == NULL);
    }
}

/* ---- entry points ----------------------------------------------------------------------- */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    cd_err_t err;
    if (cd_time_parse_rfc3339("0000-01-01T00:00:00.000Z", 3, &ts_lo, &err) != CD_OK ||
        cd_time_parse_rfc3339("9999-12-31T23:59:59.999999Z", 3, &ts_hi, &err) != CD_OK) {
        fprintf(stderr, "fuzz_event: cannot compute the timestamp bounds: %s\n", err.msg);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        fuzz_event((const char *)data, 0);
        return 0;
    }

    const char *rest = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0]) {
    case 'T':
        check_traceparent(rest, n);
        break;
    case 'S':
        check_tracestate(rest, n);
        break;
    case 'H':
        check_header_pair(rest, n);
        break;
    default:
        fuzz_event((const char *)data, size);
        break;
    }
    return 0;
}
