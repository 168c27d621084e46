/*
 * main.c -- convdiag-emulator: a local Application Insights ingestion
 * service.  The main thread starts the listeners, then closes and reopens the
 * ingestion port as the "down" switch asks, logs a summary now and then, and
 * stops everything on SIGINT or SIGTERM.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "convdiag/json_arena.h"
#include "convdiag/log.h"
#include "options.h"
#include "server.h"

#define SUMMARY_EVERY_US (10 * 1000000LL)
#define RETRY_LISTEN_US 1000000LL

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* A client gone mid-answer must not end the process. */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

static void log_start(const emu_t *emu, const emu_listener_t *ingest,
                      const emu_listener_t *control)
{
    char keys[256] = "any key of GUID form", faults[1024];
    size_t n = 0;

    for (size_t i = 0; i < emu->conf.ikeys.count && n + EMU_IKEY_MASKED_MAX < sizeof(keys); i++) {
        char masked[EMU_IKEY_MASKED_MAX];
        n += (size_t)snprintf(keys + n, sizeof(keys) - n, "%s%s", i ? "," : "",
                              emu_ikey_mask(emu->conf.ikeys.keys[i], masked));
    }
    cd_log_info("emulator",
                "listening ingestion=%s control=%s ikeys=%s max_items=%zu max_body=%zu "
                "max_inflated=%zu redirect=%s",
                ingest->addr->text, control->addr->set ? control->addr->text : "-", keys,
                emu->conf.max_items, emu->conf.max_body, emu->conf.max_inflated,
                emu->conf.redirect_listen.set ? emu->conf.redirect_listen.text : "-");
    emu_faults_describe(&emu->faults, faults, sizeof(faults));
    cd_log_info("emulator", "faults %s", faults);
}

/* Every SUMMARY_EVERY_US, one line with the counters, if they moved. */
static void log_summary(emu_t *emu, uint64_t *last_requests)
{
    pthread_mutex_lock(&emu->mu);
    const emu_stats_t *st = &emu->stats;
    if (st->requests != *last_requests) {
        cd_log_info("emulator",
                    "requests=%llu items_received=%llu accepted=%llu refused=%llu "
                    "duplicates=%llu stored=%zu/%zu conversations=%zu",
                    (unsigned long long)st->requests, (unsigned long long)st->items_received,
                    (unsigned long long)st->items_accepted,
                    (unsigned long long)emu_stats_refused_total(st),
                    (unsigned long long)st->duplicates, emu->store.count, emu->store.max,
                    emu->store.nconvs);
        *last_requests = st->requests;
    }
    pthread_mutex_unlock(&emu->mu);
}

/* Waits up to 100 ms for a change of the switches; true when the port should be open. */
static bool wait_for_change(emu_t *emu)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += 100 * 1000 * 1000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&emu->mu);
    pthread_cond_timedwait(&emu->changed, &emu->mu, &until);
    emu_faults_t *f = &emu->faults;
    if (f->down && f->down_until_us && cd_mono_us() >= f->down_until_us) {
        f->down = false;
        f->down_until_us = 0;
    }
    bool up = !f->down;
    pthread_mutex_unlock(&emu->mu);
    return up;
}

static void run(emu_t *emu, emu_listener_t *ingest)
{
    int64_t next_summary = cd_mono_us() + SUMMARY_EVERY_US, next_listen = 0;
    uint64_t last_requests = 0;
    cd_err_t err;

    while (!stop_requested) {
        bool up = wait_for_change(emu);
        int64_t now = cd_mono_us();

        if (!up && ingest->daemon) {
            emu_listener_down(ingest);
            cd_log_info("emulator", "ingestion port closed (down) addr=%s", ingest->addr->text);
        } else if (up && !ingest->daemon && now >= next_listen) {
            if (emu_listener_start(ingest, &err) == CD_OK) {
                cd_log_info("emulator", "ingestion port open again addr=%s", ingest->addr->text);
            } else {
                /* Someone else may have taken the port (it could not be held); try again shortly. */
                cd_log_warn("emulator", "%s; trying again in 1 s", err.msg);
                next_listen = now + RETRY_LISTEN_US;
            }
        }
        if (now >= next_summary) {
            log_summary(emu, &last_requests);
            next_summary = now + SUMMARY_EVERY_US;
        }
    }
}

int main(int argc, char **argv)
{
    emu_t emu;
    emu_listener_t ingest = {.emu = &emu, .addr = &emu.conf.listen, .ingestion = true};
    emu_listener_t control = {.emu = &emu, .addr = &emu.conf.control_listen};
    emu_listener_t alternate = {.emu = &emu, .addr = &emu.conf.redirect_listen,
                                .ingestion = true, .alternate = true};
    cd_err_t err;
    int rc = EMU_EXIT_OK;

    memset(&emu, 0, sizeof(emu));
    /* Before any thread: the track requests parse their items in arenas. */
    cd_json_arena_install();
    if ((rc = emu_options_parse(argc, argv, &emu)) >= 0) {
        emu_ikeys_fini(&emu.conf.ikeys);
        return rc;
    }
    if (emu_init(&emu) != CD_OK) {
        fprintf(stderr, "convdiag-emulator: out of resources\n");
        emu_ikeys_fini(&emu.conf.ikeys);
        return EMU_EXIT_FAILURE;
    }
    catch_signals();

    /* Bound even when starting down, to learn the port; the loop then closes it. */
    if ((control.addr->set && emu_listener_start(&control, &err) != CD_OK) ||
        (alternate.addr->set && emu_listener_start(&alternate, &err) != CD_OK) ||
        emu_listener_start(&ingest, &err) != CD_OK) {
        cd_log_error("emulator", "%s", err.msg);
        rc = EMU_EXIT_FAILURE;
    } else {
        log_start(&emu, &ingest, &control);
        run(&emu, &ingest);
        cd_log_info("emulator", "stopping");
        rc = EMU_EXIT_OK;
    }

    pthread_mutex_lock(&emu.mu);
    emu.stopping = true;
    pthread_cond_broadcast(&emu.changed);
    pthread_mutex_unlock(&emu.mu);
    if (ingest.daemon)
        emu_listener_stop(&ingest);
    if (control.daemon)
        emu_listener_stop(&control);
    if (alternate.daemon)
        emu_listener_stop(&alternate);
    emu_listener_release(&ingest);
    emu_fini(&emu);
    return rc;
}
