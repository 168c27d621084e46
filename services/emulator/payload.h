/*
 * payload.h -- a track request's body, from the bytes sent to the list of
 * items: Content-Encoding undone (gzip or identity), then the items found,
 * either as a JSON array of envelopes or as application/x-json-stream, one
 * envelope per line.  The format is told from the body itself, as SDKs label
 * both kinds loosely: a body starting with '[' is an array.
 */
#ifndef EMU_PAYLOAD_H
#define EMU_PAYLOAD_H

#include <stddef.h>

#include "convdiag/buf.h"
#include "convdiag/common.h"

typedef struct emu_span {
    const char *text;
    size_t len;
} emu_span_t;

typedef enum emu_format {
    EMU_FORMAT_STREAM, /* one envelope per line */
    EMU_FORMAT_ARRAY,  /* [envelope, envelope, ...] */
} emu_format_t;

typedef struct emu_payload {
    cd_buf_t inflated; /* the body once gzip is undone */
    const char *text;  /* what to read: inflated, or the body as sent */
    size_t len;
    emu_format_t format;
    emu_span_t *items; /* each envelope's text, without surrounding blanks */
    size_t count, cap;
} emu_payload_t;

void emu_payload_init(emu_payload_t *p);
void emu_payload_fini(emu_payload_t *p);

/*
 * Undoes encoding (the Content-Encoding header, NULL when absent).  Returns 0,
 * or the status to answer with err set: 400 for a body that is not gzip, 413
 * past max_inflated, 415 for another encoding, 500 when memory runs out.
 */
int emu_payload_decode(emu_payload_t *p, const char *encoding, const char *body, size_t len,
                       size_t max_inflated, cd_err_t *err);

/*
 * Finds the items.  Returns 0, or 400 with err when an array is not closed
 * or is followed by more text, or 500 when memory runs out.  The items
 * themselves are parsed later, one by one.
 */
int emu_payload_split(emu_payload_t *p, cd_err_t *err);

#endif
