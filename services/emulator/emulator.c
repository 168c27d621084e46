/* emulator.c -- the shared state's life and small helpers; see emulator.h. */
#include "emulator.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "convdiag/json.h"

cd_status_t emu_init(emu_t *emu)
{
    pthread_condattr_t attr;

    /* Deadlines on the monotonic clock: a wall clock step must not stretch a delay. */
    if (pthread_condattr_init(&attr) != 0)
        return CD_ERROR;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&emu->changed, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        return CD_ERROR;
    if (pthread_mutex_init(&emu->mu, NULL) != 0) {
        pthread_cond_destroy(&emu->changed);
        return CD_ERROR;
    }
    emu_store_init(&emu->store, emu->conf.max_items);
    emu_stats_reset(&emu->stats);
    emu->stopping = false;
    return CD_OK;
}

void emu_fini(emu_t *emu)
{
    emu_store_fini(&emu->store);
    emu_ikeys_fini(&emu->conf.ikeys);
    pthread_cond_destroy(&emu->changed);
    pthread_mutex_destroy(&emu->mu);
}

void emu_sleep_ms(emu_t *emu, unsigned ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&emu->mu);
    while (!emu->stopping && !emu->faults.down &&
           pthread_cond_timedwait(&emu->changed, &emu->mu, &until) == 0)
        ; /* woken for another reason: keep waiting until the deadline */
    pthread_mutex_unlock(&emu->mu);
}

void emu_reply_error(emu_reply_t *reply, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    reply->status = status;
    reply->content_type = EMU_JSON;
    cd_buf_reset(&reply->body);
    cd_buf_puts(&reply->body, "{\"error\":");
    cd_json_put_string(&reply->body, msg);
    cd_buf_putc(&reply->body, '}');
}
