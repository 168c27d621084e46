/*
 * common.h -- status codes and small helpers shared by every module.
 *
 * Functions that can fail return a cd_status_t, in the style of Fluent Bit's
 * plugin return codes: CD_OK, CD_RETRY (a transient failure: the same call may
 * succeed later, e.g. PostgreSQL restarting) or CD_ERROR (permanent for this
 * input).  A human-readable reason goes into a caller-supplied cd_err_t.
 */
#ifndef CONVDIAG_COMMON_H
#define CONVDIAG_COMMON_H

#include <stddef.h>
#include <stdint.h>

typedef enum cd_status {
    CD_OK = 0,
    CD_RETRY = 1,
    CD_ERROR = -1,
} cd_status_t;

/* Room for one error message; callers keep it on the stack. */
#define CD_ERR_MAX 512
typedef struct cd_err {
    char msg[CD_ERR_MAX];
} cd_err_t;

/* printf-style; always returns status, so "return cd_err_set(err, CD_ERROR, ...)" reads well.
 * err may be NULL. */
cd_status_t cd_err_set(cd_err_t *err, cd_status_t status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

const char *cd_status_name(cd_status_t status);

#define CD_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Microseconds since the Unix epoch, from CLOCK_REALTIME. */
int64_t cd_now_us(void);
/* Microseconds from CLOCK_MONOTONIC, for measuring intervals. */
int64_t cd_mono_us(void);

#endif
