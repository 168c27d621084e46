/*
 * fuzz_export.c -- libFuzzer target over everything the export path reads
 * from outside: the connection string (cd_export_conn_parse and the key
 * masking), the ingestion service's answer (cd_export_outcomes_from_response),
 * its Retry-After header (cd_export_retry_after_parse), the bearer token
 * (cd_export_token_jwt_exp), and the attributes an envelope carries
 * (cd_export_envelope_write).
 *
 * The first byte of the input chooses what is fuzzed:
 *
 *   'C' + bytes                      the bytes as a connection string
 *   'R' + status + count + body      a response: status is two bytes, big-endian;
 *                                    count is one byte, the request's items being
 *                                    count % 65 (0..64) and the fallback message
 *                                    NULL when its high bit is set
 *   'A' + bytes                      a Retry-After value
 *   'J' + bytes                      a bearer token
 *   'E' + bytes                      attributes_json of an otherwise fixed item
 *   anything else                    nothing
 *
 * Text reaches these functions as C strings, so a text input ends at its
 * first NUL; the response body is length-delimited and kept whole.
 *
 * Each call is checked against what export.h, export_policy.h and
 * export_token.h promise:
 *
 *   C  a parsed string has a GUID key (the one given), an http(s) endpoint
 *      ending in one '/' and the track URL after it; an error does not change
 *      when the InstrumentationKey value does, so never quotes it; masking
 *      leaves no key behind
 *   R  every item's status and fate follow the policy table and the errors
 *      entries that name it, a 200/206 only on the word of a body whose counts
 *      agree; the pause follows the codes and the messages; the messages are
 *      copies, freed by clear
 *   A  a delay is >= 0 and counts from now; delta-seconds give at most an
 *      hour, and the back-off never waits longer than an hour whatever the date
 *   J  -1 or an exp in 1..9999-12-31T23:59:59Z
 *   E  a flat object always goes out: valid JSON (and UTF-8, from UTF-8) under
 *      64 KiB, standard properties intact, names unique and within limits,
 *      every attribute or the truncation marker, the same bytes whatever the
 *      attributes' order; on failure the buffer is as it was
 *
 * Any broken promise ends in __builtin_trap(), which libFuzzer reports as a
 * crash with the input saved.  Every buffer taken here is given back, so
 * LeakSanitizer reports only leaks of the library.
 */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "convdiag/buf.h"
#include "convdiag/export.h"
#include "convdiag/export_policy.h"
#include "convdiag/export_token.h"
#include "convdiag/json.h"
#include "convdiag/utf8.h"

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "fuzz_export: invariant violated at %s:%d: %s\n", __FILE__,    \
                    __LINE__, #cond);                                                      \
            __builtin_trap();                                                              \
        }                                                                                  \
    } while (0)

/* The shortest piece of an instrumentation key an error message may not quote. */
#define LEAK_WINDOW 8
/* A fixed "now" for Retry-After dates: 2026-11-20T08:00:00Z. */
#define NOW_US (1795161600LL * 1000000)
/* What the back-off and delta-seconds never exceed: one hour. */
#define RETRY_AFTER_MAX_MS (3600LL * 1000)
/* A JWT "exp" past 9999-12-31T23:59:59Z counts as none (token.c). */
#define EXP_MAX 253402300799LL
/* The SDKs' limits on property names and values, in UTF-16 code units (envelope.c). */
#define MAX_PROPERTY_KEY 150
#define MAX_PROPERTY_VALUE 8192

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

/* The C string the bytes make: up to the first NUL, in a buffer of exactly its size. */
static char *dup_cstr(const char *p, size_t n)
{
    const char *nul = memchr(p, '\0', n);
    size_t len = nul ? (size_t)(nul - p) : n;
    char *d = malloc(len + 1);
    CHECK(d != NULL);
    memcpy(d, p, len);
    d[len] = '\0';
    return d;
}

static bool streq_or_both_null(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

static bool is_guid(const char *s)
{
    if (strlen(s) != CD_EXPORT_IKEY_LEN)
        return false;
    for (size_t i = 0; i < CD_EXPORT_IKEY_LEN; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !is_hex(s[i]))
            return false;
    }
    return true;
}

/* UTF-16 code units of valid UTF-8: one per character, two beyond U+FFFF. */
static size_t utf16_units(const char *s)
{
    size_t units = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p & 0xC0) != 0x80)
            units++;
        if (*p >= 0xF0)
            units++;
    }
    return units;
}

/* ---- connection string ------------------------------------------------------------------ */

/* The white space connection_string.c trims around keys and values. */
static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

typedef struct span {
    size_t off, len;
} span_t;

/* Where s gives InstrumentationKey values (after the segment's first '=', trimmed), by the
 * rules of export.h; at most max of them. */
static size_t ikey_values(const char *s, span_t *out, size_t max)
{
    static const char name[] = "InstrumentationKey";
    size_t found = 0, pos = 0, n = strlen(s);

    while (pos < n && found < max) {
        const char *semi = memchr(s + pos, ';', n - pos);
        size_t end = semi ? (size_t)(semi - s) : n;
        const char *eq = memchr(s + pos, '=', end - pos);
        if (eq) {
            size_t kb = pos, ke = (size_t)(eq - s), vb = ke + 1, ve = end;
            while (kb < ke && is_space(s[kb]))
                kb++;
            while (ke > kb && is_space(s[ke - 1]))
                ke--;
            while (vb < ve && is_space(s[vb]))
                vb++;
            while (ve > vb && is_space(s[ve - 1]))
                ve--;
            if (ke - kb == sizeof(name) - 1 && strncasecmp(s + kb, name, ke - kb) == 0)
                out[found++] = (span_t){vb, ve - vb};
        }
        pos = end + 1;
    }
    return found;
}

/* Another byte of the same kind for the parser: hex stays hex, '-' and the separators stay
 * as they are, anything else becomes a letter that is not hex.  A value so changed is a
 * GUID exactly when the original is, and differs from it in every other byte. */
static char other_byte(char c)
{
    if (c >= '0' && c <= '8')
        return (char)(c + 1);
    if (c == '9')
        return '0';
    if ((c >= 'a' && c <= 'e') || (c >= 'A' && c <= 'E'))
        return (char)(c + 1);
    if (c == 'f' || c == 'F')
        return (char)(c - 5);
    if (c == '-' || c == '=' || c == ';' || is_space(c))
        return c;
    return c == 'x' ? 'y' : 'x';
}

/* Whether key (with skip_dashes, as if it had none) occurs in text, in either case. */
static bool occurs(const char *text, const char *key, bool skip_dashes)
{
    size_t klen = 0;
    for (const char *k = key; *k; k++)
        klen += !(skip_dashes && *k == '-');
    if (klen == 0)
        return false;
    for (const char *t = text; *t; t++) {
        const char *p = t, *k = key;
        for (; *k; k++) {
            if (skip_dashes && *k == '-')
                continue;
            if (!*p || lower(*p) != lower(*k))
                break;
            p++;
        }
        if (!*k)
            return true;
    }
    return false;
}

/* cd_export_mask_ikey_in on a copy of text: it finds the key where there is one, and leaves
 * none behind when the key is like a real one: no '*', which masked forms are made of, and
 * more than the 8 characters a masked form keeps even without its dashes. */
static void check_mask_in(const char *text, const char *key, bool must_find)
{
    size_t len = strlen(text), bare = 0;
    char *m = dup_cstr(text, len);
    bool had = key[0] && (occurs(text, key, false) || occurs(text, key, true));
    for (const char *k = key; *k; k++)
        bare += *k != '-';

    size_t count = cd_export_mask_ikey_in(m, key);
    CHECK(strlen(m) <= len);
    CHECK(!must_find || count > 0);
    CHECK((count > 0) == had);
    if (count == 0)
        CHECK(strcmp(m, text) == 0);
    if (!strchr(key, '*') && bare > 8)
        CHECK(!occurs(m, key, false) && !occurs(m, key, true));
    free(m);
}

/* cd_export_mask_ikey with room for the whole masked key and with less. */
static void check_mask(const char *key, size_t small)
{
    char want[CD_EXPORT_MASKED_SIZE], buf[CD_EXPORT_MASKED_SIZE + 1];
    size_t len = strlen(key);

    if (len > 16)
        snprintf(want, sizeof(want), "%.8s****", key);
    else
        snprintf(want, sizeof(want), "%.*s", (int)(len < 4 ? len : 4), "****");

    memset(buf, '#', sizeof(buf));
    CHECK(cd_export_mask_ikey(key, buf, CD_EXPORT_MASKED_SIZE) == buf);
    CHECK(strcmp(buf, want) == 0);

    small %= CD_EXPORT_MASKED_SIZE;
    memset(buf, '#', sizeof(buf));
    CHECK(cd_export_mask_ikey(key, buf, small) == buf);
    if (small == 0) {
        CHECK(buf[0] == '#');
    } else {
        size_t n = strlen(want) < small - 1 ? strlen(want) : small - 1;
        CHECK(strlen(buf) == n && memcmp(buf, want, n) == 0);
    }
    for (size_t i = small; i < sizeof(buf); i++)
        CHECK(buf[i] == '#'); /* nothing written past size */
}

static void check_conn_ok(const cd_export_conn_t *c, const char *s, const span_t *iks,
                          size_t nik)
{
    /* The key: a GUID, the one the string gives, as given. */
    CHECK(is_guid(c->ikey));
    CHECK(nik == 1 && iks[0].len == CD_EXPORT_IKEY_LEN);
    CHECK(memcmp(c->ikey, s + iks[0].off, CD_EXPORT_IKEY_LEN) == 0);

    /* The endpoint: http or https in lower case, a host, one '/' at the end. */
    size_t elen = strlen(c->endpoint);
    size_t scheme = strncmp(c->endpoint, "https://", 8) == 0  ? 8
                    : strncmp(c->endpoint, "http://", 7) == 0 ? 7
                                                               : 0;
    CHECK(scheme > 0);
    CHECK(elen > scheme + 1 && c->endpoint[scheme] != '/');
    CHECK(c->endpoint[elen - 1] == '/' && c->endpoint[elen - 2] != '/');
    for (size_t i = scheme; i < elen; i++) {
        unsigned char ch = (unsigned char)c->endpoint[i];
        CHECK(ch > 0x20 && ch != 0x7f && ch != '?' && ch != '#');
    }

    /* The track URL: the endpoint and the path. */
    CHECK(strlen(c->track_url) == elen + strlen(CD_EXPORT_TRACK_PATH));
    CHECK(memcmp(c->track_url, c->endpoint, elen) == 0);
    CHECK(strcmp(c->track_url + elen, CD_EXPORT_TRACK_PATH) == 0);
    CHECK(strlen(c->aad_audience) <= CD_EXPORT_CONN_MAX);

    /* Masked, the key keeps its first eight characters; masked in the string it came
     * from, it is gone. */
    check_mask(c->ikey, (size_t)(unsigned char)s[0]);
    check_mask_in(s, c->ikey, true);
}

static bool all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

/* Over 12 kB each: kept out of the stack frames. */
static cd_export_conn_t conn_a, conn_b;

static void fuzz_conn(const char *p, size_t n)
{
    char *s = dup_cstr(p, n);
    span_t iks[16];
    size_t nik = ikey_values(s, iks, CD_ARRAY_LEN(iks));

    /* The same string with every InstrumentationKey value changed byte for byte into
     * another of the same kind: whatever the parse says must not change with it, except
     * for the key itself (errors never quote a value). */
    char *m = dup_cstr(s, strlen(s));
    for (size_t k = 0; k < nik; k++)
        for (size_t i = iks[k].off; i < iks[k].off + iks[k].len; i++)
            m[i] = other_byte(s[i]);

    cd_err_t err_a, err_b;
    memset(&conn_a, 0x5A, sizeof(conn_a));
    memset(&conn_b, 0xA5, sizeof(conn_b));
    err_a.msg[0] = err_b.msg[0] = '\0';
    cd_status_t st_a = cd_export_conn_parse(&conn_a, s, &err_a);
    cd_status_t st_b = cd_export_conn_parse(&conn_b, m, &err_b);
    CHECK(st_a == st_b);

    if (st_a == CD_OK) {
        check_conn_ok(&conn_a, s, iks, nik);
        CHECK(strcmp(conn_a.endpoint, conn_b.endpoint) == 0);
        CHECK(strcmp(conn_a.track_url, conn_b.track_url) == 0);
        CHECK(strcmp(conn_a.aad_audience, conn_b.aad_audience) == 0);
        CHECK(memcmp(conn_b.ikey, m + iks[0].off, CD_EXPORT_IKEY_LEN) == 0);
    } else {
        CHECK(st_a == CD_ERROR);
        CHECK(err_a.msg[0] != '\0' && memchr(err_a.msg, '\0', sizeof(err_a.msg)));
        CHECK(all_zero(&conn_a, sizeof(conn_a))); /* cleared: no half-parsed key */
        /* No piece of the key is quoted: a window of it that the message holds is a quote
         * only when the changed window is in the other message too, otherwise it is the
         * message's own wording. */
        for (size_t k = 0; k < nik; k++)
            for (size_t i = iks[k].off; i + LEAK_WINDOW <= iks[k].off + iks[k].len; i++)
                CHECK(!memmem(err_a.msg, strlen(err_a.msg), s + i, LEAK_WINDOW) ||
                      !memmem(err_b.msg, strlen(err_b.msg), m + i, LEAK_WINDOW));
        CHECK(strcmp(err_a.msg, err_b.msg) == 0);
    }

    /* Masking whatever was given as a key, valid or not. */
    check_mask(s, n);
    if (nik > 0 && iks[0].len <= 256) {
        char *key = dup_cstr(s + iks[0].off, iks[0].len);
        check_mask(key, iks[0].len);
        check_mask_in(s, key, false);
        free(key);
    }
    free(m);
    free(s);
}

/* ---- response --------------------------------------------------------------------------- */

/* export_policy.h's table, written out again. */
static cd_export_fate_t spec_fate_of_response(int status)
{
    if (status == 200 || status == 206)
        return CD_EXPORT_ACCEPTED;
    if (status == 400 || status == 402)
        return CD_EXPORT_FINAL;
    return CD_EXPORT_RESEND;
}

static cd_export_fate_t spec_fate_of_item(int status)
{
    switch (status) {
    case 200:
    case 206:
        return CD_EXPORT_ACCEPTED;
    case 401:
    case 403:
    case 408:
    case 429:
    case 439:
    case 500:
    case 502:
    case 503:
    case 504:
        return CD_EXPORT_RESEND;
    default:
        return CD_EXPORT_FINAL;
    }
}

typedef struct expected {
    bool named;          /* an errors entry gave this item its own outcome */
    int status;
    cd_export_fate_t fate;
    const char *message; /* borrowed from the parsed body, or the fallback */
} expected_t;

/* export_policy.h's pauses: what a status (with its message) says of the sender. */
static cd_export_pause_t spec_pause(int status, const char *msg)
{
    if (status == 400 && msg &&
        (strcasestr(msg, "invalid instrumentation key") ||
         strcasestr(msg, "authentication not supported")))
        return CD_EXPORT_BAD_KEY;
    if (status == 401 || status == 403)
        return CD_EXPORT_BAD_CREDENTIALS;
    if (status == 429 || status == 439)
        return CD_EXPORT_THROTTLED;
    return CD_EXPORT_GO;
}

static void fuzz_response(const uint8_t *d, size_t n)
{
    if (n < 3)
        return;
    int status = d[0] << 8 | d[1];
    size_t count = d[2] % 65;
    char fallback_text[32];
    snprintf(fallback_text, sizeof(fallback_text), "HTTP %d", status);
    const char *fallback = d[2] & 0x80 ? NULL : fallback_text;
    size_t body_len = n - 3;
    char *body = dup_exact(d + 3, body_len);

    CHECK(cd_export_fate_of_response(status) == spec_fate_of_response(status));

    /* What the status and the body say of each item: the last entry naming it wins. */
    expected_t want[64];
    bool success = status == 200 || status == 206;
    cJSON *root = body_len ? cJSON_ParseWithLength(body, body_len) : NULL;
    const cJSON *errors = cJSON_GetObjectItemCaseSensitive(root, "errors");
    const cJSON *received = cJSON_GetObjectItemCaseSensitive(root, "itemsReceived");
    const cJSON *accepted = cJSON_GetObjectItemCaseSensitive(root, "itemsAccepted");
    bool trusted = !success || (cJSON_IsObject(root) && cJSON_IsArray(errors) &&
                                cJSON_IsNumber(received) && cJSON_IsNumber(accepted) &&
                                received->valuedouble == (double)count);
    cd_export_fate_t base = success && !trusted ? CD_EXPORT_RESEND : spec_fate_of_response(status);
    cd_export_pause_t pause = spec_pause(status, NULL);
    int applied = 0;
    for (size_t i = 0; i < count; i++)
        want[i] = (expected_t){false, status, base, base == CD_EXPORT_ACCEPTED ? NULL : fallback};
    const cJSON *e;
    if (!trusted || !cJSON_IsArray(errors))
        errors = NULL;
    cJSON_ArrayForEach(e, errors) {
        const cJSON *index = cJSON_GetObjectItemCaseSensitive(e, "index");
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "statusCode");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
        if (!cJSON_IsNumber(index) || !cJSON_IsNumber(code))
            continue;
        double x = index->valuedouble;
        if (!(x >= 0 && x < (double)count) || x != (double)(size_t)x)
            continue;
        const char *m = cJSON_IsString(msg) ? msg->valuestring : fallback;
        want[(size_t)x] = (expected_t){true, code->valueint, spec_fate_of_item(code->valueint), m};
        cd_export_pause_t p = spec_pause(code->valueint, m);
        pause = p > pause ? p : pause;
        applied++;
    }
    bool distrusted = !trusted;
    if (success && trusted) {
        size_t unnamed = 0;
        for (size_t i = 0; i < count; i++)
            unnamed += !want[i].named;
        if (accepted->valuedouble < (double)unnamed) {
            distrusted = true;
            for (size_t i = 0; i < count; i++)
                if (!want[i].named)
                    want[i] = (expected_t){false, status, CD_EXPORT_RESEND, fallback};
        }
    }
    if (pause == CD_EXPORT_BAD_KEY || pause == CD_EXPORT_BAD_CREDENTIALS)
        for (size_t i = 0; i < count; i++)
            if (want[i].fate == CD_EXPORT_FINAL)
                want[i].fate = CD_EXPORT_RESEND;

    cd_export_outcome_t *out = malloc((count ? count : 1) * sizeof(*out));
    cd_export_answer_t answer;
    CHECK(out != NULL);
    memset(out, 0xA5, (count ? count : 1) * sizeof(*out)); /* filled, not read */
    CHECK(cd_export_outcomes_from_response(out, count, status, body, body_len, fallback,
                                           &answer) == 0);
    CHECK(answer.applied == applied);
    CHECK(answer.pause == pause);
    CHECK((answer.distrust != NULL) == distrusted);

    for (size_t i = 0; i < count; i++) {
        const cd_export_outcome_t *o = &out[i];
        CHECK(o->status == want[i].status);
        CHECK(o->fate == want[i].fate);
        if (want[i].named)
            CHECK(cd_export_fate_of_item(o->status) == spec_fate_of_item(o->status));
        CHECK(streq_or_both_null(o->message, want[i].message));
        CHECK(!o->message || (o->message != fallback && o->message != fallback_text));
    }
    cd_export_outcomes_clear(out, count);
    for (size_t i = 0; i < count; i++)
        CHECK(out[i].message == NULL);

    cJSON_Delete(root);
    free(out);
    free(body);
}

/* ---- Retry-After ------------------------------------------------------------------------ */

/* Delta-seconds: optional SP/HT, digits, optional white space and line end.  Returns
 * whether v is that form, with the number (saturated) in *secs. */
static bool delta_seconds(const char *v, unsigned long long *secs)
{
    while (*v == ' ' || *v == '\t')
        v++;
    if (!(*v >= '0' && *v <= '9'))
        return false;
    *secs = 0;
    for (; *v >= '0' && *v <= '9'; v++)
        *secs = *secs > 1000000000ULL ? *secs : *secs * 10 + (unsigned)(*v - '0');
    while (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n')
        v++;
    return *v == '\0';
}

static void fuzz_retry_after(const char *p, size_t n)
{
    char *v = dup_cstr(p, n);
    int64_t ms = -1, later = -1;
    bool ok = cd_export_retry_after_parse(v, NOW_US, &ms);
    unsigned long long secs;
    bool seconds = delta_seconds(v, &secs);

    /* Numbers start with a digit; whatever does is read as one or refused. */
    if (seconds)
        CHECK(ok);
    if (!ok) {
        free(v);
        return;
    }
    CHECK(ms >= 0);
    /* A delay from now: a second later it is a second shorter (a date) or the same. */
    CHECK(cd_export_retry_after_parse(v, NOW_US + 1000000, &later));
    if (seconds) {
        CHECK(ms <= RETRY_AFTER_MAX_MS);
        CHECK(ms == (secs >= 3600 ? RETRY_AFTER_MAX_MS : (int64_t)secs * 1000));
        CHECK(later == ms);
    } else {
        CHECK(later == (ms > 1000 ? ms - 1000 : 0));
    }

    /* A date is read as is (export_policy.h); what it can make a worker wait is the
     * back-off's, never more than an hour and never less than asked, up to that. */
    cd_export_backoff_t b = {.min_ms = 1000, .max_ms = 60000};
    for (int i = 0; i < 3; i++) {
        int64_t wait = cd_export_backoff_next(&b, ms, (uint32_t)ms * 2654435761u + (uint32_t)i);
        CHECK(wait >= 0 && wait <= RETRY_AFTER_MAX_MS);
        CHECK(wait >= (ms < RETRY_AFTER_MAX_MS ? ms : RETRY_AFTER_MAX_MS));
    }
    free(v);
}

/* ---- bearer token ----------------------------------------------------------------------- */

static void fuzz_jwt(const char *p, size_t n)
{
    char *t = dup_cstr(p, n);
    int64_t exp = cd_export_token_jwt_exp(t);
    CHECK(exp == -1 || (exp > 0 && exp <= EXP_MAX));
    CHECK(cd_export_token_jwt_exp(t) == exp);
    /* Two dots at least, or it is not a JWT. */
    const char *dot = strchr(t, '.');
    if (!dot || !strchr(dot + 1, '.'))
        CHECK(exp == -1);
    free(t);
}

/* ---- envelope --------------------------------------------------------------------------- */

#define IKEY "1B2C3D4E-5F60-4a7b-8c9d-0e1f2a3b4c5d"
#define ORG "62206a64-7414-46f3-b0b7-963a1ee4ff66"
#define LWI "c4a2e2f0-8c1b-4b8e-9d43-6b0f7c5e2a19"
#define PREFIX "{\"earlier\":\"envelope\"}\n"

/* The standard properties of the fixed item, with their values; an attribute may take
 * none of these names, and they must come out as the item has them. */
static const char *const standard[][2] = {
    {"organizationId", ORG},
    {"LiveWorkItemID", LWI},
    {"ChannelType", "livechat"},
    {"Duration", "5230"},
    {"ParticipantType", "HumanAgent"},
    {"Category", "Routing"},
    {"powerplatform.analytics.scenario", "ConversationDiagnosticsScenario"},
    {"powerplatform.analytics.subscenario", "RouteToQueue"},
    {"powerplatform.analytics.resource.id", LWI},
    {"powerplatform.analytics.resource.organization.id", ORG},
    {"omnichannel.channel.type", "livechat"},
    {"failureReason", "no queue matched the routing rules"},
    {"convdiag.eventId", "e-fuzz"},
};

static int by_string(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Whether attributes_json is something the envelope takes: none at all, or a flat object. */
static bool exportable(const char *json, size_t *nattrs)
{
    *nattrs = 0;
    if (!json[0])
        return true;
    cJSON *root = cJSON_ParseWithOpts(json, NULL, true);
    bool ok = cJSON_IsObject(root);
    for (const cJSON *a = ok ? root->child : NULL; a; a = a->next, ++*nattrs)
        ok = ok && (cJSON_IsString(a) || cJSON_IsNumber(a) || cJSON_IsBool(a));
    cJSON_Delete(root);
    return ok;
}

static void check_envelope(const char *text, size_t len, const char *attrs, size_t nattrs)
{
    CHECK(len <= CD_EXPORT_ITEM_MAX_BYTES - 1); /* with its newline, at most the limit */
    CHECK(strlen(text) == len);
    /* The item's strings are UTF-8 (export.h: PostgreSQL text); only then do the output's
     * encoding and its limits in UTF-16 code units mean anything. */
    bool utf8 = cd_utf8_valid(attrs, strlen(attrs), NULL);
    if (utf8)
        CHECK(cd_utf8_valid(text, len, NULL));

    const char *end = NULL;
    cJSON *env = cJSON_ParseWithOpts(text, &end, true);
    CHECK(cJSON_IsObject(env));
    const cJSON *ikey = cJSON_GetObjectItemCaseSensitive(env, "iKey");
    CHECK(cJSON_IsString(ikey) && strcmp(ikey->valuestring, IKEY) == 0);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(env, "data");
    const cJSON *base = cJSON_GetObjectItemCaseSensitive(data, "baseData");
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(base, "properties");
    CHECK(cJSON_IsObject(props));

    /* Standard properties, as the item has them: no attribute passes for or hides one. */
    for (size_t i = 0; i < CD_ARRAY_LEN(standard); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(props, standard[i][0]);
        CHECK(cJSON_IsString(v) && strcmp(v->valuestring, standard[i][1]) == 0);
    }

    /* Every property a string within the limits; names unique. */
    size_t nprops = (size_t)cJSON_GetArraySize(props);
    const char **names = malloc((nprops + 1) * sizeof(*names));
    CHECK(names != NULL);
    size_t k = 0;
    for (const cJSON *v = props->child; v; v = v->next) {
        CHECK(cJSON_IsString(v));
        CHECK(!utf8 || utf16_units(v->string) <= MAX_PROPERTY_KEY);
        CHECK(!utf8 || utf16_units(v->valuestring) <= MAX_PROPERTY_VALUE);
        names[k++] = v->string;
    }
    CHECK(k == nprops);
    qsort(names, nprops, sizeof(*names), by_string);
    for (size_t i = 1; i < nprops; i++)
        CHECK(strcmp(names[i - 1], names[i]) != 0);
    free(names);

    /* Every attribute is there, or the envelope says that some were left out. */
    const cJSON *truncated = cJSON_GetObjectItemCaseSensitive(props, "convdiag.truncated");
    size_t kept = nprops - CD_ARRAY_LEN(standard) - (truncated ? 1 : 0);
    CHECK(nprops >= CD_ARRAY_LEN(standard) + (truncated ? 1 : 0));
    if (truncated) {
        CHECK(strcmp(truncated->valuestring, "attributes") == 0);
        CHECK(kept < nattrs);
    } else {
        CHECK(kept == nattrs);
    }
    cJSON_Delete(env);
}

/*
 * The same attributes written in the opposite order, or NULL when that cannot be had
 * faithfully (fewer than two, or a name given twice, which jsonb never holds and whose
 * order among equals nothing promises).  Numbers in their shortest form read back as the
 * same double, so every value is the same to the envelope.
 */
static char *reversed(const char *json, size_t nattrs)
{
    if (nattrs < 2)
        return NULL;
    cJSON *root = cJSON_ParseWithOpts(json, NULL, true);
    const cJSON **members = malloc(nattrs * sizeof(*members));
    CHECK(root != NULL && members != NULL);
    size_t k = 0;
    for (const cJSON *a = root->child; a; a = a->next)
        members[k++] = a;
    CHECK(k == nattrs);

    const char **names = malloc(nattrs * sizeof(*names));
    CHECK(names != NULL);
    for (size_t i = 0; i < nattrs; i++)
        names[i] = members[i]->string;
    qsort(names, nattrs, sizeof(*names), by_string);
    bool unique = true;
    for (size_t i = 1; i < nattrs; i++)
        unique = unique && strcmp(names[i - 1], names[i]) != 0;
    free(names);

    char *text = NULL;
    if (unique) {
        cd_buf_t b;
        cd_buf_init(&b);
        cd_buf_putc(&b, '{');
        for (size_t i = nattrs; i-- > 0;) {
            const cJSON *a = members[i];
            cd_json_put_string(&b, a->string);
            cd_buf_putc(&b, ':');
            if (cJSON_IsString(a))
                cd_json_put_string(&b, a->valuestring);
            else if (cJSON_IsNumber(a) && isinf(a->valuedouble))
                cd_buf_puts(&b, a->valuedouble > 0 ? "1e999" : "-1e999"); /* not null */
            else if (cJSON_IsNumber(a))
                cd_json_put_number(&b, a->valuedouble);
            else
                cd_buf_puts(&b, cJSON_IsTrue(a) ? "true" : "false");
            cd_buf_putc(&b, i ? ',' : '}');
        }
        CHECK(!b.oom);
        text = strdup(b.data);
        CHECK(text != NULL);
        cd_buf_fini(&b);
    }
    free(members);
    cJSON_Delete(root);
    return text;
}

static void fuzz_envelope(const char *p, size_t n)
{
    char *attrs = dup_cstr(p, n);
    const cd_export_config_t cfg = {
        .ikey = IKEY,
        .cloud_role = "convdiag",
        .cloud_role_instance = "host-1",
        .sdk_version = CD_EXPORT_SDK_VERSION,
    };
    /* A Failed event with a duration: every optional standard property is present. */
    const cd_export_item_t item = {
        .event_id = "e-fuzz",
        .time_us = NOW_US + 123456,
        .organization_id = ORG,
        .live_work_item_id = LWI,
        .scenario = "RouteToQueue",
        .category = "Routing",
        .status = CD_EVENT_FAILED,
        .channel_type = "livechat",
        .participant_type = "HumanAgent",
        .user_id = "9f1c1a7e-2b6d-4f3a-8e5c-7d0b1a2c3e4f",
        .session_id = "s-1",
        .operation_id = "4bf92f3577b34da6a3ce929d0e0e4736",
        .duration_ms = 5230,
        .failure_reason = "no queue matched the routing rules",
        .attributes_json = attrs,
    };

    cd_buf_t out;
    cd_buf_init(&out);
    cd_buf_puts(&out, PREFIX);
    size_t before = out.len;
    cd_err_t err;
    err.msg[0] = '\0';

    size_t nattrs;
    bool takes = exportable(attrs, &nattrs);
    cd_status_t st = cd_export_envelope_write(&out, &cfg, &item, &err);
    CHECK(!out.oom);
    CHECK(out.len >= before && memcmp(out.data, PREFIX, before) == 0);
    /* The fixed item is far below the limit: a flat object always goes out. */
    CHECK((st == CD_OK) == takes);
    if (st == CD_OK) {
        check_envelope(out.data + before, out.len - before, attrs, nattrs);

        /* Whatever their order, the same attributes give the same envelope, byte for
         * byte: `convdiag check` reads them as sent, the exporter as jsonb keeps them. */
        char *rev = reversed(attrs, nattrs);
        if (rev) {
            cd_export_item_t again = item;
            again.attributes_json = rev;
            cd_buf_t out2;
            cd_buf_init(&out2);
            CHECK(cd_export_envelope_write(&out2, &cfg, &again, &err) == CD_OK);
            CHECK(out2.len == out.len - before);
            CHECK(memcmp(out2.data, out.data + before, out2.len) == 0);
            cd_buf_fini(&out2);
            free(rev);
        }
    } else {
        CHECK(st == CD_ERROR);
        CHECK(err.msg[0] != '\0' && memchr(err.msg, '\0', sizeof(err.msg)));
        CHECK(out.len == before && out.data[before] == '\0'); /* as it was */
    }
    cd_buf_fini(&out);
    free(attrs);
}

/* ---- entry point ------------------------------------------------------------------------ */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *rest = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0]) {
    case 'C':
        fuzz_conn(rest, n);
        break;
    case 'R':
        fuzz_response(data + 1, n);
        break;
    case 'A':
        fuzz_retry_after(rest, n);
        break;
    case 'J':
        fuzz_jwt(rest, n);
        break;
    case 'E':
        fuzz_envelope(rest, n);
        break;
    default:
        break;
    }
    return 0;
}
