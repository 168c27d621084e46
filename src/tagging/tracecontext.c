/*
 * tracecontext.c -- traceparent and tracestate values, after W3C Trace Context
 * Level 1 (Recommendation of 23 November 2021), sections 3.2 and 3.3.
 *
 * Both values may arrive in a Kafka header or in the event body rather than
 * in an HTTP field, so spaces and tabs (OWS) around a value are dropped the
 * way RFC 7230 section 3.2.4 drops them around a field value.  The W3C test
 * suite expects that too (test_traceparent_ows_handling,
 * test_tracestate_ows_handling).
 */
#include "convdiag/tracecontext.h"

#include <string.h>

/* "vv-" 32 hex "-" 16 hex "-" 2 hex: the whole of version 00, and the prefix
 * that a higher version shares with it. */
#define TP_LEN 55
#define TP_TRACE_ID 3
#define TP_PARENT_ID 36
#define TP_FLAGS 53

#define TS_MAX_MEMBERS 32
#define TS_MAX_KEY 256    /* simple-key: lcalpha 0*255(...) */
#define TS_MAX_TENANT 241 /* tenant-id: (lcalpha / DIGIT) 0*240(...) */
#define TS_MAX_SYSTEM 14  /* system-id: lcalpha 0*13(...) */
#define TS_MAX_VALUE 256  /* value: 0*255(chr) nblk-chr */

static bool is_ows(char c) { return c == ' ' || c == '\t'; }

/* Narrows [*b, *e) of s to leave out OWS at both ends.  Works on offsets so
 * that an empty value may come with a NULL pointer. */
static void trim_ows(const char *s, size_t *b, size_t *e)
{
    while (*b < *e && is_ows(s[*b]))
        (*b)++;
    while (*e > *b && is_ows(s[*e - 1]))
        (*e)--;
}

/* HEXDIGLC: upper-case "A"-"F" are not hex digits here, so "0A" is as
 * invalid as "0g". */
static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static bool hex_byte(const char *s, uint8_t *out)
{
    int hi = hexval(s[0]), lo = hexval(s[1]);

    if (hi < 0 || lo < 0)
        return false;
    *out = (uint8_t)(hi << 4 | lo);
    return true;
}

/* Copies an id of n hex digits and terminates it.  An id of all zeroes is
 * invalid (sections 3.2.2.3 and 3.2.2.4). */
static bool copy_id(char *dst, const char *src, size_t n)
{
    bool nonzero = false;

    for (size_t i = 0; i < n; i++) {
        if (hexval(src[i]) < 0)
            return false;
        nonzero |= src[i] != '0';
        dst[i] = src[i];
    }
    dst[n] = '\0';
    return nonzero;
}

bool cd_traceparent_parse(const char *value, size_t len, cd_traceparent_t *out)
{
    size_t b = 0, e = len;
    cd_traceparent_t tp;

    trim_ows(value, &b, &e);
    if (e - b < TP_LEN)
        return false;
    const char *s = value + b;
    len = e - b;

    if (!hex_byte(s, &tp.version) || tp.version == 0xff)
        return false;
    /* Version 00 is exactly 55 characters.  A higher version is read by its
     * version-00 prefix (section 3.2.4); whatever it appends must begin with
     * a dash and is never looked at, since we know nothing of its fields. */
    if (tp.version == 0 ? len != TP_LEN : len > TP_LEN && s[TP_LEN] != '-')
        return false;
    if (s[TP_TRACE_ID - 1] != '-' || s[TP_PARENT_ID - 1] != '-' || s[TP_FLAGS - 1] != '-')
        return false;
    if (!copy_id(tp.trace_id, s + TP_TRACE_ID, 32) ||
        !copy_id(tp.parent_id, s + TP_PARENT_ID, 16))
        return false;
    /* All eight bits are kept as received; only "sampled" has a meaning, and
     * masking is up to whoever propagates them. */
    if (!hex_byte(s + TP_FLAGS, &tp.flags))
        return false;

    /* Only a valid value reaches the caller's struct. */
    *out = tp;
    return true;
}

static bool is_lcalpha(char c) { return c >= 'a' && c <= 'z'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static bool is_keychar(char c)
{
    return is_lcalpha(c) || is_digit(c) || c == '_' || c == '-' || c == '*' || c == '/';
}

/* One part of a key: 1 to max characters, the first a lower-case letter (or
 * a digit, for a tenant-id), the rest keychars.  '@' is not a keychar, so a
 * second '@' makes the key invalid. */
static bool key_part(const char *s, size_t n, size_t max, bool digit_first)
{
    if (n == 0 || n > max)
        return false;
    if (!is_lcalpha(s[0]) && !(digit_first && is_digit(s[0])))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!is_keychar(s[i]))
            return false;
    return true;
}

/* key = simple-key / multi-tenant-key (section 3.3.1.3.1). */
static bool valid_key(const char *s, size_t n)
{
    const char *at = memchr(s, '@', n);

    if (!at)
        return key_part(s, n, TS_MAX_KEY, false);
    size_t tenant = (size_t)(at - s);
    return key_part(s, tenant, TS_MAX_TENANT, true) &&
           key_part(at + 1, n - tenant - 1, TS_MAX_SYSTEM, false);
}

/* value = 0*255(chr) nblk-chr: printable ASCII but ',' and '='.  The member
 * was cut at a comma and trimmed of OWS, so a ',' or a trailing space (the
 * one chr that is not an nblk-chr) cannot reach this point. */
static bool valid_value(const char *s, size_t n)
{
    if (n == 0 || n > TS_MAX_VALUE)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e || s[i] == '=')
            return false;
    return true;
}

bool cd_tracestate_valid(const char *value, size_t len)
{
    struct {
        const char *s;
        size_t n;
    } keys[TS_MAX_MEMBERS];
    size_t nkeys = 0, start = 0;

    for (size_t i = 0; i <= len; i++) {
        if (i < len && value[i] != ',')
            continue;
        size_t b = start, e = i;
        start = i + 1;
        trim_ows(value, &b, &e);
        /* Empty and whitespace-only members are allowed (section 3.3.1.1):
         * they are what joining several header fields leaves behind, so
         * they do not count towards the 32. */
        if (b == e)
            continue;

        const char *m = value + b;
        size_t n = e - b;
        const char *eq = memchr(m, '=', n);
        if (!eq)
            return false;
        size_t klen = (size_t)(eq - m);
        if (!valid_key(m, klen) || !valid_value(eq + 1, n - klen - 1))
            return false;

        if (nkeys == TS_MAX_MEMBERS)
            return false;
        /* One entry per key (section 3.3.1.4); a list that breaks this is
         * refused whole rather than guessing which entry is current. */
        for (size_t k = 0; k < nkeys; k++)
            if (keys[k].n == klen && memcmp(keys[k].s, m, klen) == 0)
                return false;
        keys[nkeys].s = m;
        keys[nkeys].n = klen;
        nkeys++;
    }
    return true;
}
