/* ingest.c -- the consume/parse/store loop; see ingest.h. */
#include "convdiag/ingest.h"

#include <pthread.h>
#include <stddef.h>
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

/* What the loop tells Prometheus: the summary's counts, as they grow. */
typedef struct ingest_metrics {
    cd_metric_t *messages, *stored, *duplicates, *dead_letters, *unknown_scenarios, *stale_runs;
    cd_metric_t *batches, *write_seconds, *last_commit, *postgres_up, *paused;
} ingest_metrics_t;

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
    cd_metrics_t *metrics;
    ingest_metrics_t m;
    int64_t write_began_us;
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

static void register_metrics(ingest_t *in)
{
#define METRIC(member, type, name, help) {offsetof(ingest_metrics_t, member), type, name, help}
    static const struct {
        size_t at;
        cd_metric_type_t type;
        const char *name, *help;
    } metrics[] = {
        METRIC(messages, CD_METRIC_COUNTER, "convdiag_messages_total", "Kafka messages consumed."),
        METRIC(stored, CD_METRIC_COUNTER, "convdiag_events_stored_total",
               "Events stored in PostgreSQL."),
        METRIC(duplicates, CD_METRIC_COUNTER, "convdiag_events_duplicate_total",
               "Events already stored (replays, redeliveries), not stored again."),
        METRIC(dead_letters, CD_METRIC_COUNTER, "convdiag_dead_letters_total",
               "Messages that were not valid events, stored in dead_letters."),
        METRIC(unknown_scenarios, CD_METRIC_COUNTER, "convdiag_unknown_scenarios_total",
               "Events stored with a scenario outside the catalogue (as Other)."),
        METRIC(stale_runs, CD_METRIC_COUNTER, "convdiag_stale_runs_total",
               "Open scenario runs flagged stale."),
        METRIC(batches, CD_METRIC_COUNTER, "convdiag_batches_total",
               "Batches committed to PostgreSQL."),
        METRIC(write_seconds, CD_METRIC_COUNTER, "convdiag_batch_write_seconds_total",
               "Time spent writing committed batches, retries included."),
        METRIC(last_commit, CD_METRIC_GAUGE, "convdiag_last_commit_timestamp_seconds",
               "When the last batch committed (Unix time); 0 before the first."),
        METRIC(postgres_up, CD_METRIC_GAUGE, "convdiag_postgres_up",
               "1 while PostgreSQL takes batches, 0 while it is unavailable."),
        METRIC(paused, CD_METRIC_GAUGE, "convdiag_consumer_paused",
               "1 while consumption is paused, PostgreSQL being unavailable."),
    };
#undef METRIC
    for (size_t i = 0; i < CD_ARRAY_LEN(metrics); i++)
        *(cd_metric_t **)((char *)&in->m + metrics[i].at) =
            cd_metrics_add(in->metrics, metrics[i].type, metrics[i].name, metrics[i].help);
}

/* PostgreSQL usable or not, for the gauge and the readiness probe. */
static void postgres_state(ingest_t *in, bool up, const char *why)
{
    cd_metric_set(in->m.postgres_up, up);
    cd_metrics_set_ready(in->metrics, "postgres", up, why);
}

static void account(ingest_t *in, const cd_store_result_t *res)
{
    in->stats->inserted += res->inserted;
    in->stats->duplicates += res->duplicates;
    in->stats->dead_letters += res->dead_letters;
    in->stats->unknown_scenarios += res->unknown_scenarios;
    in->stats->stale_runs += res->stale_runs;
    in->stats->batches++;
    cd_metric_add(in->m.stored, (double)res->inserted);
    cd_metric_add(in->m.duplicates, (double)res->duplicates);
    cd_metric_add(in->m.dead_letters, (double)res->dead_letters);
    cd_metric_add(in->m.unknown_scenarios, (double)res->unknown_scenarios);
    cd_metric_add(in->m.stale_runs, (double)res->stale_runs);
    cd_metric_add(in->m.batches, 1);
    cd_metric_add(in->m.write_seconds, (double)(cd_mono_us() - in->write_began_us) / 1e6);
    cd_metric_set(in->m.last_commit, (double)cd_now_us() / 1e6);
}

/* Polls into the next batch and parses what came. */
static cd_status_t poll_next(ingest_t *in, size_t max, int wait_ms, cd_err_t *err)
{
    size_t before = in->next->count;
    cd_status_t st = cd_kafka_consumer_poll(in->consumer, in->next, max, wait_ms, err);
    in->stats->messages += in->next->count - before;
    cd_metric_add(in->m.messages, (double)(in->next->count - before));
    cd_metrics_heartbeat(in->metrics); /* polling again: the loop is alive */
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
    postgres_state(in, false, err->msg);
    cd_metric_set(in->m.paused, 1);
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
    cd_metric_set(in->m.paused, 0);
    if (st == CD_OK) {
        postgres_state(in, true, NULL);
        cd_log_info("run", "PostgreSQL is back, consumption resumed");
    }
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
    in->write_began_us = cd_mono_us();
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
    cd_metric_add(in->m.stale_runs, (double)flagged);
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
            postgres_state(in, false, err->msg);
            warned = true;
        }
        cd_metrics_heartbeat(in->metrics); /* waiting on purpose is not being stuck */
        struct timespec ts = {0, 0};
        int ms = backoff_next(&delay_ms);
        ts.tv_sec = ms / 1000;
        ts.tv_nsec = (long)(ms % 1000) * 1000000L;
        nanosleep(&ts, NULL);
    }
    postgres_state(in, true, NULL);
    return CD_OK;
}

cd_status_t cd_ingest_run(const cd_config_t *cfg, const cd_ingest_opts_t *opts,
                          cd_ingest_stats_t *stats, cd_err_t *err)
{
    ingest_t in = {.cfg = cfg, .opts = opts, .stats = stats, .metrics = opts->metrics};
    cd_status_t st = CD_ERROR;

    memset(stats, 0, sizeof(*stats));
    cd_event_limits_init(&in.limits);
    in.limits.max_bytes = cfg->event_max_bytes;
    in.limits.strict_scenarios = cfg->scenarios_strict;
    cd_tagger_conf_from_config(&in.tagger, cfg);
    srand((unsigned)cd_now_us());
    in.started_us = in.last_progress_us = in.last_sweep_us = cd_mono_us();
    register_metrics(&in);
    cd_metrics_set_ready(in.metrics, "kafka", false, "the consumer is not created yet");

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
    /* librdkafka reconnects to brokers on its own; a broker away shows as lag. */
    cd_metrics_set_ready(in.metrics, "kafka", true, NULL);

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
