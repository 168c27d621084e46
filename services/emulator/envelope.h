/*
 * envelope.h -- one telemetry item judged the way the ingestion service
 * judges it: required fields, types, the instrumentation key, the time
 * window, field lengths and the 64 kB item limit.  Refusals read like the
 * service's own ("109: Field 'time' on type 'Envelope' is required but
 * missing or empty. ...") where its wording is known.
 */
#ifndef EMU_ENVELOPE_H
#define EMU_ENVELOPE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "convdiag/common.h"
#include "ikey.h"
#include "store.h"

/* Published limits of Application Insights. */
#define EMU_ITEM_MAX_BYTES 65536
#define EMU_BATCH_MAX_ITEMS 64000
#define EMU_TIME_MAX_AGE_MS 172800000LL   /* 48 hours */
#define EMU_TIME_MAX_AHEAD_MS 7200000LL   /* 2 hours */

/* What the store keeps of a valid envelope; pointers into the parsed JSON. */
typedef struct emu_envelope {
    const char *ikey;
    int64_t time_us;
    int severity; /* -1: not given */
    uint32_t item_count; /* 100 / sampleRate, the portal's itemCount; 1 unsampled */
    const cJSON *properties; /* NULL: not given */
    const char *fields[EMU_F_COUNT]; /* EMU_F_DIMENSIONS is left NULL: printed from properties */
} emu_envelope_t;

/*
 * Parses one item (text[0..len), without surrounding blanks).  False when it
 * is not one JSON value; *root is then NULL.  Otherwise the caller frees
 * *root with cJSON_Delete.
 */
bool emu_envelope_parse(const char *text, size_t len, cJSON **root);

/*
 * Judges the item text[0..len), parsed into root, at now_us.  True with *env
 * filled; false with the reason in err, always a 400 for the item.
 */
bool emu_envelope_check(const char *text, size_t len, const cJSON *root,
                        const emu_ikeys_t *ikeys, int64_t now_us, emu_envelope_t *env,
                        cd_err_t *err);

#endif
