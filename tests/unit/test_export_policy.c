/*
 * test_export_policy.c -- what the exporter does with each answer of the
 * ingestion service: the fate of every status the brief names, per-item
 * outcomes read from the service's own bodies (and from bodies that are not
 * the service's), Retry-After in every form RFC 9110 allows, and the
 * back-off with its jitter.
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
#include <time.h>

#include "convdiag/common.h"
#include "convdiag/export_policy.h"

#define ACCEPTED CD_EXPORT_ACCEPTED
#define RESEND CD_EXPORT_RESEND
#define FINAL CD_EXPORT_FINAL

/* ---- fates ------------------------------------------------------------------------------ */

typedef struct fate_case {
    int status;
    cd_export_fate_t response; /* the whole request answered with it */
    cd_export_fate_t item;     /* one item of a 206 (or 200) carrying it */
} fate_case_t;

static const fate_case_t fates[] = {
    {200, ACCEPTED, ACCEPTED},
    {206, ACCEPTED, ACCEPTED}, /* per item: sampled away, which counts as taken */
    {400, FINAL, FINAL},
    {402, FINAL, FINAL}, /* daily cap: the brief says permanent */
    {408, RESEND, RESEND},
    {429, RESEND, RESEND},
    {439, RESEND, RESEND},
    {500, RESEND, RESEND},
    {502, RESEND, RESEND},
    {503, RESEND, RESEND},
    {504, RESEND, RESEND},
    /* Credentials, not data: the token is fetched anew and the items wait. */
    {401, RESEND, RESEND},
    {403, RESEND, RESEND},
    /* A wrong endpoint must not lose data; an item the service names as not
     * found or too large will never be taken. */
    {404, RESEND, FINAL},
    {413, RESEND, FINAL},
    /* No answer at all. */
    {0, RESEND, FINAL},
};

static const char *fate_name(cd_export_fate_t f)
{
    return f == ACCEPTED ? "accepted" : f == RESEND ? "resend" : "final";
}

static void test_fates(void **state)
{
    (void)state;
    for (size_t i = 0; i < CD_ARRAY_LEN(fates); i++) {
        cd_export_fate_t r = cd_export_fate_of_response(fates[i].status);
        cd_export_fate_t it = cd_export_fate_of_item(fates[i].status);
        if (r != fates[i].response || (fates[i].status && it != fates[i].item))
            fail_msg("status %d: response %s (expected %s), item %s (expected %s)",
                     fates[i].status, fate_name(r), fate_name(fates[i].response), fate_name(it),
                     fate_name(fates[i].item));
    }
}

/* ---- outcomes from a response ----------------------------------------------------------- */

#define FALLBACK "HTTP %d from the service"

static void expect_outcome(const cd_export_outcome_t *o, size_t i, cd_export_fate_t fate,
                           int status, const char *message)
{
    if (o[i].fate != fate || o[i].status != status)
        fail_msg("item %zu: %s %d, expected %s %d", i, fate_name(o[i].fate), o[i].status,
                 fate_name(fate), status);
    if (!message) {
        assert_null(o[i].message);
    } else {
        assert_non_null(o[i].message);
        assert_string_equal(o[i].message, message);
    }
}

/* The body in a heap buffer of its exact length (no NUL), so a read past it is caught. */
static char *exact(const char *text, size_t *len)
{
    *len = strlen(text);
    char *p = malloc(*len ? *len : 1);
    assert_non_null(p);
    memcpy(p, text, *len);
    return p;
}

/* The last answer outcomes() read, as a whole. */
static cd_export_answer_t last;

/* Reads a response into o; returns the errors entries applied. */
static int outcomes(cd_export_outcome_t *o, size_t count, int status, const char *body,
                    const char *fallback)
{
    size_t len = 0;
    char *copy = body ? exact(body, &len) : NULL;
    /* Garbage first: every outcome must be set, whatever it held. */
    memset(o, 0x5a, count * sizeof(*o));
    memset(&last, 0x5a, sizeof(last));
    assert_int_equal(cd_export_outcomes_from_response(o, count, status, copy, len, fallback,
                                                      &last),
                     0);
    /* The messages are the outcomes' own, not pointers into the body. */
    if (copy)
        memset(copy, 'x', len);
    free(copy);
    return last.applied;
}

static void expect_answer(cd_export_pause_t pause, bool distrusted)
{
    if (last.pause != pause || (last.distrust != NULL) != distrusted)
        fail_msg("answer: pause '%s', distrust %s; expected '%s', %s",
                 cd_export_pause_name(last.pause), last.distrust ? last.distrust : "none",
                 cd_export_pause_name(pause), distrusted ? "some" : "none");
}

static void test_partial_success(void **state)
{
    (void)state;
    cd_export_outcome_t o[3];
    int n = outcomes(o, 3, 206,
                     "{\"itemsReceived\":3,\"itemsAccepted\":1,\"errors\":["
                     "{\"index\":0,\"statusCode\":429,\"message\":\"Too many requests\"},"
                     "{\"index\":2,\"statusCode\":400,\"message\":\"109: Field 'time' on type "
                     "'Envelope' is required but missing or empty\"}]}",
                     "HTTP 206");
    assert_int_equal(n, 2);
    expect_outcome(o, 0, RESEND, 429, "Too many requests");
    expect_outcome(o, 1, ACCEPTED, 206, NULL);
    expect_outcome(o, 2, FINAL, 400,
                   "109: Field 'time' on type 'Envelope' is required but missing or empty");
    expect_answer(CD_EXPORT_THROTTLED, false); /* an item at 429 slows every sender */
    cd_export_outcomes_clear(o, 3);
    for (size_t i = 0; i < 3; i++)
        assert_null(o[i].message);

    /* The service's answer to a whole request refused with 400 names every
     * item; one it leaves out is final too, with the fallback as reason. */
    n = outcomes(o, 3, 400,
                 "{\"itemsReceived\":3,\"itemsAccepted\":0,\"errors\":["
                 "{\"index\":1,\"statusCode\":400,\"message\":\"109: Field 'time' on type "
                 "'Envelope' is required but missing or empty\"},"
                 "{\"index\":2,\"statusCode\":503,\"message\":\"Service Unavailable\"}]}",
                 "HTTP 400");
    assert_int_equal(n, 2);
    expect_outcome(o, 0, FINAL, 400, "HTTP 400");
    expect_outcome(o, 1, FINAL, 400,
                   "109: Field 'time' on type 'Envelope' is required but missing or empty");
    expect_outcome(o, 2, RESEND, 503, "Service Unavailable");
    expect_answer(CD_EXPORT_GO, false);
    cd_export_outcomes_clear(o, 3);

    /* 200 with nothing refused: accepted, nothing to say. */
    n = outcomes(o, 3, 200, "{\"itemsReceived\":3,\"itemsAccepted\":3,\"errors\":[]}", "HTTP 200");
    assert_int_equal(n, 0);
    for (size_t i = 0; i < 3; i++)
        expect_outcome(o, i, ACCEPTED, 200, NULL);
    expect_answer(CD_EXPORT_GO, false);
    cd_export_outcomes_clear(o, 3);
}

/* A 200 or 206 the service did not write, or whose counts disagree, accepts nothing. */
static void test_success_not_taken_at_its_word(void **state)
{
    (void)state;
    cd_export_outcome_t o[3];
    static const char *const bodies[] = {
        NULL,                                                        /* no body */
        "",                                                          /* empty */
        "{\"itemsReceived\":3,\"itemsAccepted\":3,\"err",             /* cut short */
        "<html><body><h1>Welcome</h1>Sign in to continue</body></html>", /* a proxy's page */
        "{\"itemsReceived\":3,\"itemsAccepted\":3}",                    /* no errors */
        "{\"itemsAccepted\":3,\"errors\":[]}",                          /* no itemsReceived */
        "{\"itemsReceived\":3,\"errors\":[]}",                          /* no itemsAccepted */
        "{\"itemsReceived\":\"3\",\"itemsAccepted\":3,\"errors\":[]}",  /* a string */
        "{\"itemsReceived\":2,\"itemsAccepted\":2,\"errors\":[]}",      /* not what was sent */
        "{\"itemsReceived\":4,\"itemsAccepted\":4,\"errors\":[]}",
        "[{\"itemsReceived\":3,\"itemsAccepted\":3,\"errors\":[]}]",    /* not an object */
    };
    for (int status = 200; status <= 206; status += 6)
        for (size_t k = 0; k < CD_ARRAY_LEN(bodies); k++) {
            int n = outcomes(o, 3, status, bodies[k], "HTTP 2xx");
            assert_int_equal(n, 0);
            for (size_t i = 0; i < 3; i++)
                expect_outcome(o, i, RESEND, status, "HTTP 2xx");
            expect_answer(CD_EXPORT_GO, true);
            cd_export_outcomes_clear(o, 3);
        }

    /* Errors name one item, yet itemsAccepted says one of the other two was not
     * taken either: which is unknown, so both go again; the named one keeps its own. */
    int n = outcomes(o, 3, 206,
                     "{\"itemsReceived\":3,\"itemsAccepted\":1,\"errors\":["
                     "{\"index\":1,\"statusCode\":500,\"message\":\"Internal\"}]}",
                     "HTTP 206");
    assert_int_equal(n, 1);
    expect_outcome(o, 0, RESEND, 206, "HTTP 206");
    expect_outcome(o, 1, RESEND, 500, "Internal");
    expect_outcome(o, 2, RESEND, 206, "HTTP 206");
    expect_answer(CD_EXPORT_GO, true);
    cd_export_outcomes_clear(o, 3);

    /* More accepted than expected is no loss: the unnamed items are done. */
    n = outcomes(o, 3, 206,
                 "{\"itemsReceived\":3,\"itemsAccepted\":3,\"errors\":["
                 "{\"index\":0,\"statusCode\":503,\"message\":\"Busy\"}]}",
                 "HTTP 206");
    expect_outcome(o, 0, RESEND, 503, "Busy");
    expect_outcome(o, 1, ACCEPTED, 206, NULL);
    expect_outcome(o, 2, ACCEPTED, 206, NULL);
    expect_answer(CD_EXPORT_GO, false);
    cd_export_outcomes_clear(o, 3);
}

/* Answers that concern the sender, not the items: every item waits, none is final. */
static void test_pauses(void **state)
{
    (void)state;
    cd_export_outcome_t o[3];

    /* The service's answer to a wrong key: a 400 naming every item. */
    outcomes(o, 3, 400,
             "{\"itemsReceived\":3,\"itemsAccepted\":0,\"errors\":["
             "{\"index\":0,\"statusCode\":400,\"message\":\"Invalid instrumentation key\"},"
             "{\"index\":1,\"statusCode\":400,\"message\":\"Invalid instrumentation key\"}]}",
             "HTTP 400");
    expect_outcome(o, 0, RESEND, 400, "Invalid instrumentation key");
    expect_outcome(o, 1, RESEND, 400, "Invalid instrumentation key");
    expect_outcome(o, 2, RESEND, 400, "HTTP 400");
    expect_answer(CD_EXPORT_BAD_KEY, false);
    cd_export_outcomes_clear(o, 3);

    /* A token sent to /v2/track of a resource that requires Entra. */
    outcomes(o, 1, 400,
             "{\"itemsReceived\":1,\"itemsAccepted\":0,\"errors\":["
             "{\"index\":0,\"statusCode\":400,\"message\":\"Authentication not supported\"}]}",
             "HTTP 400");
    expect_outcome(o, 0, RESEND, 400, "Authentication not supported");
    expect_answer(CD_EXPORT_BAD_KEY, false);
    cd_export_outcomes_clear(o, 1);

    /* The key outranks throttling when both are said. */
    outcomes(o, 2, 400,
             "{\"itemsReceived\":2,\"itemsAccepted\":0,\"errors\":["
             "{\"index\":0,\"statusCode\":429,\"message\":\"Too many\"},"
             "{\"index\":1,\"statusCode\":400,\"message\":\"invalid INSTRUMENTATION key\"}]}",
             "HTTP 400");
    expect_outcome(o, 0, RESEND, 429, "Too many");
    expect_outcome(o, 1, RESEND, 400, "invalid INSTRUMENTATION key");
    expect_answer(CD_EXPORT_BAD_KEY, false);
    cd_export_outcomes_clear(o, 2);

    static const struct {
        int status;
        cd_export_pause_t pause;
    } whole[] = {
        {429, CD_EXPORT_THROTTLED}, {439, CD_EXPORT_THROTTLED}, {401, CD_EXPORT_BAD_CREDENTIALS},
        {403, CD_EXPORT_BAD_CREDENTIALS}, {503, CD_EXPORT_GO}, {402, CD_EXPORT_GO},
    };
    for (size_t k = 0; k < CD_ARRAY_LEN(whole); k++) {
        outcomes(o, 2, whole[k].status, NULL, "whole");
        expect_answer(whole[k].pause, false);
        cd_export_outcomes_clear(o, 2);
    }

    /* One item at 439 in a 206 is the daily quota for all. */
    outcomes(o, 2, 206,
             "{\"itemsReceived\":2,\"itemsAccepted\":1,\"errors\":["
             "{\"index\":1,\"statusCode\":439,\"message\":\"Daily quota exceeded\"}]}",
             "HTTP 206");
    expect_outcome(o, 0, ACCEPTED, 206, NULL);
    expect_outcome(o, 1, RESEND, 439, "Daily quota exceeded");
    expect_answer(CD_EXPORT_THROTTLED, false);
    cd_export_outcomes_clear(o, 2);
}

static void test_sampled(void **state)
{
    (void)state;
    cd_export_outcome_t o[2];
    int n = outcomes(o, 2, 206,
                     "{\"itemsReceived\":2,\"itemsAccepted\":1,\"errors\":["
                     "{\"index\":1,\"statusCode\":206,\"message\":\"Telemetry sampled out.\"}]}",
                     "HTTP 206");
    assert_int_equal(n, 1);
    expect_outcome(o, 0, ACCEPTED, 206, NULL);
    expect_outcome(o, 1, ACCEPTED, 206, "Telemetry sampled out.");
    cd_export_outcomes_clear(o, 2);
}

static void test_not_the_service(void **state)
{
    (void)state;
    cd_export_outcome_t o[3];
    static const char html[] =
        "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad "
        "Gateway</h1></center><hr><center>nginx</center></body></html>";

    /* A proxy's page: the status alone decides, every item gets the fallback. */
    int n = outcomes(o, 3, 502, html, "HTTP 502 from the proxy");
    assert_int_equal(n, 0);
    for (size_t i = 0; i < 3; i++)
        expect_outcome(o, i, RESEND, 502, "HTTP 502 from the proxy");
    assert_ptr_not_equal(o[0].message, o[1].message); /* each its own copy */
    cd_export_outcomes_clear(o, 3);

    n = outcomes(o, 3, 400, html, "HTTP 400 from the proxy");
    assert_int_equal(n, 0);
    for (size_t i = 0; i < 3; i++)
        expect_outcome(o, i, FINAL, 400, "HTTP 400 from the proxy");
    cd_export_outcomes_clear(o, 3);

    /* JSON, but not the service's: errors that is not an array, or missing. */
    static const char *const other[] = {
        "{\"errors\":{\"index\":0,\"statusCode\":400}}",
        "{\"error\":{\"code\":\"InvalidAuthenticationToken\"}}",
        "[{\"index\":0,\"statusCode\":400}]",
        "null",
        "{\"errors\":[",
    };
    for (size_t k = 0; k < CD_ARRAY_LEN(other); k++) {
        n = outcomes(o, 3, 503, other[k], "fallback");
        assert_int_equal(n, 0);
        for (size_t i = 0; i < 3; i++)
            expect_outcome(o, i, RESEND, 503, "fallback");
        cd_export_outcomes_clear(o, 3);
    }

    /* A 500 with no body at all, or an empty one. */
    n = outcomes(o, 3, 500, NULL, "HTTP 500, no body");
    assert_int_equal(n, 0);
    for (size_t i = 0; i < 3; i++)
        expect_outcome(o, i, RESEND, 500, "HTTP 500, no body");
    cd_export_outcomes_clear(o, 3);
    n = outcomes(o, 3, 500, "", NULL);
    assert_int_equal(n, 0);
    for (size_t i = 0; i < 3; i++)
        expect_outcome(o, i, RESEND, 500, NULL);
    cd_export_outcomes_clear(o, 3);

    /* No request at all. */
    assert_int_equal(outcomes(o, 0, 500, "{}", "x"), 0);
    expect_answer(CD_EXPORT_GO, false);
}

static void test_bad_entries(void **state)
{
    (void)state;
    cd_export_outcome_t o[3];
    /* Only the entry naming item 1 with a number is applied. */
    int n = outcomes(o, 3, 206,
                     "{\"itemsReceived\":3,\"itemsAccepted\":2,\"errors\":["
                     "{\"index\":3,\"statusCode\":400,\"message\":\"past the end\"},"
                     "{\"index\":-1,\"statusCode\":400,\"message\":\"negative\"},"
                     "{\"index\":\"0\",\"statusCode\":400,\"message\":\"a string\"},"
                     "{\"index\":null,\"statusCode\":400,\"message\":\"null\"},"
                     "{\"index\":0.5,\"statusCode\":400,\"message\":\"not whole\"},"
                     "{\"index\":1e300,\"statusCode\":400,\"message\":\"huge\"},"
                     "{\"statusCode\":400,\"message\":\"no index\"},"
                     "{\"index\":0,\"message\":\"no statusCode\"},"
                     "{\"index\":0,\"statusCode\":\"400\",\"message\":\"statusCode a string\"},"
                     "\"not an object\",42,"
                     "{\"index\":1,\"statusCode\":503}]}",
                     "HTTP 206 fallback");
    assert_int_equal(n, 1);
    expect_outcome(o, 0, ACCEPTED, 206, NULL);
    expect_outcome(o, 1, RESEND, 503, "HTTP 206 fallback"); /* no message: the fallback */
    expect_outcome(o, 2, ACCEPTED, 206, NULL);
    cd_export_outcomes_clear(o, 3);

    /* A later entry for the same item wins, and its message replaces the first's. */
    n = outcomes(o, 1, 206,
                 "{\"itemsReceived\":1,\"itemsAccepted\":0,"
                 "\"errors\":[{\"index\":0,\"statusCode\":500,\"message\":\"first\"},"
                 "{\"index\":0,\"statusCode\":400,\"message\":\"second\"}]}",
                 NULL);
    assert_int_equal(n, 2);
    expect_outcome(o, 0, FINAL, 400, "second");
    cd_export_outcomes_clear(o, 1);
}

/* Without a valid token the service refuses every item with 401: all wait for a new token. */
static void test_unauthorized(void **state)
{
    (void)state;
    cd_export_outcome_t o[2];
    int n = outcomes(o, 2, 401,
                     "{\"itemsReceived\":2,\"itemsAccepted\":0,\"errors\":["
                     "{\"index\":0,\"statusCode\":401,\"message\":\"Unauthorized\"},"
                     "{\"index\":1,\"statusCode\":401,\"message\":\"Unauthorized\"}]}",
                     "HTTP 401");
    assert_int_equal(n, 2);
    expect_outcome(o, 0, RESEND, 401, "Unauthorized");
    expect_outcome(o, 1, RESEND, 401, "Unauthorized");
    expect_answer(CD_EXPORT_BAD_CREDENTIALS, false);
    cd_export_outcomes_clear(o, 2);

    n = outcomes(o, 2, 403,
                 "{\"itemsReceived\":2,\"itemsAccepted\":0,\"errors\":["
                 "{\"index\":0,\"statusCode\":403,\"message\":\"Forbidden\"}]}",
                 "HTTP 403");
    assert_int_equal(n, 1);
    expect_outcome(o, 0, RESEND, 403, "Forbidden");
    expect_outcome(o, 1, RESEND, 403, "HTTP 403");
    cd_export_outcomes_clear(o, 2);
}

/* ---- Retry-After ------------------------------------------------------------------------ */

static bool retry_after(const char *value, int64_t now_us, int64_t *ms)
{
    *ms = -12345;
    return cd_export_retry_after_parse(value, now_us, ms);
}

static void expect_seconds(const char *value, int64_t want_ms)
{
    int64_t ms;
    if (!retry_after(value, cd_now_us(), &ms) || ms != want_ms)
        fail_msg("Retry-After '%s': %lld ms, expected %lld", value, (long long)ms,
                 (long long)want_ms);
}

static void test_retry_after_seconds(void **state)
{
    (void)state;
    expect_seconds("120", 120000);
    expect_seconds(" 5 ", 5000);
    expect_seconds("\t7\t", 7000);
    expect_seconds("5\r\n", 5000); /* as a header callback sees it */
    expect_seconds("0", 0);
    expect_seconds("3600", 3600000);
    /* Longer than an hour: an hour. */
    expect_seconds("3601", 3600000);
    expect_seconds("86400", 3600000);
    expect_seconds("9223372036854775", 3600000);
    expect_seconds("9223372036854775807", 3600000);
    expect_seconds("99999999999999999999999999999999", 3600000);
}

/* now_us + offset_s as strftime formats it in UTC, in the C locale's names. */
static void http_date(const char *format, int64_t now_us, long offset_s, char *out, size_t size)
{
    time_t t = (time_t)(now_us / 1000000) + offset_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    assert_true(strftime(out, size, format, &tm) > 0);
}

static void expect_date(const char *format, long offset_s)
{
    int64_t now = cd_now_us(), ms;
    char value[128];
    http_date(format, now, offset_s, value, sizeof(value));
    if (!retry_after(value, now, &ms))
        fail_msg("Retry-After '%s' not read", value);
    /* The date has whole seconds, now has a fraction of one. */
    int64_t hi = (int64_t)offset_s * 1000, lo = hi - 1000;
    if (offset_s <= 0)
        lo = hi = 0;
    if (ms < lo || ms > hi)
        fail_msg("Retry-After '%s': %lld ms, expected %lld to %lld", value, (long long)ms,
                 (long long)lo, (long long)hi);
}

#define IMF_FIXDATE "%a, %d %b %Y %H:%M:%S GMT"
#define RFC850 "%A, %d-%b-%y %H:%M:%S GMT"
#define ASCTIME "%a %b %e %H:%M:%S %Y"

static void test_retry_after_dates(void **state)
{
    (void)state;
    expect_date(IMF_FIXDATE, 90);
    expect_date(IMF_FIXDATE, 1);
    expect_date(IMF_FIXDATE, -3600); /* past: go now */
    expect_date(IMF_FIXDATE, 0);
    expect_date(RFC850, 120);
    expect_date(RFC850, -60);
    expect_date(ASCTIME, 45);
    expect_date(ASCTIME, -45);

    /* A date is read as is; the one-hour cap is the back-off's. */
    expect_date(IMF_FIXDATE, 2 * 86400);

    /* With the header's line end still on it. */
    int64_t now = cd_now_us(), ms;
    char value[128];
    http_date(IMF_FIXDATE "\r\n", now, 30, value, sizeof(value));
    assert_true(retry_after(value, now, &ms));
    assert_true(ms > 28000 && ms <= 30000);

    /* A fixed date long past. */
    assert_true(retry_after("Fri, 31 Dec 1999 23:59:59 GMT", now, &ms));
    assert_int_equal(ms, 0);
    assert_true(retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now, &ms));
    assert_int_equal(ms, 0);
    assert_true(retry_after("Sun Nov  6 08:49:37 1994", now, &ms));
    assert_int_equal(ms, 0);
    /* And the day it names, against a now one second before it. */
    assert_true(retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111776LL * 1000000, &ms));
    assert_int_equal(ms, 1000);
}

static void test_retry_after_garbage(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "   ", "soon", "-1", "1.5", "+5", "5s", "5 s", "0x10", "12abc", "1e3", "- 5",
        "\xff\xfe", "Retry-After: 5",
    };
    for (size_t i = 0; i < CD_ARRAY_LEN(bad); i++) {
        int64_t ms;
        if (retry_after(bad[i], cd_now_us(), &ms))
            fail_msg("Retry-After '%s' read as %lld ms", bad[i], (long long)ms);
    }
}

/* ---- back-off --------------------------------------------------------------------------- */

/* The delay when the jitter lands on the top: random = d/2 gives d/2 + d/2. */
static int64_t top(cd_export_backoff_t *b, int64_t d)
{
    return cd_export_backoff_next(b, -1, (uint32_t)(d / 2));
}

static void test_backoff_grows(void **state)
{
    (void)state;
    cd_export_backoff_t b = {500, 8000, 0};
    assert_int_equal(top(&b, 500), 500); /* the first failure: min_ms */
    assert_int_equal(top(&b, 1000), 1000);
    assert_int_equal(top(&b, 2000), 2000);
    assert_int_equal(top(&b, 4000), 4000);
    assert_int_equal(top(&b, 8000), 8000);
    assert_int_equal(top(&b, 8000), 8000); /* capped at max_ms */
    for (int i = 0; i < 100; i++)
        assert_int_equal(top(&b, 8000), 8000); /* however long it lasts */
    /* The bottom of the jitter: half. */
    assert_int_equal(cd_export_backoff_next(&b, -1, 0), 4000);

    cd_export_backoff_reset(&b);
    assert_int_equal(b.failures, 0);
    assert_int_equal(top(&b, 500), 500);
    assert_int_equal(top(&b, 1000), 1000);
    cd_export_backoff_reset(&b);
    assert_int_equal(cd_export_backoff_next(&b, -1, 0), 250);

    /* A minimum above the maximum: the maximum. */
    cd_export_backoff_t odd = {9000, 4000, 0};
    assert_int_equal(top(&odd, 4000), 4000);
}

static void test_backoff_jitter(void **state)
{
    (void)state;
    srand(20261120);
    for (int failures = 0; failures < 12; failures++) {
        int64_t d = 500LL << failures;
        if (d > 60000)
            d = 60000;
        int64_t lo = d, hi = 0;
        for (int i = 0; i < 2000; i++) {
            cd_export_backoff_t b = {500, 60000, failures};
            uint32_t r = (uint32_t)rand() ^ ((uint32_t)rand() << 16);
            int64_t got = cd_export_backoff_next(&b, -1, r);
            if (got < d / 2 || got > d)
                fail_msg("failure %d, random %u: %lld ms, not in [%lld, %lld]", failures, r,
                         (long long)got, (long long)(d / 2), (long long)d);
            assert_int_equal(b.failures, failures + 1);
            lo = got < lo ? got : lo;
            hi = got > hi ? got : hi;
        }
        /* Spread over the range, not stuck at one end. */
        if (lo > d / 2 + d / 10 || hi < d - d / 10)
            fail_msg("failure %d: delays only from %lld to %lld of [%lld, %lld]", failures,
                     (long long)lo, (long long)hi, (long long)(d / 2), (long long)d);
    }
    /* Extreme random values stay in range too. */
    static const uint32_t extremes[] = {0, 1, UINT32_MAX, UINT32_MAX - 1, 0x80000000u};
    for (size_t i = 0; i < CD_ARRAY_LEN(extremes); i++) {
        cd_export_backoff_t b = {500, 3600000, 40};
        int64_t got = cd_export_backoff_next(&b, -1, extremes[i]);
        assert_true(got >= 1800000 && got <= 3600000);
    }
}

static void test_backoff_retry_after(void **state)
{
    (void)state;
    cd_export_backoff_t b = {500, 60000, 0};
    /* Longer than the back-off: exactly what the service asked. */
    assert_int_equal(cd_export_backoff_next(&b, 5000, 0), 5000);
    assert_int_equal(cd_export_backoff_next(&b, 5000, UINT32_MAX), 5000);
    /* Shorter: the back-off, which keeps growing underneath. */
    int64_t got = cd_export_backoff_next(&b, 100, 7);
    assert_true(got >= 1000 && got <= 2000);
    assert_int_equal(b.failures, 3);
    /* 0 ("now") does not cut the back-off short either. */
    got = cd_export_backoff_next(&b, 0, 7);
    assert_true(got >= 2000 && got <= 4000);
    /* Absurd: an hour at most. */
    assert_int_equal(cd_export_backoff_next(&b, 10LL * 86400 * 1000, 0), 3600000);
    assert_int_equal(cd_export_backoff_next(&b, INT64_MAX, 0), 3600000);
    assert_int_equal(cd_export_backoff_next(&b, 3600001, 0), 3600000);
    assert_int_equal(cd_export_backoff_next(&b, 3600000, 0), 3600000);
    /* Parsed, then backed off: a date two days ahead waits an hour. */
    int64_t ms;
    assert_true(cd_export_retry_after_parse("172800", cd_now_us(), &ms));
    cd_export_backoff_reset(&b);
    assert_int_equal(cd_export_backoff_next(&b, ms, 0), 3600000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fates),
        cmocka_unit_test(test_partial_success),
        cmocka_unit_test(test_success_not_taken_at_its_word),
        cmocka_unit_test(test_pauses),
        cmocka_unit_test(test_sampled),
        cmocka_unit_test(test_not_the_service),
        cmocka_unit_test(test_bad_entries),
        cmocka_unit_test(test_unauthorized),
        cmocka_unit_test(test_retry_after_seconds),
        cmocka_unit_test(test_retry_after_dates),
        cmocka_unit_test(test_retry_after_garbage),
        cmocka_unit_test(test_backoff_grows),
        cmocka_unit_test(test_backoff_jitter),
        cmocka_unit_test(test_backoff_retry_after),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
