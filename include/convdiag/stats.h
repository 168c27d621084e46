/*
 * stats.h -- the summaries analysts ask for over a time range, read from the
 * functions of migrations/0006_analytics.sql, one section each.
 */
#ifndef CONVDIAG_STATS_H
#define CONVDIAG_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "convdiag/common.h"
#include "convdiag/pg.h"

enum {
    CD_STATS_SCENARIO_RUNS,  /* scenario_run_stats */
    CD_STATS_ABANDONMENT,    /* abandonment_stats */
    CD_STATS_AGENT_OFFERS,   /* agent_offer_stats */
    CD_STATS_TIME_TO_ACCEPT, /* time_to_accept_stats */
    CD_STATS_STALE_RUNS,     /* stale_runs_by_scenario */
    CD_STATS_DEAD_LETTERS,   /* dead_letters_by_reason (no channel) */
    CD_STATS_NSECTIONS
};

typedef struct cd_stats_section {
    const char *name;  /* JSON member name, e.g. "scenario_runs" */
    const char *title; /* heading for people */
    size_t rows, cols;
    char **columns; /* cols names; owned */
    bool *numeric;  /* per column: an integer or decimal, written as a JSON number */
    char **cells;   /* rows * cols texts as PostgreSQL gives them; NULL for SQL NULL; owned */
} cd_stats_section_t;

typedef struct cd_stats {
    cd_stats_section_t sections[CD_STATS_NSECTIONS];
} cd_stats_t;

/*
 * Reads every section for [since_us, until_us) and channel (NULL for all) in
 * one read-only snapshot, so the sections agree with each other.  Days are
 * UTC days, times UTC RFC 3339 with milliseconds.
 */
cd_status_t cd_stats_load(const cd_pg_conf_t *db, int64_t since_us, int64_t until_us,
                          const char *channel, cd_stats_t *out, cd_err_t *err);
void cd_stats_fini(cd_stats_t *s);

static inline const char *cd_stats_cell(const cd_stats_section_t *s, size_t row, size_t col)
{
    return s->cells[row * s->cols + col];
}

#endif
