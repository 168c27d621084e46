/*
 * tracecontext.h -- W3C Trace Context (https://www.w3.org/TR/trace-context/):
 * the traceparent and tracestate header values, parsed to the letter of the
 * recommendation.  A value that is not valid is ignored by the tagger (and an
 * invalid traceparent takes its tracestate with it).
 */
#ifndef CONVDIAG_TRACECONTEXT_H
#define CONVDIAG_TRACECONTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cd_traceparent {
    uint8_t version;
    char trace_id[33];  /* 32 lower-case hex digits, NUL-terminated */
    char parent_id[17]; /* 16 lower-case hex digits, NUL-terminated */
    uint8_t flags;
} cd_traceparent_t;

/*
 * Parses value[0..len) (not necessarily NUL-terminated), spaces and tabs at
 * either end ignored as HTTP would strip them.  Version 00 must be
 * exactly 55 characters; a higher version is parsed by its version-00 prefix
 * and must continue with '-' if longer; version ff, upper-case hex, all-zero
 * trace-id or parent-id are invalid.  Returns false for anything invalid.
 */
bool cd_traceparent_parse(const char *value, size_t len, cd_traceparent_t *out);

/* True when value[0..len) is a valid tracestate list (at most 32 members,
 * keys and values of the recommendation's grammar, no duplicate keys). */
bool cd_tracestate_valid(const char *value, size_t len);

#endif
