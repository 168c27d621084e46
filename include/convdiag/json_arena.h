/*
 * json_arena.h -- cJSON trees allocated in bulk and freed all at once.
 *
 * Parsing an event makes one allocation per value and per key, some forty,
 * and a batch holds thousands of events whose trees all die together, when
 * the batch is cleared.  While a thread has entered an arena, cJSON
 * allocates there and frees nothing; cd_json_arena_reset then frees every
 * tree made in it in one go.  Other threads, and this one outside
 * enter/leave, get malloc and free as usual.
 *
 * cd_json_arena_install() sets cJSON's allocation hooks: call it once at
 * start, before any thread uses cJSON.  Until it has been called, entering
 * an arena fails and cJSON allocates as usual.
 */
#ifndef CONVDIAG_JSON_ARENA_H
#define CONVDIAG_JSON_ARENA_H

#include <stdbool.h>
#include <stddef.h>

typedef struct cd_json_chunk cd_json_chunk_t;

typedef struct cd_json_arena {
    cd_json_chunk_t *chunks; /* in the order they were first used */
    cd_json_chunk_t *cur;    /* being filled; NULL before the first allocation */
} cd_json_arena_t;

void cd_json_arena_install(void);

void cd_json_arena_init(cd_json_arena_t *a);
void cd_json_arena_fini(cd_json_arena_t *a);

/* Makes cJSON on this thread allocate in a; false (and nothing changes) when
 * the hooks are not installed.  Trees made inside must not be given to
 * cJSON_Delete outside: they go with the arena. */
bool cd_json_arena_enter(cd_json_arena_t *a);
void cd_json_arena_leave(void);

/* Frees every tree made in a (its memory is kept for the next ones). */
void cd_json_arena_reset(cd_json_arena_t *a);

#endif
