/* writer.c -- a writer thread and its hand-off with the polling thread; see writer.h. */
#include "convdiag/writer.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convdiag/log.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define CONTENTION_MAX_MS 200
#define MAX_FORGETS 64 /* revocations queued; beyond it the whole state goes */

typedef enum { W_IDLE, W_WORKING, W_DONE } wstate_t;

struct cd_writer {
    cd_writer_conf_t conf;
    cd_store_t *store;
    cd_tag_state_t state; /* the thread's own */
    bool check_stored;    /* the thread's own */
    unsigned seed;
    pthread_t thread;
    bool started;

    pthread_mutex_t lock; /* guards what follows */
    pthread_cond_t cond;
    wstate_t wstate;
    bool stop;
    cd_batch_t *batch; /* the writer's: handed (W_WORKING, W_DONE) or empty (W_IDLE) */
    int64_t handed_us;
    cd_writer_result_t result;
    uint64_t forgets[MAX_FORGETS];
    size_t forgets_count;
    bool forget_all, assigned, sweep, maintain;
    bool serving; /* carrying out requests taken from the fields above */
    int ahead_days;
    char app[32]; /* application_name of its connection */

    atomic_size_t swept;
};

/* Sleeps ms or until the abandon fd is readable; false then. */
static bool nap(const cd_writer_t *w, int ms)
{
    struct pollfd p = {.fd = w->conf.abandon_fd, .events = POLLIN};
    int64_t until = cd_mono_us() + (int64_t)ms * 1000;
    for (;;) {
        int64_t left = (until - cd_mono_us()) / 1000;
        if (left <= 0)
            return true;
        int n = poll(&p, p.fd >= 0 ? 1 : 0, (int)left);
        if (n > 0)
            return false;
        if (n < 0 && errno != EINTR)
            return true;
    }
}

/* Doubled each time, capped, with +-25% jitter so writers do not retry in step. */
static int backoff_next(cd_writer_t *w, int *delay_ms)
{
    int d = *delay_ms;
    *delay_ms = d * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : d * 2;
    return d - d / 4 + (int)(rand_r(&w->seed) % (unsigned)(d / 2 + 1));
}

static void health(cd_writer_t *w, bool up, const char *why)
{
    if (w->conf.health)
        w->conf.health(w->conf.health_arg, w->conf.index, up, why);
}

/*
 * Writes the batch until it commits, waiting out PostgreSQL being away or
 * busy.  CD_RETRY only when abandoned; CD_ERROR when trying again cannot
 * help.
 */
static cd_status_t write_until_stored(cd_writer_t *w, cd_batch_t *batch,
                                      cd_writer_totals_t *totals, cd_err_t *err)
{
    int delay_ms = BACKOFF_MIN_MS;
    bool down = false;
    cd_status_t st;

    for (;;) {
        st = cd_writer_write_batch(w->store, &w->state, w->conf.tagger, &w->check_stored, batch,
                                   totals, err);
        if (st != CD_RETRY)
            break;
        cd_store_failure_t f = cd_store_last_failure(w->store);
        if (f == CD_STORE_ABANDONED)
            break;
        int ms;
        if (f == CD_STORE_CONTENTION || f == CD_STORE_CONFLICT) {
            /* The server is there; someone else holds what we need. */
            cd_log_debug("writer", "writer %d: %s; trying again", w->conf.index, err->msg);
            ms = 10 + (int)(rand_r(&w->seed) % CONTENTION_MAX_MS);
        } else {
            if (!down)
                cd_log_warn("writer", "writer %d: PostgreSQL unavailable, consumption paused "
                            "for its partitions, retrying: %s", w->conf.index, err->msg);
            health(w, false, err->msg);
            down = true;
            ms = backoff_next(w, &delay_ms);
        }
        /* After a failure replays are likely: the batch may have committed
         * before its answer was lost. */
        w->check_stored = true;
        if (!nap(w, ms)) {
            st = cd_err_set(err, CD_RETRY, "abandoned at shutdown: %s", err->msg);
            break;
        }
    }
    if (down && st == CD_OK) {
        cd_log_info("writer", "writer %d: PostgreSQL is back, consumption resumed",
                    w->conf.index);
        health(w, true, NULL);
    }
    return st;
}

static void process(cd_writer_t *w, cd_batch_t *batch)
{
    cd_writer_result_t r = {.status = CD_OK, .messages = batch->count};

    int64_t t0 = cd_mono_us();
    cd_batch_parse(batch, w->conf.limits);
    int64_t t1 = cd_mono_us();
    r.status = write_until_stored(w, batch, &r.totals, &r.err);
    cd_log_debug("writer", "writer %d: batch of %zu (%zu bytes): parsed in %lld us, written in "
                 "%lld us", w->conf.index, batch->count, batch->bytes, (long long)(t1 - t0),
                 (long long)(cd_mono_us() - t1));
    if (r.status == CD_OK)
        cd_kafka_consumer_store_offsets(w->conf.consumer, batch);
    cd_batch_clear(batch);
    pthread_mutex_lock(&w->lock);
    r.write_us = cd_mono_us() - w->handed_us;
    w->result = r;
    w->wstate = W_DONE;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    ssize_t n = write(w->conf.done_fd, "1", 1);
    (void)n; /* a full pipe already says "look" */
}

/* The requests between batches; called with the lock held, released meanwhile. */
static void serve_requests(cd_writer_t *w)
{
    uint64_t forgets[MAX_FORGETS];
    size_t nf = w->forgets_count;
    bool all = w->forget_all, assigned = w->assigned, sweep = w->sweep, maintain = w->maintain;
    int ahead = w->ahead_days;

    memcpy(forgets, w->forgets, nf * sizeof(*forgets));
    w->forgets_count = 0;
    w->forget_all = w->assigned = w->sweep = w->maintain = false;
    w->serving = true;
    pthread_mutex_unlock(&w->lock);

    if (all)
        cd_tag_state_clear(&w->state);
    for (size_t i = 0; i < nf; i++)
        cd_tag_state_forget_source(&w->state, forgets[i]);
    if (assigned)
        w->check_stored = true;
    if (sweep) {
        size_t flagged;
        cd_err_t err;
        if (cd_store_sweep_stale(w->store, w->conf.tagger, &flagged, &err) != CD_OK) {
            cd_log_warn("writer", "stale sweep skipped: %s", err.msg);
        } else {
            atomic_fetch_add(&w->swept, flagged);
            if (flagged)
                cd_log_info("writer", "%zu open scenario run(s) flagged stale by the wall clock",
                            flagged);
        }
    }
    if (maintain) {
        cd_store_partitions_result_t r;
        cd_err_t err;
        if (cd_store_partitions_maintain(w->conf.db, w->conf.abandon_fd, ahead,
                                         w->conf.retention_days, &r, &err) != CD_OK)
            cd_log_warn("writer", "partition maintenance failed, tried again later: %s",
                        err.msg);
    }
    pthread_mutex_lock(&w->lock);
    w->serving = false;
    pthread_cond_broadcast(&w->cond);
    ssize_t n = write(w->conf.done_fd, "1", 1);
    (void)n; /* the polling thread looks at what the requests changed */
}

static bool requests_waiting(const cd_writer_t *w)
{
    return w->forgets_count || w->forget_all || w->assigned || w->sweep || w->maintain;
}

static void *writer_main(void *arg)
{
    cd_writer_t *w = arg;

    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->stop && w->wstate != W_WORKING && !requests_waiting(w))
            pthread_cond_wait(&w->cond, &w->lock);
        if (requests_waiting(w))
            serve_requests(w);
        if (w->wstate == W_WORKING && w->batch->count) {
            cd_batch_t *batch = w->batch;
            pthread_mutex_unlock(&w->lock);
            process(w, batch);
            pthread_mutex_lock(&w->lock);
        } else if (w->wstate == W_WORKING) {
            w->wstate = W_DONE; /* nothing to write */
            w->result = (cd_writer_result_t){.status = CD_OK};
            pthread_cond_broadcast(&w->cond);
        } else if (w->stop) {
            break;
        }
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

cd_writer_t *cd_writer_new(const cd_writer_conf_t *conf, cd_err_t *err)
{
    cd_writer_t *w = calloc(1, sizeof(*w));
    if (!w) {
        cd_err_set(err, CD_ERROR, "out of memory starting writer %d", conf->index);
        return NULL;
    }
    w->conf = *conf;
    w->seed = (unsigned)(cd_now_us() ^ ((uint64_t)conf->index * 7919));
    w->check_stored = true; /* a start is when replays are likeliest */
    cd_tag_state_init(&w->state, conf->state_bytes);
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    atomic_init(&w->swept, 0);
    snprintf(w->app, sizeof(w->app), "convdiag-writer-%d", conf->index);
    cd_store_conf_t sc = {.db = conf->db,
                          .app = w->app,
                          .abandon_fd = conf->abandon_fd,
                          .outbox_group_max = conf->outbox_group_max,
                          .retention_days = conf->retention_days,
                          .future_max_days = conf->future_max_days};
    if (!(w->store = cd_store_new(&sc))) {
        cd_err_set(err, CD_ERROR, "out of memory starting writer %d", conf->index);
        goto fail;
    }
    w->batch = conf->batch;
    int rc = pthread_create(&w->thread, NULL, writer_main, w);
    if (rc != 0) {
        cd_err_set(err, CD_ERROR, "cannot start writer %d: %s", conf->index, strerror(rc));
        goto fail;
    }
    w->started = true;
    return w;

fail:
    cd_writer_free(w);
    return NULL;
}

void cd_writer_free(cd_writer_t *w)
{
    if (!w)
        return;
    if (w->started) {
        pthread_mutex_lock(&w->lock);
        w->stop = true;
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->thread, NULL);
    }
    cd_store_free(w->store);
    cd_tag_state_fini(&w->state);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

bool cd_writer_idle(cd_writer_t *w)
{
    pthread_mutex_lock(&w->lock);
    bool idle = w->wstate == W_IDLE;
    pthread_mutex_unlock(&w->lock);
    return idle;
}

cd_batch_t *cd_writer_submit(cd_writer_t *w, cd_batch_t *batch)
{
    pthread_mutex_lock(&w->lock);
    cd_batch_t *empty = w->batch;
    w->batch = batch;
    w->handed_us = cd_mono_us();
    w->wstate = W_WORKING;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    return empty;
}

bool cd_writer_collect(cd_writer_t *w, cd_writer_result_t *out)
{
    pthread_mutex_lock(&w->lock);
    bool done = w->wstate == W_DONE;
    if (done) {
        *out = w->result;
        w->wstate = W_IDLE;
    }
    pthread_mutex_unlock(&w->lock);
    return done;
}

bool cd_writer_wait(cd_writer_t *w, int64_t deadline_us)
{
    /* The condition variable runs on the realtime clock; the deadline is
     * monotonic: the time left is what carries over. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t left = deadline_us - cd_mono_us();
    if (left < 0)
        left = 0;
    ts.tv_sec += left / 1000000;
    ts.tv_nsec += (long)(left % 1000000) * 1000;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->lock);
    while (w->wstate == W_WORKING)
        if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) == ETIMEDOUT)
            break;
    bool done = w->wstate != W_WORKING;
    pthread_mutex_unlock(&w->lock);
    return done;
}

static void request(cd_writer_t *w, void (*set)(cd_writer_t *w, uint64_t v), uint64_t v)
{
    pthread_mutex_lock(&w->lock);
    set(w, v);
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void set_forget(cd_writer_t *w, uint64_t source)
{
    if (w->forgets_count < MAX_FORGETS)
        w->forgets[w->forgets_count++] = source;
    else
        w->forget_all = true;
}
static void set_assigned(cd_writer_t *w, uint64_t v) { (void)v, w->assigned = true; }
static void set_sweep(cd_writer_t *w, uint64_t v) { (void)v, w->sweep = true; }
static void set_maintain(cd_writer_t *w, uint64_t v)
{
    w->maintain = true;
    w->ahead_days = (int)v;
}

void cd_writer_forget(cd_writer_t *w, uint64_t source) { request(w, set_forget, source); }
void cd_writer_assigned(cd_writer_t *w) { request(w, set_assigned, 0); }
void cd_writer_sweep(cd_writer_t *w) { request(w, set_sweep, 0); }
void cd_writer_maintain(cd_writer_t *w, int ahead_days)
{
    request(w, set_maintain, (uint64_t)ahead_days);
}

size_t cd_writer_swept(cd_writer_t *w) { return atomic_exchange(&w->swept, 0); }

bool cd_writer_settled(cd_writer_t *w)
{
    pthread_mutex_lock(&w->lock);
    bool settled = w->wstate == W_IDLE && !requests_waiting(w) && !w->serving;
    pthread_mutex_unlock(&w->lock);
    return settled;
}
