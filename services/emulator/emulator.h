/*
 * emulator.h -- what the parts of convdiag-emulator share: the settings fixed
 * at start, the state every request thread sees (behind one mutex), and the
 * reply a handler fills for the HTTP layer to send.
 *
 * libmicrohttpd runs each connection in its own thread, so a delayed answer
 * holds up nobody else; everything the threads share sits in emu_t and is
 * touched only with emu_t.mu held.
 */
#ifndef EMU_EMULATOR_H
#define EMU_EMULATOR_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "convdiag/addr.h"
#include "convdiag/buf.h"
#include "faults.h"
#include "throttle.h"
#include "ikey.h"
#include "stats.h"
#include "store.h"

#define EMU_DEFAULT_LISTEN "127.0.0.1:28080"
#define EMU_DEFAULT_MAX_ITEMS 2000000
/*
 * The service publishes no limit for a whole request, only for one item
 * (64 kB) and for the items in one request (64,000).  These defaults keep a
 * request the size of a generous batch and stop a gzip bomb from taking the
 * machine's memory; both are options.
 */
#define EMU_DEFAULT_MAX_BODY (1024 * 1024)
#define EMU_DEFAULT_MAX_INFLATED (64 * 1024 * 1024)

typedef struct emu_conf {
    cd_addr_t listen;         /* ingestion, control, API and page */
    cd_addr_t control_listen; /* control, API and page only; stays up while "down" */
    cd_addr_t redirect_listen; /* ingestion too, never redirected: where "redirect" points */
    emu_ikeys_t ikeys;
    size_t max_items;
    size_t max_body;     /* a request body as sent */
    size_t max_inflated; /* a request body once gzip is undone */
} emu_conf_t;

typedef struct emu {
    emu_conf_t conf;        /* fixed once the listeners are up */
    pthread_mutex_t mu;     /* guards everything below */
    pthread_cond_t changed; /* CLOCK_MONOTONIC; faults changed or shutting down */
    emu_faults_t faults;
    emu_store_t store;
    emu_stats_t stats;
    emu_throttle_t throttle;
    bool stopping;
} emu_t;

typedef struct emu_reply {
    int status;
    const char *content_type;
    cd_buf_t body;
    char retry_after[40]; /* empty: no Retry-After header */
    char location[300];   /* empty: no Location header */
    char cache_control[40]; /* empty: no Cache-Control header */
    const char *allow;    /* the methods a 405 names */
    bool close;           /* ask the client to close the connection */
} emu_reply_t;

#define EMU_JSON "application/json; charset=utf-8"

/* Sets up the lock, the condition and an empty store once conf and faults are set. */
cd_status_t emu_init(emu_t *emu);
void emu_fini(emu_t *emu);

/* A JSON reply {"error": message} with the given status. */
void emu_reply_error(emu_reply_t *reply, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Waits ms milliseconds, less if the emulator shuts down or the ingestion
 * port goes down (its connections are cut then anyway); takes the lock. */
void emu_sleep_ms(emu_t *emu, unsigned ms);

#endif
