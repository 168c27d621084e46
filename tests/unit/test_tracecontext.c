/*
 * test_tracecontext.c -- traceparent and tracestate values against W3C Trace
 * Context Level 1 and the cases of its test suite (github.com/w3c/trace-context).
 *
 * A row's name says where it comes from:
 *   "test.py <test> #n"             the n-th header value sent by that test of
 *                                   the suite's harness, test/test.py; where
 *                                   a test sends several tracestate fields,
 *                                   they are joined with "," as RFC 7230
 *                                   section 3.2.2 combines them
 *   "test_traceparent.py <test>"    the suite's own unit tests of its parser,
 *   "test_tracestate.py <test>"     test/tracecontext/
 *   "rec <section>"                 a rule or an example of the recommendation
 *
 * Every value is copied to a heap buffer of exactly its size, with no NUL,
 * so AddressSanitizer catches a read past the end.  A row may pass a length
 * shorter than its buffer: the parser must stop at the length.
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

#include "convdiag/tracecontext.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The ids of the suite's harness. */
#define TID "12345678901234567890123456789012"
#define PID "1234567890123456"
#define ZERO_TID "00000000000000000000000000000000"
#define ZERO_PID "0000000000000000"
#define FUTURE "-what-the-future-will-be-like"

/* The recommendation's examples (section 3.2.3). */
#define REC_TID "4bf92f3577b34da6a3ce929d0e0e4736"
#define REC_PID "00f067aa0ba902b7"

/* String literals of n copies of s, for the length limits. */
#define X2(s) s s
#define X4(s) X2(X2(s))
#define X8(s) X2(X4(s))
#define X16(s) X2(X8(s))
#define X32(s) X2(X16(s))
#define X64(s) X2(X32(s))
#define X128(s) X2(X64(s))
#define X256(s) X2(X128(s))

#define Z256 X256("z")
#define Z257 Z256 "z"
#define T241 X128("t") X64("t") X32("t") X16("t") "t"
#define T242 T241 "t"
#define V14 X8("v") X4("v") X2("v")
#define V15 V14 "v"
#define VALUE256 X256("x")
#define VALUE257 VALUE256 "x"
#define SP_VALUE256 " " X128("x") X64("x") X32("x") X16("x") X8("x") X4("x") X2("x") "x"

_Static_assert(sizeof(Z256) - 1 == 256, "Z256");
_Static_assert(sizeof(T241) - 1 == 241, "T241");
_Static_assert(sizeof(V14) - 1 == 14, "V14");
_Static_assert(sizeof(VALUE256) - 1 == 256, "VALUE256");
_Static_assert(sizeof(SP_VALUE256) - 1 == 256, "SP_VALUE256");

/* test_tracestate_all_allowed_characters */
#define ALL_KEYCHARS "abcdefghijklmnopqrstuvwxyz0123456789_-*/"
#define ALL_KEYCHARS_TENANT ALL_KEYCHARS "@a-z0-9_-*/"
/* 0x20-0x2B, 0x2D-0x3C, 0x3E-0x7E: printable ASCII but ',' and '=' */
#define ALL_VALUECHARS                                                                         \
    " !\"#$%&'()*+"                                                                            \
    "-./0123456789:;<"                                                                         \
    ">?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"

_Static_assert(sizeof(ALL_VALUECHARS) - 1 == 12 + 16 + 65, "ALL_VALUECHARS");

/* test_tracestate_member_count_limit, its four fields joined */
#define BAR01_10 "bar01=01,bar02=02,bar03=03,bar04=04,bar05=05," \
    "bar06=06,bar07=07,bar08=08,bar09=09,bar10=10"
#define BAR11_20 "bar11=11,bar12=12,bar13=13,bar14=14,bar15=15," \
    "bar16=16,bar17=17,bar18=18,bar19=19,bar20=20"
#define BAR21_30 "bar21=21,bar22=22,bar23=23,bar24=24,bar25=25," \
    "bar26=26,bar27=27,bar28=28,bar29=29,bar30=30"
#define BAR32 BAR01_10 "," BAR11_20 "," BAR21_30 "," "bar31=31,bar32=32"
#define BAR33 BAR32 ",bar33=33"

typedef struct tp_case {
    const char *name;
    const char *buf;
    size_t size; /* bytes in the buffer */
    size_t len;  /* bytes passed to the parser */
    bool valid;
    uint8_t version; /* when valid */
    const char *trace_id;
    const char *parent_id;
    uint8_t flags;
} tp_case_t;

#define TP_OK(n, s, v, t, p, f) {n, s, sizeof(s) - 1, sizeof(s) - 1, true, v, t, p, f}
#define TP_OK_LEN(n, s, l, v, t, p, f) {n, s, sizeof(s) - 1, l, true, v, t, p, f}
#define TP_BAD(n, s) {n, s, sizeof(s) - 1, sizeof(s) - 1, false, 0, NULL, NULL, 0}
#define TP_BAD_LEN(n, s, l) {n, s, sizeof(s) - 1, l, false, 0, NULL, NULL, 0}

static const tp_case_t tp_cases[] = {
    /* test/test.py */
    TP_OK("test.py test_traceparent_included_tracestate_missing", "00-" TID "-" PID "-01", 0x00,
          TID, PID, 0x01),
    TP_BAD("test.py test_traceparent_duplicated, fields joined",
           "00-12345678901234567890123456789011-" PID "-01,00-" TID "-" PID "-01"),
    TP_BAD("test.py test_traceparent_version_0x00 #1: trailing '.'", "00-" TID "-" PID "-01."),
    TP_BAD("test.py test_traceparent_version_0x00 #2: future fields on 00",
           "00-" TID "-" PID "-01" FUTURE),
    TP_OK("test.py test_traceparent_version_0xcc #1", "cc-" TID "-" PID "-01", 0xcc, TID, PID,
          0x01),
    TP_OK("test.py test_traceparent_version_0xcc #2: future fields", "cc-" TID "-" PID "-01" FUTURE,
          0xcc, TID, PID, 0x01),
    TP_BAD("test.py test_traceparent_version_0xcc #3: '.' after the flags",
           "cc-" TID "-" PID "-01.what-the-future-will-be-like"),
    TP_BAD("test.py test_traceparent_version_0xff", "ff-" TID "-" PID "-01"),
    TP_BAD("test.py test_traceparent_version_illegal_characters #1", ".0-" TID "-" PID "-01"),
    TP_BAD("test.py test_traceparent_version_illegal_characters #2", "0.-" TID "-" PID "-01"),
    TP_BAD("test.py test_traceparent_version_too_long #1", "000-" TID "-" PID "-01"),
    TP_BAD("test.py test_traceparent_version_too_long #2", "0000-" TID "-" PID "-01"),
    TP_BAD("test.py test_traceparent_version_too_short", "0-" TID "-" PID "-01"),
    TP_BAD("test.py test_traceparent_trace_id_all_zero", "00-" ZERO_TID "-" PID "-01"),
    TP_BAD("test.py test_traceparent_trace_id_illegal_characters #1",
           "00-.2345678901234567890123456789012-" PID "-01"),
    TP_BAD("test.py test_traceparent_trace_id_illegal_characters #2",
           "00-1234567890123456789012345678901.-" PID "-01"),
    TP_BAD("test.py test_traceparent_trace_id_too_long",
           "00-123456789012345678901234567890123-" PID "-01"),
    TP_BAD("test.py test_traceparent_trace_id_too_short",
           "00-1234567890123456789012345678901-" PID "-01"),
    TP_BAD("test.py test_traceparent_parent_id_all_zero", "00-" TID "-" ZERO_PID "-01"),
    TP_BAD("test.py test_traceparent_parent_id_illegal_characters #1",
           "00-" TID "-.234567890123456-01"),
    TP_BAD("test.py test_traceparent_parent_id_illegal_characters #2",
           "00-" TID "-123456789012345.-01"),
    TP_BAD("test.py test_traceparent_parent_id_too_long", "00-" TID "-12345678901234567-01"),
    TP_BAD("test.py test_traceparent_parent_id_too_short", "00-" TID "-123456789012345-01"),
    TP_BAD("test.py test_traceparent_trace_flags_illegal_characters #1", "00-" TID "-" PID "-.0"),
    TP_BAD("test.py test_traceparent_trace_flags_illegal_characters #2", "00-" TID "-" PID "-0."),
    TP_BAD("test.py test_traceparent_trace_flags_too_long", "00-" TID "-" PID "-001"),
    TP_BAD("test.py test_traceparent_trace_flags_too_short", "00-" TID "-" PID "-1"),
    TP_OK("test.py test_traceparent_ows_handling #1: leading space", " 00-" TID "-" PID "-01", 0x00,
          TID, PID, 0x01),
    TP_OK("test.py test_traceparent_ows_handling #2: leading tab", "\t00-" TID "-" PID "-01", 0x00,
          TID, PID, 0x01),
    TP_OK("test.py test_traceparent_ows_handling #3: trailing space", "00-" TID "-" PID "-01 ",
          0x00, TID, PID, 0x01),
    TP_OK("test.py test_traceparent_ows_handling #4: trailing tab", "00-" TID "-" PID "-01\t", 0x00,
          TID, PID, 0x01),
    TP_OK("test.py test_traceparent_ows_handling #5: both ends", "\t 00-" TID "-" PID "-01 \t",
          0x00, TID, PID, 0x01),
    TP_OK("test.py test_tracestate_included_traceparent_included: flags 00",
          "00-" TID "-" PID "-00", 0x00, TID, PID, 0x00),

    /* test/tracecontext/test_traceparent.py */
    TP_OK("test_traceparent.py test_from_string: version 01", "01-" TID "-" PID "-00", 0x01, TID,
          PID, 0x00),
    TP_OK("test_traceparent.py test_from_string: version 02", "02-" TID "-" PID "-00", 0x02, TID,
          PID, 0x00),
    TP_OK("test_traceparent.py test_from_string: flags 02", "00-" TID "-" PID "-02", 0x00, TID, PID,
          0x02),
    TP_OK("test_traceparent.py test_from_string: flags 03", "00-" TID "-" PID "-03", 0x00, TID, PID,
          0x03),
    TP_OK("test_traceparent.py test_from_string: flags ff", "00-" TID "-" PID "-ff", 0x00, TID, PID,
          0xff),
    TP_OK("test_traceparent.py test_from_string: trace-id all f",
          "00-ffffffffffffffffffffffffffffffff-" PID "-00", 0x00,
          "ffffffffffffffffffffffffffffffff", PID, 0x00),
    TP_OK("test_traceparent.py test_from_string: parent-id all f", "00-" TID "-ffffffffffffffff-00",
          0x00, TID, "ffffffffffffffff", 0x00),
    TP_OK("test_traceparent.py test_str: version 12, flags ff", "12-" TID "-" PID "-ff", 0x12, TID,
          PID, 0xff),
    TP_BAD("test_traceparent.py test_from_string: version ff, flags 00", "ff-" TID "-" PID "-00"),

    /* section 3.2.3: the examples */
    TP_OK("rec 3.2.3 example: sampled", "00-" REC_TID "-" REC_PID "-01", 0x00, REC_TID, REC_PID,
          0x01),
    TP_OK("rec 3.2.3 example: not sampled", "00-" REC_TID "-" REC_PID "-00", 0x00, REC_TID, REC_PID,
          0x00),

    /* section 3.2.2: HEXDIGLC, lower case only */
    TP_BAD("rec 3.2.2: upper-case version", "0A-" TID "-" PID "-01"),
    TP_BAD("rec 3.2.2: upper-case future version", "CC-" TID "-" PID "-01"),
    TP_BAD("rec 3.2.2: upper-case version FF", "FF-" TID "-" PID "-01"),
    TP_BAD("rec 3.2.2: upper-case trace-id",
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-" REC_PID "-01"),
    TP_BAD("rec 3.2.2: one upper-case digit in trace-id",
           "00-4bf92f3577b34da6a3ce929d0e0e473F-" REC_PID "-01"),
    TP_BAD("rec 3.2.2: upper-case parent-id", "00-" REC_TID "-00F067AA0BA902B7-01"),
    TP_BAD("rec 3.2.2: upper-case flags", "00-" TID "-" PID "-0F"),
    TP_BAD("rec 3.2.2: non-hex letter g in trace-id",
           "00-g2345678901234567890123456789012-" PID "-01"),
    TP_BAD("rec 3.2.2: non-hex letter in parent-id", "00-" TID "-123456789012345z-01"),
    TP_BAD("rec 3.2.2: non-hex letter in flags", "00-" TID "-" PID "-0x"),
    TP_BAD("rec 3.2.2: space inside trace-id", "00-1234567890123456 890123456789012-" PID "-01"),
    TP_BAD("rec 3.2.2: NUL inside trace-id", "00-1234567890123456\0" "890123456789012-" PID "-01"),
    TP_BAD("rec 3.2.2: non-ASCII byte in parent-id", "00-" TID "-12345678901234\xc3\xa9-01"),

    /* section 3.2.2: the dash and nothing else */
    TP_BAD("rec 3.2.2: '_' after version", "00_" TID "-" PID "-01"),
    TP_BAD("rec 3.2.2: '_' after trace-id", "00-" TID "_" PID "-01"),
    TP_BAD("rec 3.2.2: '_' after parent-id", "00-" TID "-" PID "_01"),
    TP_BAD("rec 3.2.2: space instead of dash", "00 " TID " " PID " 01"),
    TP_BAD("rec 3.2.2: dashes shifted", "00--" TID PID "-01"),
    TP_BAD("rec 3.2.4: future version, '_' after trace-id", "cc-" TID "_" PID "-01"),

    /* section 3.2.2: zero ids in every version */
    TP_BAD("rec 3.2.2: both ids zero", "00-" ZERO_TID "-" ZERO_PID "-01"),
    TP_BAD("rec 3.2.4: future version, trace-id zero", "cc-" ZERO_TID "-" PID "-01"),
    TP_BAD("rec 3.2.4: future version, parent-id zero", "cc-" TID "-" ZERO_PID "-01" FUTURE),
    TP_OK("rec 3.2.2: trace-id of one non-zero digit",
          "00-00000000000000000000000000000001-" PID "-00", 0x00,
          "00000000000000000000000000000001", PID, 0x00),
    TP_OK("rec 3.2.2: parent-id of one non-zero digit", "00-" TID "-1000000000000000-00", 0x00, TID,
          "1000000000000000", 0x00),

    /* section 3.2.2: version 00 is 55 characters */
    TP_BAD("rec 3.2.2: empty", ""),
    TP_BAD("rec 3.2.2: only OWS", " \t "),
    TP_BAD("rec 3.2.2: 54 characters", "00-" TID "-" PID "-0"),
    TP_BAD("rec 3.2.2: 56 characters, trailing dash", "00-" TID "-" PID "-01-"),
    TP_BAD("rec 3.2.2: 56 characters, trailing digit", "00-" TID "-" PID "-010"),
    TP_BAD("rec 3.2.2: OWS inside, before the flags", "00-" TID "-" PID "- 01"),
    TP_BAD("rec 3.2.2: CR LF is not OWS", "00-" TID "-" PID "-01\r\n"),
    TP_BAD("rec 3.2.2: leading newline is not OWS", "\n00-" TID "-" PID "-01"),
    TP_BAD("rec 3.2.2: OWS then a character", "00-" TID "-" PID "-01 x"),

    /* section 3.2.4: versioning */
    TP_OK("rec 3.2.4: version fe, the highest", "fe-" TID "-" PID "-01", 0xfe, TID, PID, 0x01),
    TP_OK("rec 3.2.4: future version, a dash and nothing more", "cc-" TID "-" PID "-01-", 0xcc, TID,
          PID, 0x01),
    TP_OK("rec 3.2.4: future fields are not parsed", "cc-" TID "-" PID "-01-XYZ.not ours!", 0xcc,
          TID, PID, 0x01),
    TP_OK("rec 3.2.4: future version with OWS around it", " cc-" TID "-" PID "-09" FUTURE "\t",
          0xcc, TID, PID, 0x09),
    TP_BAD("rec 3.2.4: future version shorter than 55", "cc-" TID "-" PID "-1"),
    TP_BAD("rec 3.2.4: future version without flags", "cc-" TID "-" PID),
    TP_BAD("rec 3.2.4: future version, three flag digits", "cc-" TID "-" PID "-012"),
    TP_BAD("rec 3.2.4: version ff with future fields", "ff-" TID "-" PID "-01" FUTURE),

    /* (ptr, len): the length ends the value, not a NUL */
    TP_OK_LEN("rec 3.2.2: longer buffer, len 55", "00-" TID "-" PID "-01" "00-" TID "-" PID "-01",
              55, 0x00, TID, PID, 0x01),
    TP_OK_LEN("rec 3.2.4: future version, its bad tail beyond len", "cc-" TID "-" PID "-01.x", 55,
              0xcc, TID, PID, 0x01),
    TP_BAD_LEN("rec 3.2.2: valid value cut to 54", "00-" TID "-" PID "-01", 54),
    TP_BAD_LEN("rec 3.2.2: len 0 of a valid buffer", "00-" TID "-" PID "-01", 0),
};

typedef struct ts_case {
    const char *name;
    const char *buf;
    size_t size;
    size_t len;
    bool valid;
} ts_case_t;

#define TS_OK(n, s) {n, s, sizeof(s) - 1, sizeof(s) - 1, true}
#define TS_BAD(n, s) {n, s, sizeof(s) - 1, sizeof(s) - 1, false}
#define TS_LEN(n, s, l, v) {n, s, sizeof(s) - 1, l, v}

static const ts_case_t ts_cases[] = {
    /* test/test.py */
    TS_OK("test.py test_tracestate_included_traceparent_missing #1", "foo=1"),
    TS_OK("test.py test_tracestate_included_traceparent_missing #2", "foo=1,bar=2"),
    TS_OK("test.py test_tracestate_header_name_valid_casing", "foo=1"),
    TS_OK("test.py test_tracestate_empty_header #1", ""),
    TS_OK("test.py test_tracestate_empty_header #2, fields joined", "foo=1,"),
    TS_OK("test.py test_tracestate_empty_header #3, fields joined", ",foo=1"),
    TS_OK("test.py test_tracestate_multiple_headers_different_keys, fields joined",
          "foo=1,bar=2,rojo=1,congo=2,baz=3"),
    TS_BAD("test.py test_tracestate_duplicated_keys #1", "foo=1,foo=1"),
    TS_BAD("test.py test_tracestate_duplicated_keys #2", "foo=1,foo=2"),
    TS_BAD("test.py test_tracestate_duplicated_keys #3, fields joined with OWS", "foo=1, foo=1"),
    TS_BAD("test.py test_tracestate_duplicated_keys #4, fields joined with OWS", "foo=1, foo=2"),
    TS_OK("test.py test_tracestate_all_allowed_characters #1", ALL_KEYCHARS "=" ALL_VALUECHARS),
    TS_OK("test.py test_tracestate_all_allowed_characters #2",
          ALL_KEYCHARS_TENANT "=" ALL_VALUECHARS),
    TS_OK("test.py test_tracestate_ows_handling #1", "foo=1 \t , \t bar=2, \t baz=3"),
    TS_OK("test.py test_tracestate_ows_handling #2", "foo=1\t \t,\t \tbar=2,\t \tbaz=3"),
    TS_OK("test.py test_tracestate_ows_handling #3", " foo=1"),
    TS_OK("test.py test_tracestate_ows_handling #4", "\tfoo=1"),
    TS_OK("test.py test_tracestate_ows_handling #5", "foo=1 "),
    TS_OK("test.py test_tracestate_ows_handling #6", "foo=1\t"),
    TS_OK("test.py test_tracestate_ows_handling #7", "\t foo=1 \t"),
    TS_BAD("test.py test_tracestate_key_illegal_characters #1", "foo =1"),
    TS_BAD("test.py test_tracestate_key_illegal_characters #2", "FOO=1"),
    TS_BAD("test.py test_tracestate_key_illegal_characters #3", "foo.bar=1"),
    TS_BAD("test.py test_tracestate_key_illegal_vendor_format #1", "foo@=1,bar=2"),
    TS_BAD("test.py test_tracestate_key_illegal_vendor_format #2", "@foo=1,bar=2"),
    TS_BAD("test.py test_tracestate_key_illegal_vendor_format #3", "foo@@bar=1,bar=2"),
    TS_BAD("test.py test_tracestate_key_illegal_vendor_format #4", "foo@bar@baz=1,bar=2"),
    TS_OK("test.py test_tracestate_member_count_limit #1: 32, fields joined", BAR32),
    TS_BAD("test.py test_tracestate_member_count_limit #2: 33, fields joined", BAR33),
    TS_OK("test.py test_tracestate_key_length_limit #1: key of 256", "foo=1," Z256 "=1"),
    TS_BAD("test.py test_tracestate_key_length_limit #2: key of 257", "foo=1," Z257 "=1"),
    TS_OK("test.py test_tracestate_key_length_limit #3: tenant 241, system 14",
          "foo=1," T241 "@" V14 "=1"),
    TS_BAD("test.py test_tracestate_key_length_limit #4: tenant 242", "foo=1," T242 "@v=1"),
    TS_BAD("test.py test_tracestate_key_length_limit #5: system 15", "foo=1,t@" V15 "=1"),
    TS_BAD("test.py test_tracestate_value_illegal_characters #1", "foo=bar=baz"),
    TS_BAD("test.py test_tracestate_value_illegal_characters #2", "foo=,bar=3"),

    /* test/tracecontext/test_tracestate.py */
    TS_OK("test_tracestate.py test_ctor_with_string", "foo=1,bar=2,baz=3"),
    TS_BAD("test_tracestate.py test_ctor_with_string: no '='", "foobarbaz"),
    TS_OK("test_tracestate.py test_delimiter #1", "foo=1, \t bar=2"),
    TS_OK("test_tracestate.py test_delimiter #2", "foo=1,\t \tbar=2"),
    TS_OK("test_tracestate.py test_method_repr", "foo=1, bar=2, baz=3"),
    TS_OK("test_tracestate.py test_method_is_valid: value of 256", "foo=" VALUE256),
    TS_OK("test_tracestate.py test_method_is_valid: over 512 characters is still a list",
          "bar=" VALUE256 ",foo=" VALUE256),
    TS_BAD("test_tracestate.py test_setitem: value of 257", "foo=" VALUE257),
    TS_BAD("test_tracestate.py test_setitem: empty key", "=abc"),
    TS_BAD("test_tracestate.py test_setitem: key @vendor", "@vendor=abracadabra"),
    TS_BAD("test_tracestate.py test_setitem: key special.vendor", "special.vendor=abracadabra"),
    TS_BAD("test_tracestate.py test_setitem: key of 257", Z257 "=abracadabra"),
    TS_OK("test_tracestate.py test_setitem: key special@vendor", "special@vendor=abracadabra"),
    /* test_setitem also accepts these four, which only the Level 2 draft's
     * key grammar allows; Level 1 and test.py's vendor-format cases refuse them. */
    TS_BAD("test_tracestate.py test_setitem: key special@ (Level 2 only)", "special@=abracadabra"),
    TS_BAD("test_tracestate.py test_setitem: key special@@vendor (Level 2 only)",
           "special@@vendor=abracadabra"),
    TS_BAD("test_tracestate.py test_setitem: key special@vendor@tenant (Level 2 only)",
           "special@vendor@tenant=abracadabra"),
    TS_BAD("test_tracestate.py test_setitem: key 1special (Level 2 only)", "1special=abracadabra"),

    /* section 3.3.2 and 3.3.1.4: the examples */
    TS_OK("rec 3.3.2 example: single tracing system", "rojo=00f067aa0ba902b7"),
    TS_OK("rec 3.3.2 example: multiple tracing systems", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
    TS_OK("rec 3.1 example: congo added on the left", "congo=ucfJifl5GOE,rojo=00f067aa0ba902b7"),
    TS_BAD("rec 3.3.1.4 counter-example: congo twice",
           "congo=congosFirstPosition,rojo=rojosFirstPosition,congo=congosSecondPosition"),

    /* section 3.3.1.1 and 3.3.1.2: list, empty members, OWS */
    TS_OK("rec 3.3.1.1: only OWS", " \t "),
    TS_OK("rec 3.3.1.1: only a comma", ","),
    TS_OK("rec 3.3.1.1: empty members between", "foo=1,,bar=2"),
    TS_OK("rec 3.3.1.1: whitespace-only members", " , foo=1 ,\t, bar=2 , "),
    TS_OK("rec 3.3.1.1: 32 members and empty ones", ", ," BAR32 ",,\t,"),
    TS_BAD("rec 3.3.1.1: 33 members among empty ones", "," BAR32 ",, bar33=33 ,"),
    TS_BAD("rec 3.3.1.1: 33rd member is a duplicate", BAR32 ",bar01=01"),
    TS_BAD("rec 3.3.1.1: a member without '='", "foo=1,bar"),
    TS_BAD("rec 3.3.1.1: only '='", "="),
    TS_BAD("rec 3.3.1.1: newline is not OWS", "foo=1\n,bar=2"),
    TS_BAD("rec 3.3.1.1: CR LF at the end is not OWS", "foo=1\r\n"),
    TS_BAD("rec 3.3.1.1: OWS before '='", "foo\t=1"),

    /* section 3.3.1.3.1: key */
    TS_OK("rec 3.3.1.3.1: simple-key of one letter", "a=1"),
    TS_OK("rec 3.3.1.3.1: simple-key, every keychar", "a0_-*/z9=1"),
    TS_OK("rec 3.3.1.3.1: multi-tenant key, shortest", "a@b=1"),
    TS_OK("rec 3.3.1.3.1: tenant-id may begin with a digit", "1a2b3c@dt=1"),
    TS_OK("rec 3.3.1.3.1: tenant-id of one digit", "9@x=1"),
    TS_BAD("rec 3.3.1.3.1: simple-key may not begin with a digit", "1foo=1"),
    TS_BAD("rec 3.3.1.3.1: system-id may not begin with a digit", "foo@1bar=1"),
    TS_BAD("rec 3.3.1.3.1: system-id may not begin with '_'", "foo@_bar=1"),
    TS_BAD("rec 3.3.1.3.1: key may not begin with '_'", "_foo=1"),
    TS_BAD("rec 3.3.1.3.1: key may not begin with '*'", "*=1"),
    TS_BAD("rec 3.3.1.3.1: tenant-id may not begin with '-'", "-t@v=1"),
    TS_BAD("rec 3.3.1.3.1: upper case in system-id", "foo@Bar=1"),
    TS_BAD("rec 3.3.1.3.1: non-ASCII in key", "f\xc3\xb6o=1"),
    TS_OK("rec 3.3.1.3.1: simple-key of 256 alone", Z256 "=1"),
    TS_OK("rec 3.3.1.3.1: tenant-id of 241 alone", T241 "@v=1"),
    TS_OK("rec 3.3.1.3.1: system-id of 14 alone", "t@" V14 "=1"),
    TS_BAD("rec 3.3.1.3.1: tenant 242 and system 14", T242 "@" V14 "=1"),
    TS_BAD("rec 3.3.1.3.1: tenant 241 and system 15", T241 "@" V15 "=1"),

    /* section 3.3.1.3.2: value */
    TS_OK("rec 3.3.1.3.2: one character", "foo=x"),
    TS_OK("rec 3.3.1.3.2: inner spaces", "foo=a b  c"),
    TS_OK("rec 3.3.1.3.2: leading space kept, 256 with it", "foo=" SP_VALUE256),
    TS_BAD("rec 3.3.1.3.2: leading space makes 257", "foo= " VALUE256),
    TS_OK("rec 3.3.1.3.2: trailing OWS is not part of 256", "foo=" VALUE256 " \t"),
    TS_BAD("rec 3.3.1.3.2: only spaces", "foo=   "),
    TS_BAD("rec 3.3.1.3.2: tab inside", "foo=a\tb"),
    TS_BAD("rec 3.3.1.3.2: DEL", "foo=a\x7f"),
    TS_BAD("rec 3.3.1.3.2: control character", "foo=\x1f"),
    TS_BAD("rec 3.3.1.3.2: NUL", "foo=a\0b"),
    TS_BAD("rec 3.3.1.3.2: non-ASCII", "foo=caf\xc3\xa9"),

    /* section 3.3.1.4: one entry per key */
    TS_OK("rec 3.3.1.4: a key and a longer one sharing its start", "foo=1,foo1=2,fo=3"),
    TS_OK("rec 3.3.1.4: same tenant, other systems", "t@a=1,t@b=2"),
    TS_OK("rec 3.3.1.4: same value, other keys", "a=1,b=1"),
    TS_BAD("rec 3.3.1.4: multi-tenant key twice", "t@a=1,u@a=1,t@a=2"),
    TS_BAD("rec 3.3.1.4: duplicate far apart", "foo=1," BAR01_10 ",foo=2"),

    /* (ptr, len): the length ends the value, not a NUL */
    TS_LEN("rec 3.3: the duplicate lies beyond len", "foo=1,foo=2", 5, true),
    TS_LEN("rec 3.3: the bad member lies beyond len", "foo=1,FOO=2", 6, true),
    TS_LEN("rec 3.3: len cuts the value to nothing", "foo=bar", 4, false),
    TS_LEN("rec 3.3: len 0 of a valid buffer", "foo=1", 0, true),
};

static char *copy_exact(const char *s, size_t n)
{
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, s, n);
    return copy;
}

static void test_traceparent_case(void **state)
{
    const tp_case_t *c = *state;
    char *buf = copy_exact(c->buf, c->size);
    cd_traceparent_t tp;

    memset(&tp, 0x55, sizeof(tp));
    bool valid = cd_traceparent_parse(buf, c->len, &tp);
    free(buf);
    if (valid != c->valid)
        print_message("[%s] expected %s\n", c->name, c->valid ? "valid" : "invalid");
    assert_int_equal(valid, c->valid);
    if (!valid)
        return;
    assert_int_equal(tp.version, c->version);
    assert_memory_equal(tp.trace_id, c->trace_id, sizeof(tp.trace_id)); /* with its NUL */
    assert_memory_equal(tp.parent_id, c->parent_id, sizeof(tp.parent_id));
    assert_int_equal(tp.flags, c->flags);
}

static void test_tracestate_case(void **state)
{
    const ts_case_t *c = *state;
    char *buf = copy_exact(c->buf, c->size);

    bool valid = cd_tracestate_valid(buf, c->len);
    free(buf);
    if (valid != c->valid)
        print_message("[%s] expected %s\n", c->name, c->valid ? "valid" : "invalid");
    assert_int_equal(valid, c->valid);
}

/* One cmocka test per row, named after it. */
static int run_table(const char *group, const void *rows, size_t size, size_t n,
                     CMUnitTestFunction fn)
{
    struct CMUnitTest *tests = calloc(n, sizeof(*tests));
    if (!tests)
        return 1;
    for (size_t i = 0; i < n; i++) {
        const void *row = (const char *)rows + i * size;
        tests[i].name = *(const char *const *)row; /* every row begins with its name */
        tests[i].test_func = fn;
        tests[i].initial_state = (void *)row;
    }
    int failed = _cmocka_run_group_tests(group, tests, n, NULL, NULL);
    free(tests);
    return failed;
}

int main(void)
{
    int failed = run_table("traceparent", tp_cases, sizeof(tp_cases[0]), ARRAY_LEN(tp_cases),
                           test_traceparent_case);
    failed += run_table("tracestate", ts_cases, sizeof(ts_cases[0]), ARRAY_LEN(ts_cases),
                        test_tracestate_case);
    return failed;
}
