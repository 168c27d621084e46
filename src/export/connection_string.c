/*
 * connection_string.c -- APPLICATIONINSIGHTS_CONNECTION_STRING; see export.h.
 *
 * The rules are those the official SDKs share (ApplicationInsights-dotnet's
 * ConfigStringParser and EndpointProvider, the Java and Python Azure Monitor
 * exporters): segments split on ';', empty ones skipped, exactly one '=' per
 * segment, keys compared without regard to case, a key given twice refused,
 * at most 4096 characters (bytes, here), IngestionEndpoint before
 * EndpointSuffix before the global endpoint, leading dots dropped from
 * EndpointSuffix and trailing ones from Location, endpoints ending in '/'.
 * Where the SDKs differ we take the stricter reading, since a mistake here
 * sends telemetry to the wrong place or nowhere: a recognised key with an
 * empty value is an error rather than absent, and the key must be a GUID
 * (as the Python exporter requires).
 *
 * No message quotes a value or a key we do not know: either may be the
 * instrumentation key pasted in the wrong place.
 */
#include "convdiag/export.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct span {
    const char *p;
    size_t n;
} span_t;

enum keyword { K_IKEY, K_INGESTION, K_SUFFIX, K_LOCATION, K_AUDIENCE, K_COUNT, K_OTHER = K_COUNT };

static const char *const keywords[K_COUNT] = {
    "InstrumentationKey", "IngestionEndpoint", "EndpointSuffix", "Location", "AADAudience",
};

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* ASCII only: what is allowed in a host name does not depend on the locale. */
static bool is_alnum(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static span_t trim(span_t s)
{
    while (s.n > 0 && is_space(s.p[0])) {
        s.p++;
        s.n--;
    }
    while (s.n > 0 && is_space(s.p[s.n - 1]))
        s.n--;
    return s;
}

static bool span_equal_nocase(span_t a, span_t b)
{
    return a.n == b.n && strncasecmp(a.p, b.p, a.n) == 0;
}

static enum keyword keyword_of(span_t key)
{
    for (int k = 0; k < K_COUNT; k++)
        if (span_equal_nocase(key, (span_t){keywords[k], strlen(keywords[k])}))
            return (enum keyword)k;
    return K_OTHER;
}

/* The segment that starts at *pos, up to the next ';' or the end; *pos moves
 * past it.  False once there is nothing left. */
static bool next_segment(const char *s, size_t *pos, span_t *seg)
{
    if (s[*pos] == '\0')
        return false;
    const char *start = s + *pos;
    const char *semi = strchr(start, ';');
    seg->p = start;
    seg->n = semi ? (size_t)(semi - start) : strlen(start);
    *pos += seg->n + (semi ? 1 : 0);
    return true;
}

/* Splits a trimmed, non-empty segment into its trimmed key and value. */
static cd_status_t split_pair(span_t seg, int number, span_t *key, span_t *value, cd_err_t *err)
{
    const char *eq = memchr(seg.p, '=', seg.n);
    if (!eq)
        return cd_err_set(err, CD_ERROR,
                          "connection string: segment %d has no '=' (expected key=value;...)",
                          number);
    size_t klen = (size_t)(eq - seg.p);
    if (memchr(eq + 1, '=', seg.n - klen - 1))
        return cd_err_set(err, CD_ERROR, "connection string: segment %d has more than one '='",
                          number);
    *key = trim((span_t){seg.p, klen});
    *value = trim((span_t){eq + 1, seg.n - klen - 1});
    if (key->n == 0)
        return cd_err_set(err, CD_ERROR, "connection string: segment %d has an empty key",
                          number);
    return CD_OK;
}

/* Refuses a key that an earlier segment (before byte `before`) already gave. */
static cd_status_t check_unique(const char *s, size_t before, span_t key, int number,
                                cd_err_t *err)
{
    size_t pos = 0;
    span_t seg, k, v;

    for (int n = 1; pos < before && next_segment(s, &pos, &seg); n++) {
        seg = trim(seg);
        /* Earlier segments have passed split_pair already. */
        if (seg.n == 0 || split_pair(seg, n, &k, &v, NULL) != CD_OK || !span_equal_nocase(k, key))
            continue;
        enum keyword kw = keyword_of(key);
        if (kw == K_OTHER)
            return cd_err_set(err, CD_ERROR,
                              "connection string: segments %d and %d have the same key", n,
                              number);
        return cd_err_set(err, CD_ERROR, "connection string: %s appears twice (segments %d and %d)",
                          keywords[kw], n, number);
    }
    return CD_OK;
}

static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* 8-4-4-4-12 hex digits, either case. */
static bool is_guid(span_t v)
{
    if (v.n != CD_EXPORT_IKEY_LEN)
        return false;
    for (size_t i = 0; i < v.n; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? v.p[i] != '-' : !is_hex(v.p[i]))
            return false;
    }
    return true;
}

static bool has_prefix_nocase(span_t s, const char *prefix)
{
    size_t n = strlen(prefix);
    return s.n >= n && strncasecmp(s.p, prefix, n) == 0;
}

/* IngestionEndpoint: an http or https URL with a host, nothing a URL may not
 * hold unescaped, no query or fragment (the track path goes at its end);
 * the scheme in lower case and exactly one '/' at the end. */
static cd_status_t explicit_endpoint(span_t v, cd_export_conn_t *conn, cd_err_t *err)
{
    const char *scheme;
    if (has_prefix_nocase(v, "https://"))
        scheme = "https://";
    else if (has_prefix_nocase(v, "http://"))
        scheme = "http://";
    else
        return cd_err_set(err, CD_ERROR,
                          "connection string: IngestionEndpoint must begin with https:// or "
                          "http://");
    span_t rest = {v.p + strlen(scheme), v.n - strlen(scheme)};
    for (size_t i = 0; i < rest.n; i++) {
        unsigned char c = (unsigned char)rest.p[i];
        if (c <= 0x20 || c == 0x7f || strchr("\"<>\\^`{|}", c))
            return cd_err_set(err, CD_ERROR,
                              "connection string: IngestionEndpoint contains a character a URL "
                              "cannot hold (at offset %zu)",
                              strlen(scheme) + i);
        if (c == '?' || c == '#')
            return cd_err_set(err, CD_ERROR,
                              "connection string: IngestionEndpoint must not have a query or "
                              "fragment");
    }
    while (rest.n > 0 && rest.p[rest.n - 1] == '/')
        rest.n--;
    if (rest.n == 0 || rest.p[0] == '/')
        return cd_err_set(err, CD_ERROR, "connection string: IngestionEndpoint has no host");

    snprintf(conn->endpoint, sizeof(conn->endpoint), "%s%.*s/", scheme, (int)rest.n, rest.p);
    return CD_OK;
}

/* https://[<Location>.]dc.<EndpointSuffix>/ */
static cd_status_t suffix_endpoint(span_t suffix, const span_t *location, cd_export_conn_t *conn,
                                   cd_err_t *err)
{
    while (suffix.n > 0 && suffix.p[0] == '.') {
        suffix.p++;
        suffix.n--;
    }
    while (suffix.n > 0 && suffix.p[suffix.n - 1] == '/')
        suffix.n--;
    bool ok = suffix.n > 0;
    for (size_t i = 0; ok && i < suffix.n; i++)
        ok = is_alnum(suffix.p[i]) || suffix.p[i] == '-' || suffix.p[i] == '.';
    if (!ok)
        return cd_err_set(err, CD_ERROR,
                          "connection string: EndpointSuffix must be a domain name such as "
                          "applicationinsights.azure.cn");

    span_t loc = {"", 0};
    if (location) {
        loc = *location;
        while (loc.n > 0 && loc.p[loc.n - 1] == '.')
            loc.n--;
        ok = loc.n > 0;
        for (size_t i = 0; ok && i < loc.n; i++)
            ok = is_alnum(loc.p[i]);
        if (!ok)
            return cd_err_set(err, CD_ERROR,
                              "connection string: Location must be letters and digits only, "
                              "such as westus2");
    }

    snprintf(conn->endpoint, sizeof(conn->endpoint), "https://%.*s%sdc.%.*s/", (int)loc.n, loc.p,
             loc.n > 0 ? "." : "", (int)suffix.n, suffix.p);
    return CD_OK;
}

/*
 * Everything written into conn fits its array: each value comes from a
 * string of at most CD_EXPORT_CONN_MAX bytes that also held
 * "InstrumentationKey=" and a key, more than the endpoints add to it.
 */
static cd_status_t parse(cd_export_conn_t *conn, const char *s, cd_err_t *err)
{
    span_t found[K_COUNT] = {{0}};
    bool have[K_COUNT] = {false};
    size_t pos = 0;
    span_t seg, key, value;
    bool any = false;
    cd_status_t st = CD_OK;

    if (!s)
        s = "";
    size_t slen = strlen(s);
    if (slen > CD_EXPORT_CONN_MAX)
        return cd_err_set(err, CD_ERROR,
                          "connection string: %zu bytes long, over the limit of %d", slen,
                          CD_EXPORT_CONN_MAX);

    for (int number = 1; next_segment(s, &pos, &seg); number++) {
        size_t seg_start = (size_t)(seg.p - s);
        seg = trim(seg);
        if (seg.n == 0)
            continue;
        any = true;
        if ((st = split_pair(seg, number, &key, &value, err)) != CD_OK ||
            (st = check_unique(s, seg_start, key, number, err)) != CD_OK)
            return st;
        enum keyword kw = keyword_of(key);
        if (kw == K_OTHER)
            continue;
        if (value.n == 0)
            return cd_err_set(err, CD_ERROR, "connection string: %s is empty", keywords[kw]);
        found[kw] = value;
        have[kw] = true;
    }
    if (!any)
        return cd_err_set(err, CD_ERROR, "connection string is empty");

    if (!have[K_IKEY])
        return cd_err_set(err, CD_ERROR, "connection string: InstrumentationKey is missing");
    if (!is_guid(found[K_IKEY]))
        return cd_err_set(err, CD_ERROR,
                          "connection string: InstrumentationKey is not a GUID (expected "
                          "8-4-4-4-12 hex digits, as the portal shows it)");
    memcpy(conn->ikey, found[K_IKEY].p, CD_EXPORT_IKEY_LEN);
    conn->ikey[CD_EXPORT_IKEY_LEN] = '\0';

    /* An explicit endpoint wins, and Location then means nothing (as in the SDKs). */
    if (have[K_INGESTION])
        st = explicit_endpoint(found[K_INGESTION], conn, err);
    else if (have[K_SUFFIX])
        st = suffix_endpoint(found[K_SUFFIX], have[K_LOCATION] ? &found[K_LOCATION] : NULL, conn,
                             err);
    else
        memcpy(conn->endpoint, CD_EXPORT_DEFAULT_ENDPOINT, sizeof(CD_EXPORT_DEFAULT_ENDPOINT));
    if (st != CD_OK)
        return st;

    snprintf(conn->track_url, sizeof(conn->track_url), "%s%s", conn->endpoint,
             CD_EXPORT_TRACK_PATH);
    if (have[K_AUDIENCE])
        snprintf(conn->aad_audience, sizeof(conn->aad_audience), "%.*s", (int)found[K_AUDIENCE].n,
                 found[K_AUDIENCE].p);
    return CD_OK;
}

cd_status_t cd_export_conn_parse(cd_export_conn_t *conn, const char *s, cd_err_t *err)
{
    memset(conn, 0, sizeof(*conn));
    cd_status_t st = parse(conn, s, err);
    if (st != CD_OK)
        memset(conn, 0, sizeof(*conn)); /* no half-parsed key left behind */
    return st;
}

/* Writes the masked form of key[0..len) at dst, which may be key itself or
 * lie before it: never more than len bytes.  Returns the bytes written. */
static size_t mask_into(char *dst, const char *key, size_t len)
{
    size_t keep = len > 16 ? 8 : 0;
    size_t stars = len < 4 ? len : 4;

    memmove(dst, key, keep);
    memset(dst + keep, '*', stars);
    return keep + stars;
}

const char *cd_export_mask_ikey(const char *ikey, char *buf, size_t size)
{
    char tmp[CD_EXPORT_MASKED_SIZE];
    size_t n = mask_into(tmp, ikey, strlen(ikey));

    if (size == 0)
        return buf;
    if (n > size - 1)
        n = size - 1;
    memcpy(buf, tmp, n);
    buf[n] = '\0';
    return buf;
}

/* Length of the occurrence of key at t, compared without regard to case and,
 * with skip_dashes, as if key had no dashes; 0 when there is none. */
static size_t match_at(const char *t, const char *key, bool skip_dashes)
{
    size_t i = 0;

    for (; *key; key++) {
        if (skip_dashes && *key == '-')
            continue;
        /* A NUL in t differs from every character of key, so t is never read past its end. */
        if (lower(t[i]) != lower(*key))
            return 0;
        i++;
    }
    return i;
}

size_t cd_export_mask_ikey_in(char *text, const char *ikey)
{
    size_t count = 0;
    char *r = text, *w = text;

    if (!ikey[0])
        return 0;
    while (*r) {
        size_t n = match_at(r, ikey, false);
        if (n == 0)
            n = match_at(r, ikey, true);
        if (n > 0) {
            /* The masked form is never longer than what it replaces, so w stays behind r. */
            w += mask_into(w, r, n);
            r += n;
            count++;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
    return count;
}
