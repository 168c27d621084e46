/* strmap.h -- a map from NUL-terminated strings to indexes, open addressing.
 * Keys are borrowed: they must outlive their entries. */
#ifndef CONVDIAG_STRMAP_H
#define CONVDIAG_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct cd_strmap {
    const char **keys;
    size_t *values;
    size_t count;
    size_t cap; /* a power of two, or 0 */
} cd_strmap_t;

void cd_strmap_init(cd_strmap_t *m);
void cd_strmap_fini(cd_strmap_t *m);
void cd_strmap_clear(cd_strmap_t *m);

/* True and *value set when key is present. */
bool cd_strmap_get(const cd_strmap_t *m, const char *key, size_t *value);
/* Adds key -> value unless key is present (then *existing gets its value).
 * Returns 1 when added, 0 when present, -1 when out of memory. */
int cd_strmap_add(cd_strmap_t *m, const char *key, size_t value, size_t *existing);

#endif
