/* strmap.c -- string -> index map with linear probing; see strmap.h. */
#include "convdiag/strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void cd_strmap_init(cd_strmap_t *m) { memset(m, 0, sizeof(*m)); }

void cd_strmap_fini(cd_strmap_t *m)
{
    free(m->keys);
    free(m->values);
    memset(m, 0, sizeof(*m));
}

void cd_strmap_clear(cd_strmap_t *m)
{
    if (m->keys)
        memset(m->keys, 0, m->cap * sizeof(*m->keys));
    m->count = 0;
}

/* FNV-1a: keys are short identifiers. */
static size_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)h;
}

static size_t slot_of(const cd_strmap_t *m, const char *key)
{
    size_t i = hash(key) & (m->cap - 1);
    while (m->keys[i] && strcmp(m->keys[i], key) != 0)
        i = (i + 1) & (m->cap - 1);
    return i;
}

bool cd_strmap_get(const cd_strmap_t *m, const char *key, size_t *value)
{
    if (!m->cap)
        return false;
    size_t i = slot_of(m, key);
    if (!m->keys[i])
        return false;
    *value = m->values[i];
    return true;
}

/* Keeps the table at most half full. */
static bool grow(cd_strmap_t *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    cd_strmap_t n = {calloc(cap, sizeof(*n.keys)), malloc(cap * sizeof(*n.values)), 0, cap};
    if (!n.keys || !n.values) {
        free(n.keys);
        free(n.values);
        return false;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i]) {
            size_t j = slot_of(&n, m->keys[i]);
            n.keys[j] = m->keys[i];
            n.values[j] = m->values[i];
        }
    }
    n.count = m->count;
    cd_strmap_fini(m);
    *m = n;
    return true;
}

int cd_strmap_add(cd_strmap_t *m, const char *key, size_t value, size_t *existing)
{
    if ((m->count + 1) * 2 > m->cap && !grow(m))
        return -1;
    size_t i = slot_of(m, key);
    if (m->keys[i]) {
        if (existing)
            *existing = m->values[i];
        return 0;
    }
    m->keys[i] = key;
    m->values[i] = value;
    m->count++;
    return 1;
}
