/* ingest.c -- the consume/parse/store loop; see ingest.h. */
#include "convdiag/ingest.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "convdiag/batch.h"
#include "convdiag/kafka.h"
#include "convdiag/log.h"
#include "convdiag/store.h"
#include "convdiag/tagging.h"

#define BACKOFF_MIN_MS 100
#define SWEEP_INTERVAL_US (60 * 1000000LL) /* wall-clock stale sweep */
#define PARTITIONS_INTERVAL_US (3600 * 1000000LL) /* partitions ahead, retention */
#define BACKOFF_MAX_MS 5000

typedef struct ingest {
    const cd_config_t *cfg;
    const cd_ingest_opts_t *opts;
    cd_ingest_stats_t *stats;
    cd_kafka_consumer_t *consumer;
    cd_store_t *store;
    cd_event_limits_t limits;
    cd_tagger_conf_t tagger;
    /*
     * Two batches: while one is written to PostgreSQL by the writer thread,
     * the next is polled and parsed here, so the two halves of the work
     * overlap.  Transactions still run one at a time, in order, on one
     * connection, and a batch's offsets are stored only once it has
     * committed: the next batch's messages all come after its own.
     */
    cd_batch_t batches[2];
    cd_batch_t *writing; /* being written (or retried); the writer's alone meanwhile */
    cd_batch_t *next;    /* being polled and parsed */
    pthread_t writer;
    bool writer_started;
    cd_status_t write_st; /* the writer's outcome, read after joining it */
    cd_store_result_t write_res;
    cd_err_t write_err;
    int64_t started_us;
    int64_t last_progress_us;
    int64_t last_sweep_us;
    int64_t next_partitions_us;
    uint64_t last_progress_messages;
} ingest_t;

static bool stopping(const ingest_t *in) { return in->opts->stop && *in->opts->stop; }

/* Next delay: doubled, capped, with +-25% jitter so instances do not retry in step. */
static int backoff_next(int *delay_ms)
{
    int d = *delay_ms;
    *delay_ms = d * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : d * 2;
    return d - d / 4 + rand() % (d / 2 + 1);
}

static void progress(ingest_t *in, bool force)
{
    int64_t now = cd_mono_us();
    int interval = in->opts->progress_interval_ms;
    if (!force && (interval <= 0 || now - in->last_progress_us < (int64_t)interval * 1000))
        return;
    double secs = (double)(now - in->last_progress_us) / 1e6;
    const cd_ingest_stats_t *s = in->stats;
    cd_log_info("run",
                "progress: %llu messages (%.0f/s), %llu events stored, %llu duplicates, "
                "%llu dead letters, %llu unknown scenarios, %llu runs flagged stale, "
                "%llu batches",
                (unsigned long long)s->messages,
                secs > 0 ? (double)(s->messages - in->last_progress_messages) / secs : 0.0,
                (unsigned long long)s->inserted, (unsigned long long)s->duplicates,
                (unsigned long long)s->dead_letters, (unsigned long long)s->unknown_scenarios,
                (unsigned long long)s->stale_runs, (unsigned long long)s->batches);
    in->last_progress_us = now;
    in->last_progress_messages = s->messages;
}

static void account(ingest_t *in, const cd_store_result_t *res)
{
    in->stats->inserted += res->inserted;
    in->stats->duplicates += res->duplicates;
    in->stats->dead_letters += res->dead_letters;
    in->stats->unknown_scenarios += res->unknown_scenarios;
    in->stats->stale_runs += res->stale_runs;
    in->stats->batches++;
}

/* Polls into the next batch and parses what came. */
static cd_status_t poll_next(ingest_t *in, size_t max, int wait_ms, cd_err_t *err)
{
    size_t before = in->next->count;
    cd_status_t st = cd_kafka_consumer_poll(in->consumer, in->next, max, wait_ms, err);
    in->stats->messages += in->next->count - before;
    cd_batch_parse(in->next, &in->limits);
    return st;
}

/*
 * Writes in->writing again after a transient failure, with the assignment
 * paused, until it commits.  CD_OK: committed.  CD_RETRY: given up because of
 * shutdown (nothing stored, offsets untouched, so the messages are read
 * again later).  CD_ERROR: fatal.
 */
static cd_status_t write_retry(ingest_t *in, cd_err_t *err)
{
    int delay_ms = BACKOFF_MIN_MS;
    int64_t give_up_at = 0;
    cd_status_t st;

    cd_log_warn("run", "PostgreSQL unavailable, consumption paused, retrying: %s", err->msg);
    cd_kafka_consumer_pause(in->consumer);
    for (;;) {
        if (stopping(in)) {
            if (!give_up_at)
                give_up_at = cd_mono_us() + (int64_t)in->cfg->shutdown_timeout_ms * 1000;
            else if (cd_mono_us() >= give_up_at) {
                cd_log_warn("run", "shutdown deadline reached with %zu messages not stored; "
                            "their offsets are not committed, they will be read again",
                            in->writing->count + in->next->count);
                st = CD_RETRY;
                break;
            }
        }
        /* Keep serving the group while waiting.  Messages fetched before the
         * pause join the next batch, never this one: they come after it. */
        if (poll_next(in, SIZE_MAX, backoff_next(&delay_ms), err) == CD_ERROR)
            return CD_ERROR;
        cd_store_result_t res;
        st = cd_store_write_batch(in->store, in->writing, &res, err);
        if (st == CD_OK)
            account(in, &res);
        if (st != CD_RETRY)
            break;
    }
    cd_kafka_consumer_resume(in->consumer);
    if (st == CD_OK)
        cd_log_info("run", "PostgreSQL is back, consumption resumed");
    return st;
}

static void *writer_main(void *arg)
{
    ingest_t *in = arg;
    in->write_st = cd_store_write_batch(in->store, in->writing, &in->write_res, &in->write_err);
    return NULL;
}

/* Hands the next batch to the writer thread (written here if no thread can start). */
static void write_start(ingest_t *in)
{
    cd_batch_t *b = in->writing;
    in->writing = in->next;
    in->next = b;
    in->writer_started = pthread_create(&in->writer, NULL, writer_main, in) == 0;
    if (!in->writer_started)
        writer_main(in);
}

/*
 * Waits for the batch being written, retries it if PostgreSQL was away, and
 * once it has committed stores its offsets.  Its messages are released either
 * way; those not stored are read again after a restart.
 */
static cd_status_t write_finish(ingest_t *in, cd_err_t *err)
{
    cd_status_t st;

    if (in->writer_started)
        pthread_join(in->writer, NULL);
    in->writer_started = false;
    st = in->write_st;
    if (st == CD_OK)
        account(in, &in->write_res);
    else
        *err = in->write_err;
    if (st == CD_RETRY)
        st = write_retry(in, err);
    if (st == CD_OK)
        cd_kafka_consumer_store_offsets(in->consumer, in->writing);
    cd_kafka_consumer_release(in->consumer, in->writing);
    cd_batch_clear(in->writing);
    return st;
}

/* Flags the open runs of silent conversations; a failure here only waits for the next try. */
static void sweep_stale(ingest_t *in, bool now)
{
    size_t flagged;
    cd_err_t err;

    if (!now && cd_mono_us() - in->last_sweep_us < SWEEP_INTERVAL_US)
        return;
    in->last_sweep_us = cd_mono_us();
    if (cd_store_sweep_stale(in->store, &flagged, &err) != CD_OK) {
        cd_log_warn("run", "stale sweep skipped: %s", err.msg);
        return;
    }
    in->stats->stale_runs += flagged;
    if (flagged)
        cd_log_info("run", "%zu open scenario run(s) flagged stale by the wall clock", flagged);
}

/* Partitions ahead of time and retention; a failure only brings the next try forward. */
static void maintain_partitions(ingest_t *in)
{
    cd_store_partitions_result_t r;
    cd_err_t err;

    if (cd_mono_us() < in->next_partitions_us)
        return;
    if (cd_store_partitions_maintain(in->cfg->database_url, in->cfg->events_partition_ahead_days,
                                     in->cfg->events_retention_days, &r, &err) != CD_OK) {
        cd_log_warn("run", "partition maintenance failed, tried again in a minute: %s", err.msg);
        in->next_partitions_us = cd_mono_us() + SWEEP_INTERVAL_US;
        return;
    }
    in->next_partitions_us =
        cd_mono_us() + (r.skipped ? SWEEP_INTERVAL_US : PARTITIONS_INTERVAL_US);
}

static cd_status_t connect_store(ingest_t *in, cd_err_t *err)
{
    int delay_ms = BACKOFF_MIN_MS;
    bool warned = false;

    if (!(in->store = cd_store_new(in->cfg->database_url, &in->tagger)))
        return cd_err_set(err, CD_ERROR, "out of memory");
    /* One outbox row per export request's worth of events. */
    cd_store_set_outbox(in->store,
                        in->cfg->export_enabled ? in->cfg->export_batch_max_items : 0);
    cd_store_partitions_set_window(in->store, in->cfg->events_retention_days,
                                   in->cfg->events_future_max_days);
    cd_status_t st;
    while ((st = cd_store_connect(in->store, err)) != CD_OK) {
        if (st == CD_ERROR || stopping(in))
            return CD_ERROR;
        if (!warned) {
            cd_log_warn("run", "waiting for PostgreSQL: %s", err->msg);
            warned = true;
        }
        struct timespec ts = {0, 0};
        int ms = backoff_next(&delay_ms);
        ts.tv_sec = ms / 1000;
        ts.tv_nsec = (long)(ms % 1000) * 1000000L;
        nanosleep(&ts, NULL);
    }
    return CD_OK;
}

cd_status_t cd_ingest_run(const cd_config_t *cfg, const cd_ingest_opts_t *opts,
                          cd_ingest_stats_t *stats, cd_err_t *err)
{
    ingest_t in = {.cfg = cfg, .opts = opts, .stats = stats};
    cd_status_t st = CD_ERROR;

    memset(stats, 0, sizeof(*stats));
    cd_event_limits_init(&in.limits);
    in.limits.max_bytes = cfg->event_max_bytes;
    in.limits.strict_scenarios = cfg->scenarios_strict;
    cd_tagger_conf_from_config(&in.tagger, cfg);
    srand((unsigned)cd_now_us());
    in.started_us = in.last_progress_us = in.last_sweep_us = cd_mono_us();

    if (cd_batch_init(&in.batches[0], cfg->batch_max_events) != CD_OK ||
        cd_batch_init(&in.batches[1], cfg->batch_max_events) != CD_OK) {
        cd_err_set(err, CD_ERROR, "out of memory allocating batches of %zu",
                   cfg->batch_max_events);
        goto done;
    }
    in.writing = &in.batches[0];
    in.next = &in.batches[1];
    if (connect_store(&in, err) != CD_OK)
        goto done;
    maintain_partitions(&in);
    if (!(in.consumer = cd_kafka_consumer_new(cfg, err)))
        goto done;

    bool writing = false;
    st = CD_OK;
    while (!stopping(&in)) {
        if ((st = poll_next(&in, cfg->batch_max_events, cfg->batch_max_wait_ms, err)) != CD_OK)
            break;
        if (writing) {
            writing = false;
            if ((st = write_finish(&in, err)) != CD_OK)
                break;
        }
        /* The store is idle here: its other work goes in between batches. */
        progress(&in, false);
        sweep_stale(&in, false);
        maintain_partitions(&in);
        if (in.next->count > 0) {
            write_start(&in);
            writing = true;
        } else if (opts->until_caught_up && cd_kafka_consumer_caught_up(in.consumer)) {
            sweep_stale(&in, true);
            break;
        }
    }
    /* Stopped: the batch being written is finished and committed; one polled
     * but not begun is left, its offsets not stored, to be read again. */
    if (writing) {
        cd_err_t werr;
        cd_status_t wst = write_finish(&in, st == CD_OK ? err : &werr);
        if (st == CD_OK)
            st = wst;
    }
    if (st == CD_RETRY) /* shutdown while PostgreSQL was away: not a failure of ours */
        st = CD_OK;

    cd_err_t cerr;
    if (cd_kafka_consumer_close(in.consumer, &cerr) != CD_OK) {
        cd_log_warn("run", "%s", cerr.msg);
    }
    if (opts->progress_interval_ms > 0)
        progress(&in, true);

done:
    if (in.consumer)
        cd_kafka_consumer_release(in.consumer, in.next);
    cd_kafka_consumer_free(in.consumer);
    cd_store_free(in.store);
    cd_batch_fini(&in.batches[0]);
    cd_batch_fini(&in.batches[1]);
    return st;
}
