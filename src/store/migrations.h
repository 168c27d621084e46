/* migrations.h -- the SQL files of migrations/, embedded at build time (private to store/). */
#ifndef CONVDIAG_STORE_MIGRATIONS_H
#define CONVDIAG_STORE_MIGRATIONS_H

#include <stddef.h>

typedef struct cd_migration {
    const char *version; /* "0001" */
    const char *name;    /* file name */
    const char *sql;
} cd_migration_t;

extern const cd_migration_t cd_migrations[]; /* in version order */
extern const size_t cd_migrations_count;

#endif
