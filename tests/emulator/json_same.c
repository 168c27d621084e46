/*
 * json_same.c -- two cJSON trees compared node by node; see json_same.h.
 */
#include "json_same.h"

#include <stdio.h>
#include <string.h>

static bool str_same(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static bool node_same(const cJSON *a, const cJSON *b, const char *path, char *why, size_t n)
{
    char sub[256];

    if (a->type != b->type || !str_same(a->string, b->string) ||
        !str_same(a->valuestring, b->valuestring) || a->valueint != b->valueint ||
        memcmp(&a->valuedouble, &b->valuedouble, sizeof(double)) != 0) {
        snprintf(why, n, "%s: type %d/%d, string \"%s\"/\"%s\", valueint %d/%d, valuedouble %.17g/%.17g",
                 path, a->type, b->type, a->valuestring ? a->valuestring : "(null)",
                 b->valuestring ? b->valuestring : "(null)", a->valueint, b->valueint,
                 a->valuedouble, b->valuedouble);
        return false;
    }
    const cJSON *ca = a->child, *cb = b->child, *last_a = NULL;
    for (; ca && cb; last_a = ca, ca = ca->next, cb = cb->next) {
        snprintf(sub, sizeof(sub), "%s.%s", path, ca->string ? ca->string : "[]");
        if (ca != a->child && ca->prev != last_a) {
            snprintf(why, n, "%s: prev is not the member before", sub);
            return false;
        }
        if (!node_same(ca, cb, sub, why, n))
            return false;
    }
    if (ca || cb) {
        snprintf(why, n, "%s: %s has more members", path, ca ? "the first" : "the second");
        return false;
    }
    /* cJSON keeps the last child in the first child's prev. */
    if (a->child && a->child->prev != last_a) {
        snprintf(why, n, "%s: the first member's prev is not the last member", path);
        return false;
    }
    return true;
}

bool json_same(const cJSON *a, const cJSON *b, char *why, size_t why_size)
{
    why[0] = '\0';
    if (!a || !b) {
        snprintf(why, why_size, "%s tree is missing", a ? "the second" : "the first");
        return false;
    }
    return node_same(a, b, "$", why, why_size);
}
