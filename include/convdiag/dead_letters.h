/*
 * dead_letters.h -- the dead_letters table read back and replayed: the
 * messages that were not valid events, listed and fetched by a filter, and
 * marked once `convdiag dead-letters replay` has sent them to Kafka again.
 */
#ifndef CONVDIAG_DEAD_LETTERS_H
#define CONVDIAG_DEAD_LETTERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "convdiag/common.h"
#include "convdiag/pg.h"

/* Which dead letters; every condition given must hold. */
typedef struct cd_dead_letter_filter {
    const int64_t *ids; /* these ids only, when nids > 0 (borrowed) */
    size_t nids;
    const char *reason;        /* a substring of the reason, case sensitive; NULL: any */
    int64_t since_us, until_us; /* received_at in [since, until); 0: open */
    bool replayed;              /* also those replayed already */
} cd_dead_letter_filter_t;

typedef struct cd_dead_letter {
    int64_t id;
    char *topic;
    int32_t partition;
    int64_t offset;
    char *key; /* raw bytes, NULL when the message had none */
    size_t key_len;
    char *payload; /* raw bytes, NUL-terminated for convenience; NULL unless fetched */
    size_t len;    /* the payload's length, fetched or not */
    char *reason;
    char *traceparent, *tracestate; /* the headers kept, or NULL */
    char *kafka_time, *received_at, *replayed_at; /* RFC 3339 UTC, or NULL */
} cd_dead_letter_t;

typedef struct cd_dead_letter_list {
    cd_dead_letter_t *items;
    size_t count;
} cd_dead_letter_list_t;

void cd_dead_letter_list_fini(cd_dead_letter_list_t *list);

/* A connection to the database holding dead_letters. */
typedef struct cd_dead_letters cd_dead_letters_t;

/* NULL with err when the database cannot be reached. */
cd_dead_letters_t *cd_dead_letters_new(const cd_pg_conf_t *db, cd_err_t *err);
void cd_dead_letters_free(cd_dead_letters_t *dl);

/* How many dead letters the filter matches. */
cd_status_t cd_dead_letters_count(cd_dead_letters_t *dl, const cd_dead_letter_filter_t *f,
                                  size_t *count, cd_err_t *err);

/*
 * Up to max matching dead letters whose id is above after_id, in id order,
 * into *out (emptied first; the caller finis it), with their payloads when
 * with_payload.  Reading on from the last id returned pages through them.
 */
cd_status_t cd_dead_letters_fetch(cd_dead_letters_t *dl, const cd_dead_letter_filter_t *f,
                                  int64_t after_id, size_t max, bool with_payload,
                                  cd_dead_letter_list_t *out, cd_err_t *err);

/* Sets replayed_at to now for these ids (a letter replayed again gets the
 * later time); *marked: how many rows changed. */
cd_status_t cd_dead_letters_mark_replayed(cd_dead_letters_t *dl, const int64_t *ids, size_t n,
                                          size_t *marked, cd_err_t *err);

#endif
