/*
 * ikey.h -- the instrumentation keys the emulator accepts, and how a key is
 * shown in the logs: never in full.
 */
#ifndef EMU_IKEY_H
#define EMU_IKEY_H

#include <stdbool.h>
#include <stddef.h>

#include "convdiag/common.h"

/* The Envelope schema gives iKey at most 40 characters. */
#define EMU_IKEY_MAX 40

typedef struct emu_ikeys {
    char **keys;
    size_t count;
} emu_ikeys_t;

void emu_ikeys_fini(emu_ikeys_t *k);
cd_status_t emu_ikeys_add(emu_ikeys_t *k, const char *key, cd_err_t *err);

/*
 * With keys configured, true for one of them (instrumentation keys are case
 * insensitive); with none, true for any key of GUID form, so the emulator
 * works without setup.
 */
bool emu_ikeys_accepts(const emu_ikeys_t *k, const char *key);

/* The first 8 characters and "****": enough to tell keys apart in a log. */
#define EMU_IKEY_MASKED_MAX 16
const char *emu_ikey_mask(const char *key, char out[EMU_IKEY_MASKED_MAX]);

/*
 * Masks in place, after their first 8 characters, the runs of 32 or more
 * hexadecimal digits and dashes in a text bound for the log: an envelope name
 * carries its key without dashes.
 */
void emu_ikey_mask_within(char *text);

#endif
