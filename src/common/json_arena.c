/* json_arena.c -- bump allocation for cJSON trees; see json_arena.h. */
#include "convdiag/json_arena.h"

#include <cjson/cJSON.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>

/* An event's tree takes a few kB: a chunk holds a few dozen of them. */
#define CHUNK_SIZE (128 * 1024)
#define ALIGN alignof(max_align_t)

struct cd_json_chunk {
    cd_json_chunk_t *next;
    size_t used, size;
    alignas(max_align_t) unsigned char data[];
};

static bool installed;
static _Thread_local cd_json_arena_t *current;

/* The next chunk with n bytes free, after the current one: one kept from
 * before the last reset, else a new one. */
static cd_json_chunk_t *next_chunk(cd_json_arena_t *a, size_t n)
{
    cd_json_chunk_t *c = a->cur ? a->cur->next : a->chunks;

    if (c && c->size >= n)
        return c;
    size_t size = n > CHUNK_SIZE ? n : CHUNK_SIZE;
    cd_json_chunk_t *fresh = malloc(sizeof(*fresh) + size);
    if (!fresh)
        return NULL;
    fresh->used = 0;
    fresh->size = size;
    fresh->next = c; /* a kept chunk too small for n stays, for later */
    if (a->cur)
        a->cur->next = fresh;
    else
        a->chunks = fresh;
    return fresh;
}

static void *arena_alloc(cd_json_arena_t *a, size_t n)
{
    cd_json_chunk_t *c = a->cur;

    if (n > SIZE_MAX - ALIGN - CHUNK_SIZE)
        return NULL;
    n = (n + ALIGN - 1) & ~(ALIGN - 1);
    if (!c || c->size - c->used < n) {
        if (!(c = next_chunk(a, n)))
            return NULL;
        a->cur = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

static void *hook_malloc(size_t n) { return current ? arena_alloc(current, n) : malloc(n); }

/* Inside an arena nothing is freed one by one: a reset frees it all. */
static void hook_free(void *p)
{
    if (!current)
        free(p);
}

void cd_json_arena_install(void)
{
    cJSON_Hooks hooks = {.malloc_fn = hook_malloc, .free_fn = hook_free};
    cJSON_InitHooks(&hooks);
    installed = true;
}

void cd_json_arena_init(cd_json_arena_t *a)
{
    a->chunks = NULL;
    a->cur = NULL;
}

bool cd_json_arena_enter(cd_json_arena_t *a)
{
    if (!installed)
        return false;
    current = a;
    return true;
}

void cd_json_arena_leave(void) { current = NULL; }

/* The chunks are kept for the next batch's trees: no allocation, no page
 * faults on fresh memory, once the arena has grown to a batch's size. */
void cd_json_arena_reset(cd_json_arena_t *a)
{
    for (cd_json_chunk_t *c = a->chunks; c; c = c->next)
        c->used = 0;
    a->cur = NULL;
}

void cd_json_arena_fini(cd_json_arena_t *a)
{
    while (a->chunks) {
        cd_json_chunk_t *next = a->chunks->next;
        free(a->chunks);
        a->chunks = next;
    }
    a->cur = NULL;
}
