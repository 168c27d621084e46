/*
 * plainjson.h -- cJSON's parsing, done faster for the plain JSON exporters
 * write, with results equal to cJSON's.
 *
 * Parsing with cJSON took two fifths of the emulator's time on a typical
 * envelope, its allocations already in an arena: three strncmp calls before
 * every value, every string read twice byte by byte, strtod for every
 * number.  emu_plainjson_parse reads an object of plain JSON, builds the
 * very tree cJSON would build (with cJSON_malloc, so cJSON_Delete frees it),
 * and declines everything else: \u escapes, control characters, numbers
 * other than integers of up to 15 digits, arrays, deep nesting, text that is
 * not JSON.  What it declines goes to cJSON, which judges it as before, so
 * what is accepted does not change.
 */
#ifndef EMU_PLAINJSON_H
#define EMU_PLAINJSON_H

#include <cjson/cJSON.h>
#include <stddef.h>

/*
 * The object text[0..len) (nothing before or after it), as
 * cJSON_ParseWithLengthOpts parses it; NULL when declined (or memory runs
 * out): cJSON is then to parse it.
 */
cJSON *emu_plainjson_parse(const char *text, size_t len);

#endif
