/*
 * log.h -- structured logs on stderr, one logfmt line per record:
 *   ts=2026-11-22T10:00:00.123Z level=info mod=store msg="batch stored events=5000"
 * Nothing secret is ever passed in; callers mask keys and passwords first.
 */
#ifndef CONVDIAG_LOG_H
#define CONVDIAG_LOG_H

typedef enum cd_log_level {
    CD_LOG_ERROR = 0,
    CD_LOG_WARN,
    CD_LOG_INFO,
    CD_LOG_DEBUG,
} cd_log_level_t;

void cd_log_set_level(cd_log_level_t level);
/* Accepts error, warn, info, debug; returns -1 for anything else. */
int cd_log_level_parse(const char *name, cd_log_level_t *out);

void cd_log(cd_log_level_t level, const char *mod, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define cd_log_error(mod, ...) cd_log(CD_LOG_ERROR, mod, __VA_ARGS__)
#define cd_log_warn(mod, ...)  cd_log(CD_LOG_WARN, mod, __VA_ARGS__)
#define cd_log_info(mod, ...)  cd_log(CD_LOG_INFO, mod, __VA_ARGS__)
#define cd_log_debug(mod, ...) cd_log(CD_LOG_DEBUG, mod, __VA_ARGS__)

#endif
