/*
 * scenario.h -- the scenario catalogue: 18 canonical scenarios (operation_Name)
 * in 5 categories, and the aliases upstream systems still send.
 */
#ifndef CONVDIAG_SCENARIO_H
#define CONVDIAG_SCENARIO_H

#include <stddef.h>

/* Category of names the catalogue does not know. */
#define CD_CATEGORY_OTHER "Other"

typedef struct cd_scenario {
    const char *name;     /* canonical name */
    const char *category; /* one of the five categories */
} cd_scenario_t;

/* Canonical entry for a canonical name or an alias (case-sensitive), or NULL
 * when the name is unknown.  The returned pointer is static. */
const cd_scenario_t *cd_scenario_lookup(const char *name);

/* The canonical scenarios, for iteration: *count receives 18. */
const cd_scenario_t *cd_scenario_all(size_t *count);

#endif
