/*
 * test_export_connection_string.c -- APPLICATIONINSIGHTS_CONNECTION_STRING:
 * every rule of the parser, one table row each, with the endpoint it yields
 * or the error it gives; no error ever quotes the instrumentation key.  Then
 * masking keys for logs.
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

#include "convdiag/common.h"
#include "convdiag/export.h"

#define IKEY "1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d"
#define IKEY_BARE "1b2c3d4e5f604a7b8c9d0e1f2a3b4c5d"
#define GLOBAL "https://dc.services.visualstudio.com/"
#define PORTAL                                                                                \
    "InstrumentationKey=" IKEY ";IngestionEndpoint=https://westeurope-5.in.applicationinsights." \
    "azure.com/;LiveEndpoint=https://westeurope.livediagnostics.monitor.azure.com/;"          \
    "ApplicationId=0a1b2c3d-0000-4000-8000-000000000001"

typedef struct conn_case {
    const char *name;
    const char *input;
    const char *ikey;     /* expected key; NULL when parsing must fail */
    const char *endpoint; /* expected endpoint, or the error's text */
    const char *audience; /* expected AADAudience ("" when absent) */
} conn_case_t;

#define OK(n, in, ep) {n, in, IKEY, ep, ""}
#define BAD(n, in, msg) {n, in, NULL, msg, NULL}

static const conn_case_t cases[] = {
    /* the three ways to an endpoint */
    OK("key alone: the global endpoint", "InstrumentationKey=" IKEY, GLOBAL),
    OK("as the portal shows it", PORTAL, "https://westeurope-5.in.applicationinsights.azure.com/"),
    OK("EndpointSuffix", "InstrumentationKey=" IKEY ";EndpointSuffix=applicationinsights.azure.cn",
       "https://dc.applicationinsights.azure.cn/"),
    OK("EndpointSuffix and Location",
       "InstrumentationKey=" IKEY ";EndpointSuffix=applicationinsights.azure.cn;"
       "Location=chinaeast2",
       "https://chinaeast2.dc.applicationinsights.azure.cn/"),
    OK("IngestionEndpoint wins over EndpointSuffix and Location",
       "Location=westus2;EndpointSuffix=applicationinsights.azure.cn;IngestionEndpoint="
       "https://proxy.example.com;InstrumentationKey=" IKEY,
       "https://proxy.example.com/"),
    OK("Location without EndpointSuffix means nothing",
       "InstrumentationKey=" IKEY ";Location=westus2", GLOBAL),
    OK("a bad Location is not looked at when IngestionEndpoint wins",
       "InstrumentationKey=" IKEY ";IngestionEndpoint=https://a.example;Location=west us 2;"
       "EndpointSuffix=x.example",
       "https://a.example/"),

    /* syntax */
    OK("keys in any case",
       "instrumentationkey=" IKEY ";INGESTIONENDPOINT=https://a.example/", "https://a.example/"),
    OK("keys and values trimmed",
       "  InstrumentationKey \t=  " IKEY "\t ;\tIngestionEndpoint = https://a.example  ",
       "https://a.example/"),
    OK("empty segments skipped", ";;InstrumentationKey=" IKEY ";; ;\t;", GLOBAL),
    OK("unknown keys ignored, even empty ones",
       "Authorization=ikey;InstrumentationKey=" IKEY ";ProfilerEndpoint=;Foo=bar", GLOBAL),
    {"upper-case GUID, kept as given", "InstrumentationKey=1B2C3D4E-5F60-4A7B-8C9D-0E1F2A3B4C5D",
     "1B2C3D4E-5F60-4A7B-8C9D-0E1F2A3B4C5D", GLOBAL, ""},

    /* endpoint normalization */
    OK("a trailing '/' added", "InstrumentationKey=" IKEY ";IngestionEndpoint=https://a.example",
       "https://a.example/"),
    OK("trailing '/'s become one",
       "InstrumentationKey=" IKEY ";IngestionEndpoint=https://a.example///", "https://a.example/"),
    OK("a path is kept", "InstrumentationKey=" IKEY ";IngestionEndpoint=https://a.example/ai/in",
       "https://a.example/ai/in/"),
    OK("http and a port", "InstrumentationKey=" IKEY ";IngestionEndpoint=http://127.0.0.1:8089",
       "http://127.0.0.1:8089/"),
    OK("scheme in lower case, host as given",
       "InstrumentationKey=" IKEY ";IngestionEndpoint=HTTPS://A.Example", "https://A.Example/"),
    OK("EndpointSuffix: leading dots and trailing '/' dropped",
       "InstrumentationKey=" IKEY ";EndpointSuffix=..applicationinsights.us/",
       "https://dc.applicationinsights.us/"),
    OK("Location: trailing dots dropped",
       "InstrumentationKey=" IKEY ";EndpointSuffix=applicationinsights.us;Location=usgovvirginia.",
       "https://usgovvirginia.dc.applicationinsights.us/"),
    {"AADAudience", "InstrumentationKey=" IKEY ";AADAudience= https://monitor.azure.com/ ", IKEY,
     GLOBAL, "https://monitor.azure.com/"},

    /* malformed */
    BAD("NULL", NULL, "connection string is empty"),
    BAD("empty", "", "connection string is empty"),
    BAD("only separators and blanks", " ; ;;\t", "connection string is empty"),
    BAD("the key alone, without '='", IKEY, "connection string: segment 1 has no '='"),
    BAD("a segment without '='", "InstrumentationKey=" IKEY ";;westus2",
        "connection string: segment 3 has no '=' (expected key=value;...)"),
    BAD("empty key", "InstrumentationKey=" IKEY "; =x",
        "connection string: segment 2 has an empty key"),
    BAD("empty key before the key", "=" IKEY, "connection string: segment 1 has an empty key"),
    BAD("two '='", "InstrumentationKey=" IKEY "=",
        "connection string: segment 1 has more than one '='"),
    BAD("a known key twice, in another case",
        "InstrumentationKey=" IKEY ";IngestionEndpoint=https://a.example;instrumentationKEY=" IKEY,
        "connection string: InstrumentationKey appears twice (segments 1 and 3)"),
    BAD("an unknown key twice, not quoted", "Foo=1;InstrumentationKey=" IKEY ";FOO = 2",
        "connection string: segments 1 and 3 have the same key"),

    /* the key */
    BAD("no InstrumentationKey", "IngestionEndpoint=https://a.example/",
        "connection string: InstrumentationKey is missing"),
    BAD("empty InstrumentationKey", "InstrumentationKey= ;IngestionEndpoint=https://a.example/",
        "connection string: InstrumentationKey is empty"),
    BAD("key not a GUID", "InstrumentationKey=secret-key-value",
        "connection string: InstrumentationKey is not a GUID (expected 8-4-4-4-12 hex digits, as "
        "the portal shows it)"),
    BAD("key without dashes", "InstrumentationKey=" IKEY_BARE,
        "connection string: InstrumentationKey is not a GUID"),
    BAD("key in braces", "InstrumentationKey={" IKEY "}",
        "connection string: InstrumentationKey is not a GUID"),
    BAD("key with a non-hex digit", "InstrumentationKey=1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5g",
        "connection string: InstrumentationKey is not a GUID"),
    BAD("key one digit short", "InstrumentationKey=1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5",
        "connection string: InstrumentationKey is not a GUID"),

    /* endpoints */
    BAD("empty IngestionEndpoint", "InstrumentationKey=" IKEY ";IngestionEndpoint=",
        "connection string: IngestionEndpoint is empty"),
    BAD("no scheme", "InstrumentationKey=" IKEY ";IngestionEndpoint=dc.example.com",
        "connection string: IngestionEndpoint must begin with https:// or http://"),
    BAD("ftp", "InstrumentationKey=" IKEY ";IngestionEndpoint=ftp://dc.example.com",
        "connection string: IngestionEndpoint must begin with https:// or http://"),
    BAD("one slash", "InstrumentationKey=" IKEY ";IngestionEndpoint=https:/dc.example.com",
        "connection string: IngestionEndpoint must begin with https:// or http://"),
    BAD("no host", "InstrumentationKey=" IKEY ";IngestionEndpoint=https://",
        "connection string: IngestionEndpoint has no host"),
    BAD("a path but no host", "InstrumentationKey=" IKEY ";IngestionEndpoint=https:///v2",
        "connection string: IngestionEndpoint has no host"),
    BAD("a space inside", "InstrumentationKey=" IKEY ";IngestionEndpoint=https://dc.exa mple.com",
        "connection string: IngestionEndpoint contains a character a URL cannot hold (at offset "
        "14)"),
    BAD("a query", "InstrumentationKey=" IKEY ";IngestionEndpoint=https://dc.example.com/?x",
        "connection string: IngestionEndpoint must not have a query or fragment"),
    BAD("a fragment", "InstrumentationKey=" IKEY ";IngestionEndpoint=https://dc.example.com#x",
        "connection string: IngestionEndpoint must not have a query or fragment"),
    BAD("empty EndpointSuffix", "InstrumentationKey=" IKEY ";EndpointSuffix=",
        "connection string: EndpointSuffix is empty"),
    BAD("EndpointSuffix of dots", "InstrumentationKey=" IKEY ";EndpointSuffix=..",
        "connection string: EndpointSuffix must be a domain name such as "
        "applicationinsights.azure.cn"),
    BAD("EndpointSuffix given as a URL",
        "InstrumentationKey=" IKEY ";EndpointSuffix=https://applicationinsights.azure.cn",
        "connection string: EndpointSuffix must be a domain name"),
    BAD("Location with a space",
        "InstrumentationKey=" IKEY ";EndpointSuffix=applicationinsights.azure.cn;Location=west us",
        "connection string: Location must be letters and digits only, such as westus2"),
    BAD("Location with a dash",
        "InstrumentationKey=" IKEY ";EndpointSuffix=applicationinsights.azure.cn;Location=west-us",
        "connection string: Location must be letters and digits only"),
    BAD("Location of dots",
        "InstrumentationKey=" IKEY ";EndpointSuffix=applicationinsights.azure.cn;Location=..",
        "connection string: Location must be letters and digits only"),
    BAD("empty AADAudience", "InstrumentationKey=" IKEY ";AADAudience=",
        "connection string: AADAudience is empty"),
};

/* No error may show the key, whole, without its dashes, or its first group. */
static void assert_no_key(const char *msg)
{
    if (strstr(msg, IKEY) || strstr(msg, IKEY_BARE) || strstr(msg, "1b2c3d4e"))
        fail_msg("the error shows the key: %s", msg);
}

static void test_case(void **state)
{
    const conn_case_t *c = *state;
    cd_export_conn_t conn;
    cd_err_t err = {{0}};
    char track[CD_EXPORT_CONN_MAX + 64];

    cd_status_t st = cd_export_conn_parse(&conn, c->input, &err);
    if (c->ikey) {
        if (st != CD_OK)
            fail_msg("refused: %s", err.msg);
        assert_string_equal(conn.ikey, c->ikey);
        assert_string_equal(conn.endpoint, c->endpoint);
        snprintf(track, sizeof(track), "%sv2.1/track", c->endpoint);
        assert_string_equal(conn.track_url, track);
        assert_string_equal(conn.aad_audience, c->audience);
    } else {
        assert_int_equal(st, CD_ERROR);
        if (strncmp(err.msg, c->endpoint, strlen(c->endpoint)) != 0)
            fail_msg("error '%s', expected it to begin with '%s'", err.msg, c->endpoint);
        assert_no_key(err.msg);
        assert_string_equal(conn.ikey, ""); /* nothing half-parsed left behind */
        assert_string_equal(conn.endpoint, "");
    }
}

/* 4096 bytes pass, 4097 do not, and the message gives the length, not the text. */
static void test_length_limit(void **state)
{
    (void)state;
    static const char head[] = "InstrumentationKey=" IKEY ";Pad=";
    char *s = malloc(CD_EXPORT_CONN_MAX + 2);
    cd_export_conn_t conn;
    cd_err_t err = {{0}};

    assert_non_null(s);
    memcpy(s, head, sizeof(head) - 1);
    memset(s + sizeof(head) - 1, 'x', CD_EXPORT_CONN_MAX - (sizeof(head) - 1));
    s[CD_EXPORT_CONN_MAX] = '\0';
    assert_int_equal(cd_export_conn_parse(&conn, s, &err), CD_OK);
    assert_string_equal(conn.endpoint, GLOBAL);

    s[CD_EXPORT_CONN_MAX] = 'x';
    s[CD_EXPORT_CONN_MAX + 1] = '\0';
    assert_int_equal(cd_export_conn_parse(&conn, s, &err), CD_ERROR);
    assert_string_equal(err.msg, "connection string: 4097 bytes long, over the limit of 4096");
    free(s);
}

/* The longest endpoint a string within the limit can hold fits conn. */
static void test_longest_endpoint(void **state)
{
    (void)state;
    static const char head[] = "InstrumentationKey=" IKEY ";IngestionEndpoint=https://";
    char *s = malloc(CD_EXPORT_CONN_MAX + 1);
    cd_export_conn_t conn;
    cd_err_t err = {{0}};

    assert_non_null(s);
    memcpy(s, head, sizeof(head) - 1);
    size_t host = CD_EXPORT_CONN_MAX - (sizeof(head) - 1);
    memset(s + sizeof(head) - 1, 'h', host);
    s[CD_EXPORT_CONN_MAX] = '\0';
    assert_int_equal(cd_export_conn_parse(&conn, s, &err), CD_OK);
    assert_int_equal(strlen(conn.endpoint), strlen("https://") + host + 1);
    assert_int_equal(strlen(conn.track_url), strlen(conn.endpoint) + strlen("v2.1/track"));
    free(s);
}

static void test_mask_ikey(void **state)
{
    (void)state;
    char buf[CD_EXPORT_MASKED_SIZE];
    char small[5];

    assert_string_equal(cd_export_mask_ikey(IKEY, buf, sizeof(buf)), "1b2c3d4e****");
    assert_string_equal(cd_export_mask_ikey(IKEY_BARE, buf, sizeof(buf)), "1b2c3d4e****");
    /* Keeping 8 of 16 or fewer would show half the key or more. */
    assert_string_equal(cd_export_mask_ikey("0123456789abcdef", buf, sizeof(buf)), "****");
    assert_string_equal(cd_export_mask_ikey("0123456789abcdefg", buf, sizeof(buf)),
                        "01234567****");
    assert_string_equal(cd_export_mask_ikey("abcd", buf, sizeof(buf)), "****");
    assert_string_equal(cd_export_mask_ikey("abc", buf, sizeof(buf)), "***");
    assert_string_equal(cd_export_mask_ikey("", buf, sizeof(buf)), "");
    /* A buffer too small gets what fits, like snprintf. */
    assert_string_equal(cd_export_mask_ikey(IKEY, small, sizeof(small)), "1b2c");
}

typedef struct mask_case {
    const char *text;
    const char *masked;
    size_t count;
} mask_case_t;

static void test_mask_ikey_in(void **state)
{
    (void)state;
    static const mask_case_t mc[] = {
        {"no key here", "no key here", 0},
        {"", "", 0},
        {IKEY, "1b2c3d4e****", 1},
        {"ikey=" IKEY ";", "ikey=1b2c3d4e****;", 1},
        {"name Microsoft.ApplicationInsights." IKEY_BARE ".Message",
         "name Microsoft.ApplicationInsights.1b2c3d4e****.Message", 1},
        {"upper 1B2C3D4E-5F60-4A7B-8C9D-0E1F2A3B4C5D end", "upper 1B2C3D4E**** end", 1},
        {IKEY IKEY_BARE " and " IKEY, "1b2c3d4e****1b2c3d4e**** and 1b2c3d4e****", 3},
        {"another key 1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5e",
         "another key 1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5e", 0},
        {"cut short 1b2c3d4e-5f60-4a7b", "cut short 1b2c3d4e-5f60-4a7b", 0},
    };
    char text[256];

    for (size_t i = 0; i < CD_ARRAY_LEN(mc); i++) {
        snprintf(text, sizeof(text), "%s", mc[i].text);
        assert_int_equal(cd_export_mask_ikey_in(text, IKEY), mc[i].count);
        assert_string_equal(text, mc[i].masked);
    }
    snprintf(text, sizeof(text), "%s", IKEY);
    assert_int_equal(cd_export_mask_ikey_in(text, ""), 0);
    assert_string_equal(text, IKEY);
}

/* Every error of the table, run through the log mask, is unchanged: none had
 * the key to begin with. */
static void test_errors_need_no_masking(void **state)
{
    (void)state;
    for (size_t i = 0; i < CD_ARRAY_LEN(cases); i++) {
        cd_export_conn_t conn;
        cd_err_t err = {{0}};
        if (cd_export_conn_parse(&conn, cases[i].input, &err) == CD_OK)
            continue;
        assert_int_equal(cd_export_mask_ikey_in(err.msg, IKEY), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_length_limit),
        cmocka_unit_test(test_longest_endpoint),
        cmocka_unit_test(test_mask_ikey),
        cmocka_unit_test(test_mask_ikey_in),
        cmocka_unit_test(test_errors_need_no_masking),
    };
    int failed = cmocka_run_group_tests_name("export_connection_string", tests, NULL, NULL);

    size_t n = CD_ARRAY_LEN(cases);
    struct CMUnitTest *table = calloc(n, sizeof(*table));
    if (!table)
        return 1;
    for (size_t i = 0; i < n; i++) {
        table[i].name = cases[i].name;
        table[i].test_func = test_case;
        table[i].initial_state = (void *)&cases[i];
    }
    failed += _cmocka_run_group_tests("export_connection_string_rules", table, n, NULL, NULL);
    free(table);
    return failed;
}
