/* ikey.c -- accepted instrumentation keys and masking; see ikey.h. */
#include "ikey.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void emu_ikeys_fini(emu_ikeys_t *k)
{
    for (size_t i = 0; i < k->count; i++)
        free(k->keys[i]);
    free(k->keys);
    memset(k, 0, sizeof(*k));
}

cd_status_t emu_ikeys_add(emu_ikeys_t *k, const char *key, cd_err_t *err)
{
    if (!key[0] || strlen(key) > EMU_IKEY_MAX)
        return cd_err_set(err, CD_ERROR, "an instrumentation key has 1 to %d characters",
                          EMU_IKEY_MAX);
    char **keys = realloc(k->keys, (k->count + 1) * sizeof(*keys));
    if (!keys)
        return cd_err_set(err, CD_ERROR, "out of memory");
    k->keys = keys;
    if (!(k->keys[k->count] = strdup(key)))
        return cd_err_set(err, CD_ERROR, "out of memory");
    k->count++;
    return CD_OK;
}

/* 8-4-4-4-12 hexadecimal digits. */
static bool is_guid(const char *s)
{
    static const int groups[] = {8, 4, 4, 4, 12};
    for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
        for (int i = 0; i < groups[g]; i++, s++)
            if (!isxdigit((unsigned char)*s))
                return false;
        if (*s != (g + 1 < sizeof(groups) / sizeof(groups[0]) ? '-' : '\0'))
            return false;
        s++;
    }
    return true;
}

bool emu_ikeys_accepts(const emu_ikeys_t *k, const char *key)
{
    if (k->count == 0)
        return is_guid(key);
    for (size_t i = 0; i < k->count; i++)
        if (strcasecmp(k->keys[i], key) == 0)
            return true;
    return false;
}

const char *emu_ikey_mask(const char *key, char out[EMU_IKEY_MASKED_MAX])
{
    snprintf(out, EMU_IKEY_MASKED_MAX, "%.8s****", key);
    return out;
}

void emu_ikey_mask_within(char *text)
{
    for (char *p = text; *p;) {
        size_t run = strspn(p, "0123456789abcdefABCDEF-");
        if (run >= 32)
            memset(p + 8, '*', run - 8);
        p += run ? run : 1;
    }
}
