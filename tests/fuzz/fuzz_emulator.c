/*
 * fuzz_emulator.c -- libFuzzer target over the emulator's plain JSON parser
 * (services/emulator/plainjson.c) and the string printer it stores
 * customDimensions with (cd_json_put_string), checked against cJSON, which
 * the emulator trusts for everything the parser declines:
 *
 *   - the input, as one item's text, is parsed both ways: a text cJSON
 *     refuses must be declined, and an accepted one must give the very tree
 *     cJSON gives (tests/emulator/json_same.c);
 *   - the input up to its first NUL, as a string, is printed both ways and
 *     the texts must be equal.
 *
 * A broken promise ends in __builtin_trap(), which libFuzzer reports as a
 * crash with the input saved.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "convdiag/buf.h"
#include "convdiag/json.h"
#include "json_same.h"
#include "plainjson.h"

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "fuzz_emulator: invariant violated at %s:%d: %s: ", __FILE__,  \
                    __LINE__, #cond);                                                      \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fputc('\n', stderr);                                                           \
            __builtin_trap();                                                              \
        }                                                                                  \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exact size, no NUL after it: a read past the end is AddressSanitizer's. */
    char *text = malloc(size ? size : 1), why[512];
    CHECK(text != NULL, "out of memory");
    memcpy(text, data, size);

    cJSON *plain = emu_plainjson_parse(text, size);
    if (plain) {
        const char *end = NULL;
        cJSON *ref = cJSON_ParseWithLengthOpts(text, size, &end, false);
        CHECK(ref && end == text + size, "accepted a text cJSON refuses");
        CHECK(json_same(plain, ref, why, sizeof(why)), "%s", why);
        cJSON_Delete(ref);
        cJSON_Delete(plain);
    }

    size_t n = strnlen(text, size);
    char *s = malloc(n + 1);
    CHECK(s != NULL, "out of memory");
    memcpy(s, text, n);
    s[n] = '\0';
    cJSON *item = cJSON_CreateString(s);
    char *expected = item ? cJSON_PrintUnformatted(item) : NULL;
    cd_buf_t b;
    cd_buf_init(&b);
    cd_json_put_string(&b, s);
    CHECK(expected && !b.oom && b.len == strlen(expected) && memcmp(b.data, expected, b.len) == 0,
          "printed %s, cJSON %s", b.data ? b.data : "(nothing)", expected ? expected : "(nothing)");
    cd_buf_fini(&b);
    free(expected);
    cJSON_Delete(item);
    free(s);
    free(text);
    return 0;
}
