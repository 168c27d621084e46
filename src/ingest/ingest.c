/*
 * ingest.c -- the `run` loop: the polling thread, which routes each message
 * to the writer owning its partition and hands batches over; see ingest.h.
 *
 * The loop waits on two descriptors, the consumer queue's and the writers'
 * "done", and never on a writer: a writer that is busy (writing, or
 * retrying while PostgreSQL is away) gets its next batch filled meanwhile.
 * Once that batch is full the loop stops taking messages for a moment,
 * which librdkafka's bounded prefetch turns into backpressure; if the
 * writer is still busy after PAUSE_AFTER_MS, its partitions are paused
 * instead, so the consumer goes on polling for the others, keeps its group
 * membership and sees signals at once.  (Pausing is the exception: a
 * resumed partition waits up to a second for its next fetch.)
 * Partitions go to writers as the group assigns them, to the writer with
 * the fewest, and stay there while assigned: a writer's conversation state
 * is that of its partitions.
 */
#include "convdiag/ingest.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convdiag/batch.h"
#include "convdiag/kafka.h"
#include "convdiag/log.h"
#include "convdiag/pg.h"
#include "convdiag/store.h"
#include "convdiag/tagging.h"
#include "convdiag/writer.h"

#define SWEEP_INTERVAL_US (60 * 1000000LL)       /* wall-clock stale sweep */
#define PARTITIONS_INTERVAL_US (600 * 1000000LL) /* partitions ahead, retention */
#define REVOKE_WAIT_MAX_MS 10000 /* a writer finishing a revoked partition's batch */
#define DRAIN_BUDGET 1024 /* messages taken between two looks at the time */
#define PAUSE_AFTER_MS 1000 /* a full next batch waiting on a busy writer, then paused */
/* A fast stream's batch may wait, at most batch.max.wait.ms / 2, for this
 * many events; a stream too slow to bring LINGER_MIN_EVENTS in that time
 * has its batches sent at once. */
#define LINGER_EVENTS 500
#define LINGER_MIN_EVENTS 100
#define RATE_WINDOW_US 200000 /* how often a writer's arrival rate is measured */
#define IDLE_WAKE_MS 1000 /* heartbeat and timers while nothing happens */
#define BATCH_FIRST_CAP 256 /* records a batch has room for before it first grows */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

/* What the loop tells Prometheus: the summary's counts, as they grow. */
typedef struct ingest_metrics {
    cd_metric_t *messages, *stored, *duplicates, *dead_letters, *unknown_scenarios, *stale_runs;
    cd_metric_t *batches, *write_seconds, *last_commit, *postgres_up, *paused;
} ingest_metrics_t;

/* A partition the group gave us, and the writer that owns it. */
typedef struct owned {
    char *topic;
    int32_t partition;
    int slot;
} owned_t;

/* The polling thread's side of a writer. */
typedef struct slot {
    cd_writer_t *w;
    cd_batch_t *filling; /* the next batch, filled here while the writer works */
    int64_t first_us;    /* when filling got its first message */
    int64_t full_us;     /* when filling got full with the writer busy; 0: it is not */
    double rate;         /* messages a second to its partitions, smoothed */
    size_t arrived;      /* since rate_us */
    int64_t rate_us;
    bool paused;         /* its partitions, filling being full and the writer busy */
    int nparts;
} slot_t;

typedef struct ingest {
    const cd_config_t *cfg;
    const cd_ingest_opts_t *opts;
    cd_ingest_stats_t *stats;
    cd_kafka_consumer_t *consumer;
    cd_pg_conf_t db;
    cd_event_limits_t limits;
    cd_tagger_conf_t tagger;
    cd_metrics_t *metrics;
    ingest_metrics_t m;

    slot_t *slots;
    int nslots;
    cd_batch_t *batches; /* two per writer, owned here, passed back and forth */
    owned_t *owned;
    int nowned, owned_cap, last_owned;
    int done_pipe[2];    /* writers -> here: a batch is done */
    int abandon_pipe[2]; /* here -> writers: readable once every wait must end */

    /* PostgreSQL as the writers find it. */
    pthread_mutex_t health_lock;
    bool *writer_down;
    int down_count;

    cd_kafka_state_t kafka; /* as the readiness probe last heard */
    cd_status_t failure; /* a writer's fatal outcome, CD_OK while none */
    cd_err_t failure_err;
    int64_t last_progress_us, last_sweep_us, next_partitions_us;
    uint64_t last_progress_messages;
} ingest_t;

static bool stopping(const ingest_t *in) { return in->opts->stop && *in->opts->stop; }

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
               "Time from handing batches to a writer to their commit, retries included."),
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

/* PostgreSQL usable or not, for the gauges and the readiness probe. */
static void postgres_state(ingest_t *in, bool up, const char *why)
{
    cd_metric_set(in->m.postgres_up, up);
    cd_metric_set(in->m.paused, !up);
    cd_metrics_set_ready(in->metrics, "postgres", up, why);
}

/* From the writers' threads: PostgreSQL is up once no writer finds it down. */
static void writer_health(void *arg, int writer, bool up, const char *why)
{
    ingest_t *in = arg;
    pthread_mutex_lock(&in->health_lock);
    if (in->writer_down[writer] == up) {
        in->writer_down[writer] = !up;
        in->down_count += up ? -1 : 1;
    }
    if (!up || in->down_count == 0)
        postgres_state(in, in->down_count == 0, why);
    pthread_mutex_unlock(&in->health_lock);
}

static void account(ingest_t *in, const cd_writer_result_t *r)
{
    const cd_store_result_t *s = &r->totals.store;
    in->stats->inserted += s->inserted;
    in->stats->duplicates += s->duplicates;
    in->stats->dead_letters += s->dead_letters;
    in->stats->unknown_scenarios += s->unknown_scenarios;
    in->stats->stale_runs += r->totals.stale_runs;
    in->stats->batches++;
    cd_metric_add(in->m.stored, (double)s->inserted);
    cd_metric_add(in->m.duplicates, (double)s->duplicates);
    cd_metric_add(in->m.dead_letters, (double)s->dead_letters);
    cd_metric_add(in->m.unknown_scenarios, (double)s->unknown_scenarios);
    cd_metric_add(in->m.stale_runs, (double)r->totals.stale_runs);
    cd_metric_add(in->m.batches, 1);
    cd_metric_add(in->m.write_seconds, (double)r->write_us / 1e6);
    cd_metric_set(in->m.last_commit, (double)cd_now_us() / 1e6);
}

/* Collects what the writers finished; a fatal outcome ends the run. */
static void collect(ingest_t *in)
{
    char buf[64];
    while (read(in->done_pipe[0], buf, sizeof(buf)) > 0)
        ;
    for (int i = 0; i < in->nslots; i++) {
        cd_writer_result_t r;
        size_t swept = cd_writer_swept(in->slots[i].w);
        in->stats->stale_runs += swept;
        cd_metric_add(in->m.stale_runs, (double)swept);
        if (!cd_writer_collect(in->slots[i].w, &r))
            continue;
        if (r.status == CD_OK && r.messages)
            account(in, &r);
        else if (r.status == CD_ERROR && in->failure == CD_OK) {
            in->failure = CD_ERROR;
            in->failure_err = r.err;
        }
    }
}

/* ---- partitions and their writers ------------------------------------ */

static int find_owned(const ingest_t *in, const char *topic, int32_t partition)
{
    for (int i = 0; i < in->nowned; i++)
        if (in->owned[i].partition == partition && strcmp(in->owned[i].topic, topic) == 0)
            return i;
    return -1;
}

/* The route of the consumer's drain: the filling batch of the partition's writer. */
static cd_batch_t *route(void *arg, const char *topic, int32_t partition)
{
    ingest_t *in = arg;
    const owned_t *o = in->last_owned < in->nowned ? &in->owned[in->last_owned] : NULL;
    /* Messages come in runs of one partition: the last answer, first. */
    if (!o || o->partition != partition || strcmp(o->topic, topic) != 0) {
        int i = find_owned(in, topic, partition);
        if (i < 0)
            return NULL;
        in->last_owned = i;
        o = &in->owned[i];
    }
    slot_t *s = &in->slots[o->slot];
    if (s->filling->count == 0)
        s->first_us = cd_mono_us();
    s->arrived++;
    return s->filling;
}

/* The partitions of a slot, for pausing them. */
static int slot_partitions(const ingest_t *in, int slot, cd_kafka_partition_t *out)
{
    int n = 0;
    for (int i = 0; i < in->nowned; i++)
        if (in->owned[i].slot == slot)
            out[n++] = (cd_kafka_partition_t){in->owned[i].topic, in->owned[i].partition};
    return n;
}

static void pause_slot(ingest_t *in, int slot, bool pause)
{
    slot_t *s = &in->slots[slot];
    cd_kafka_partition_t *parts = calloc((size_t)(s->nparts ? s->nparts : 1), sizeof(*parts));
    if (!parts)
        return; /* left as it is: the next pass tries again */
    int n = slot_partitions(in, slot, parts);
    if (n)
        cd_kafka_consumer_pause(in->consumer, parts, n, pause);
    free(parts);
    s->paused = pause;
}

static void on_assigned(void *arg, const cd_kafka_partition_t *parts, int n)
{
    ingest_t *in = arg;
    for (int i = 0; i < n; i++) {
        if (find_owned(in, parts[i].topic, parts[i].partition) >= 0)
            continue;
        if (in->nowned == in->owned_cap) {
            int cap = in->owned_cap ? in->owned_cap * 2 : 16;
            owned_t *o = realloc(in->owned, (size_t)cap * sizeof(*o));
            if (!o)
                continue; /* its messages find no writer: the run ends (drain) */
            in->owned = o;
            in->owned_cap = cap;
        }
        int best = 0;
        for (int k = 1; k < in->nslots; k++)
            if (in->slots[k].nparts < in->slots[best].nparts)
                best = k;
        char *topic = strdup(parts[i].topic);
        if (!topic)
            continue;
        in->owned[in->nowned++] = (owned_t){topic, parts[i].partition, best};
        in->slots[best].nparts++;
        cd_writer_assigned(in->slots[best].w);
        if (in->slots[best].paused)
            cd_kafka_consumer_pause(in->consumer, &parts[i], 1, true);
    }
}

typedef struct revoked {
    const cd_kafka_partition_t *parts;
    int n;
} revoked_t;

static bool not_revoked(cd_record_t *rec, void *arg)
{
    const revoked_t *r = arg;
    for (int i = 0; i < r->n; i++) {
        if (r->parts[i].partition == rec->partition && strcmp(r->parts[i].topic, rec->topic) == 0)
            return false;
    }
    return true;
}

/*
 * Before partitions go to another member: their messages not handed yet
 * are dropped (their offsets were never stored: the next owner reads
 * them), a batch being written with them is waited for, so its offsets are
 * in the commit the next owner starts from, and their conversations leave
 * the writers' state.
 */
static void on_revoking(void *arg, const cd_kafka_partition_t *parts, int n)
{
    ingest_t *in = arg;
    revoked_t rv = {parts, n};
    int wait_ms = in->cfg->shutdown_timeout_ms < REVOKE_WAIT_MAX_MS ? in->cfg->shutdown_timeout_ms
                                                                     : REVOKE_WAIT_MAX_MS;
    int64_t deadline = cd_mono_us() + (int64_t)wait_ms * 1000;

    for (int s = 0; s < in->nslots; s++)
        cd_batch_filter(in->slots[s].filling, not_revoked, &rv);
    for (int i = 0; i < n; i++) {
        int k = find_owned(in, parts[i].topic, parts[i].partition);
        if (k < 0)
            continue;
        slot_t *s = &in->slots[in->owned[k].slot];
        if (!cd_writer_wait(s->w, deadline))
            cd_log_warn("run", "writer %d still has a batch of %s[%d] at its revocation; "
                        "its offsets will not be committed, the next owner reads it again",
                        in->owned[k].slot, parts[i].topic, (int)parts[i].partition);
        cd_writer_forget(s->w, cd_tag_source(parts[i].topic, parts[i].partition));
        s->nparts--;
        free(in->owned[k].topic);
        in->owned[k] = in->owned[--in->nowned];
    }
    in->last_owned = 0;
}

/* ---- the loop ----------------------------------------------------------- */

static bool batch_full(const ingest_t *in, const cd_batch_t *b)
{
    return b->count >= in->cfg->batch_max_events || b->bytes >= in->cfg->batch_max_bytes;
}

/* Smooths the slot's arrival rate over a few windows. */
static void measure_rate(slot_t *s, int64_t now)
{
    int64_t dt = now - s->rate_us;
    if (dt < RATE_WINDOW_US)
        return;
    double inst = (double)s->arrived * 1e6 / (double)dt;
    s->rate = s->rate > 0 ? 0.6 * s->rate + 0.4 * inst : inst;
    s->arrived = 0;
    s->rate_us = now;
}

/*
 * How long a batch may wait for more before going to its free writer.  A
 * commit costs PostgreSQL the same whatever its size, so a fast stream's
 * batches are worth growing a little: for the time the stream takes to
 * bring LINGER_EVENTS, at most half of batch.max.wait.ms.  A slow stream's
 * go at once: waiting would bring few more.
 */
static int64_t linger_us(const ingest_t *in, const slot_t *s)
{
    double cap_s = (double)in->cfg->batch_max_wait_ms / 2000.0;
    if (s->rate * cap_s < LINGER_MIN_EVENTS)
        return 0;
    double wait_s = LINGER_EVENTS / s->rate;
    return (int64_t)((wait_s < cap_s ? wait_s : cap_s) * 1e6);
}

/*
 * Hands each batch to its writer once that one is free and the batch has
 * waited its linger (none for a slow stream) or is full: so batches are
 * small when the stream is slow and grow with it, and larger still while
 * the writer was busy.  A full batch whose writer has been busy for
 * PAUSE_AFTER_MS gets its partitions paused until the writer is free.
 * Returns how long until a batch's linger ends (the loop's wait), or -1.
 */
static int dispatch(ingest_t *in)
{
    int64_t now = cd_mono_us(), next = -1;
    for (int i = 0; i < in->nslots; i++) {
        slot_t *s = &in->slots[i];
        measure_rate(s, now);
        /* A revocation may have emptied a paused slot's batch (its messages went
         * to the next owner): nothing would resume it, and the partitions
         * assigned to it since would stay paused for good. */
        if (s->paused && !batch_full(in, s->filling) && cd_writer_idle(s->w)) {
            pause_slot(in, i, false);
            s->full_us = 0;
        }
        if (s->filling->count == 0)
            continue;
        if (cd_writer_idle(s->w)) {
            int64_t due = s->first_us + linger_us(in, s);
            if (!batch_full(in, s->filling) && now < due) {
                next = next < 0 || due - now < next ? due - now : next;
                continue;
            }
            s->filling = cd_writer_submit(s->w, s->filling);
            s->full_us = 0;
            if (s->paused)
                pause_slot(in, i, false);
        } else if (batch_full(in, s->filling) && !s->paused) {
            if (!s->full_us)
                s->full_us = now;
            else if (now - s->full_us >= (int64_t)PAUSE_AFTER_MS * 1000)
                pause_slot(in, i, true);
        }
    }
    return next < 0 ? -1 : (int)((next + 999) / 1000);
}

/* A full batch waits for its busy writer, its partitions not paused (yet):
 * taking more messages would only grow it. */
static bool blocked(const ingest_t *in)
{
    for (int i = 0; i < in->nslots; i++)
        if (!in->slots[i].paused && batch_full(in, in->slots[i].filling))
            return true;
    return false;
}

/* Messages that can be taken without overfilling a batch, whichever
 * writer's partitions they come from. */
static size_t room(const ingest_t *in)
{
    size_t r = DRAIN_BUDGET;
    for (int i = 0; i < in->nslots; i++) {
        size_t max = in->cfg->batch_max_events, n = in->slots[i].filling->count;
        if (!in->slots[i].paused && (n >= max ? 0 : max - n) < r)
            r = n >= max ? 0 : max - n;
    }
    return r;
}

/*
 * Takes what the consumer has: until nothing more waits, a batch is full,
 * or batch.max.wait.ms since the round began (a backlog never runs dry).
 * *more: messages may still be waiting.
 */
static cd_status_t drain(ingest_t *in, bool *more, cd_err_t *err)
{
    int64_t until = cd_mono_us() + (int64_t)in->cfg->batch_max_wait_ms * 1000;
    size_t taken, budget;

    do {
        budget = room(in);
        if (cd_kafka_consumer_drain(in->consumer, route, in, budget, &taken, err) != CD_OK)
            return CD_ERROR;
        *more = taken == budget;
        in->stats->messages += taken;
        cd_metric_add(in->m.messages, (double)taken);
    } while (*more && !blocked(in) && cd_mono_us() < until);
    return CD_OK;
}

/* The consumer's state for the readiness probe; silence logged when it
 * begins and ends. */
static void kafka_state(ingest_t *in)
{
    int64_t for_ms;
    char why[96] = "";
    cd_kafka_state_t st = cd_kafka_consumer_state(in->consumer, &for_ms);

    if (st == CD_KAFKA_SILENT)
        snprintf(why, sizeof(why), "no Kafka broker has answered for %lld s",
                 (long long)(for_ms / 1000));
    else if (st == CD_KAFKA_JOINING)
        snprintf(why, sizeof(why), "waiting for the consumer group's assignment for %lld s",
                 (long long)(for_ms / 1000));
    if (st != in->kafka && st == CD_KAFKA_SILENT)
        cd_log_warn("run", "%s", why);
    else if (st != in->kafka && in->kafka == CD_KAFKA_SILENT)
        cd_log_info("run", "Kafka answers again");
    in->kafka = st;
    cd_metrics_set_ready(in->metrics, "kafka", st == CD_KAFKA_UP, why[0] ? why : NULL);
}

static void periodic(ingest_t *in)
{
    int64_t now = cd_mono_us();
    cd_metrics_heartbeat(in->metrics);
    kafka_state(in);
    progress(in, false);
    if (now - in->last_sweep_us >= SWEEP_INTERVAL_US) {
        in->last_sweep_us = now;
        cd_writer_sweep(in->slots[0].w);
    }
    if (now >= in->next_partitions_us) {
        in->next_partitions_us = now + PARTITIONS_INTERVAL_US;
        cd_writer_maintain(in->slots[0].w, in->cfg->events_partition_ahead_days);
    }
}

static bool settled(const ingest_t *in)
{
    for (int i = 0; i < in->nslots; i++)
        if (in->slots[i].filling->count || !cd_writer_settled(in->slots[i].w))
            return false;
    return true;
}

/* Runs until stopped, caught up or failed. */
static cd_status_t loop(ingest_t *in, cd_err_t *err)
{
    bool more = false, final_sweep = false, was_blocked = false;
    int lingering = -1; /* ms until a batch's linger ends, -1: none lingers */

    while (!stopping(in)) {
        /* A busy writer says when it is done; while a batch is blocked the
         * consumer's descriptor is left alone, as it would stay readable. */
        bool wait_writers = blocked(in);
        struct pollfd fds[2] = {{.fd = in->done_pipe[0], .events = POLLIN},
                                {.fd = cd_kafka_consumer_fd(in->consumer), .events = POLLIN}};
        int timeout = wait_writers ? PAUSE_AFTER_MS / 4 : more ? 0 : IDLE_WAKE_MS;
        if (lingering >= 0 && lingering < timeout)
            timeout = lingering;
        if (poll(fds, wait_writers ? 1 : 2, timeout) < 0 && errno != EINTR)
            return cd_err_set(err, CD_ERROR, "poll: %s", strerror(errno));
        collect(in);
        if (in->failure != CD_OK) {
            *err = in->failure_err;
            return in->failure;
        }
        lingering = dispatch(in);
        if (blocked(in)) {
            was_blocked = true;
        } else {
            if (drain(in, &more, err) != CD_OK)
                return CD_ERROR;
            /* The queue may have been full meanwhile: librdkafka then waits
             * for its own tick to fetch again, unless woken. */
            if (was_blocked && !more) {
                cd_kafka_consumer_wake_fetcher(in->consumer);
                was_blocked = false;
            }
        }
        lingering = dispatch(in);
        periodic(in);
        if (in->opts->until_caught_up && !more && settled(in) &&
            cd_kafka_consumer_caught_up(in->consumer)) {
            if (final_sweep)
                return CD_OK;
            final_sweep = true; /* once more, after the sweep the writers settle */
            cd_writer_sweep(in->slots[0].w);
        }
    }
    return CD_OK;
}

/* Waits for the writers' batches until the shutdown deadline, then makes
 * them give up; what was not stored is read again by the next owner. */
static void finish_writers(ingest_t *in, int64_t deadline)
{
    bool abandoned = false;

    for (int i = 0; i < in->nslots; i++) {
        if (cd_writer_wait(in->slots[i].w, deadline))
            continue;
        if (!abandoned) {
            cd_log_warn("run", "shutdown deadline reached with batches not stored; their offsets "
                        "are not committed, they will be read again");
            ssize_t n = write(in->abandon_pipe[1], "1", 1);
            (void)n;
            abandoned = true;
        }
        cd_writer_wait(in->slots[i].w, INT64_MAX);
    }
    collect(in);
}

/* PostgreSQL reachable and migrated, before anything is consumed. */
static cd_status_t wait_for_postgres(ingest_t *in, cd_err_t *err)
{
    cd_store_conf_t sc = {.db = &in->db, .app = "convdiag", .abandon_fd = -1};
    cd_store_t *probe = cd_store_new(&sc);
    int delay_ms = BACKOFF_MIN_MS;
    bool warned = false;
    cd_status_t st;

    if (!probe)
        return cd_err_set(err, CD_ERROR, "out of memory");
    while ((st = cd_store_connect(probe, err)) == CD_RETRY && !stopping(in)) {
        if (!warned) {
            cd_log_warn("run", "waiting for PostgreSQL: %s", err->msg);
            postgres_state(in, false, err->msg);
            warned = true;
        }
        cd_metrics_heartbeat(in->metrics); /* waiting on purpose is not being stuck */
        struct timespec ts = {delay_ms / 1000, (long)(delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        delay_ms = delay_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay_ms * 2;
    }
    cd_store_free(probe);
    if (st == CD_OK)
        postgres_state(in, true, NULL);
    return st == CD_OK ? CD_OK : CD_ERROR;
}

static cd_status_t start_writers(ingest_t *in, cd_err_t *err)
{
    int n = in->cfg->ingest_writers;

    if (!(in->slots = calloc((size_t)n, sizeof(*in->slots))) ||
        !(in->batches = calloc((size_t)n * 2, sizeof(*in->batches))) ||
        !(in->writer_down = calloc((size_t)n, sizeof(*in->writer_down))))
        return cd_err_set(err, CD_ERROR, "out of memory starting %d writers", n);
    for (int i = 0; i < n; i++) {
        /* Batches grow as they fill (a stream's are small): memory follows
         * the rate.  Growing may fail mid-stream, which ends the run before
         * the message that did not fit is passed by (cd_kafka_consumer_drain). */
        if (cd_batch_init(&in->batches[2 * i], BATCH_FIRST_CAP) != CD_OK ||
            cd_batch_init(&in->batches[2 * i + 1], BATCH_FIRST_CAP) != CD_OK)
            return cd_err_set(err, CD_ERROR, "out of memory allocating batches");
        cd_writer_conf_t wc = {
            .index = i,
            .db = &in->db,
            .tagger = &in->tagger,
            .limits = &in->limits,
            .consumer = in->consumer,
            /* One outbox row per export request's worth of events. */
            .outbox_group_max = in->cfg->export_enabled ? in->cfg->export_batch_max_items : 0,
            .retention_days = in->cfg->events_retention_days,
            .future_max_days = in->cfg->events_future_max_days,
            .state_bytes = in->cfg->ingest_state_cache_bytes / (size_t)n,
            .batch = &in->batches[2 * i + 1],
            .done_fd = in->done_pipe[1],
            .abandon_fd = in->abandon_pipe[0],
            .health = writer_health,
            .health_arg = in,
        };
        in->slots[i].filling = &in->batches[2 * i];
        in->slots[i].rate_us = cd_mono_us();
        if (!(in->slots[i].w = cd_writer_new(&wc, err)))
            return CD_ERROR;
        in->nslots = i + 1;
    }
    return CD_OK;
}

static void release_filling(ingest_t *in)
{
    for (int i = 0; i < in->nslots; i++)
        cd_batch_clear(in->slots[i].filling);
}

cd_status_t cd_ingest_run(const cd_config_t *cfg, const cd_ingest_opts_t *opts,
                          cd_ingest_stats_t *stats, cd_err_t *err)
{
    ingest_t in = {.cfg = cfg,
                   .opts = opts,
                   .stats = stats,
                   .metrics = opts->metrics,
                   .done_pipe = {-1, -1},
                   .abandon_pipe = {-1, -1}};
    cd_kafka_rebalance_hooks_t hooks = {on_assigned, on_revoking, &in};
    cd_status_t st = CD_ERROR;
    int64_t deadline = 0; /* of shutdown, once it begins */

    memset(stats, 0, sizeof(*stats));
    pthread_mutex_init(&in.health_lock, NULL);
    cd_pg_conf_from_config(&in.db, cfg);
    cd_event_limits_init(&in.limits);
    in.limits.max_bytes = cfg->event_max_bytes;
    in.limits.strict_scenarios = cfg->scenarios_strict;
    cd_tagger_conf_from_config(&in.tagger, cfg);
    in.last_progress_us = in.last_sweep_us = cd_mono_us();
    register_metrics(&in);
    cd_metrics_set_ready(in.metrics, "kafka", false, "the consumer is not created yet");

    if (pipe2(in.done_pipe, O_NONBLOCK | O_CLOEXEC) != 0 ||
        pipe2(in.abandon_pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
        cd_err_set(err, CD_ERROR, "cannot create the writers' pipes: %s", strerror(errno));
        goto done;
    }
    if (wait_for_postgres(&in, err) != CD_OK)
        goto done;
    cd_store_partitions_result_t pr;
    cd_err_t perr;
    if (cd_store_partitions_maintain(&in.db, -1, cfg->events_partition_ahead_days,
                                     cfg->events_retention_days, &pr, &perr) != CD_OK)
        cd_log_warn("run", "partition maintenance failed, tried again later: %s", perr.msg);
    in.next_partitions_us = cd_mono_us() + PARTITIONS_INTERVAL_US;
    if (!(in.consumer = cd_kafka_consumer_new(cfg, &hooks, err)))
        goto done;
    if (start_writers(&in, err) != CD_OK)
        goto done;
    in.kafka = CD_KAFKA_JOINING;
    kafka_state(&in);

    st = loop(&in, err);
    /* Stopped, caught up or failed: the batches being written are finished
     * (until the deadline); those not handed yet are left, their offsets
     * not stored, to be read again.  One deadline for all of shutdown. */
    deadline = cd_mono_us() + (int64_t)cfg->shutdown_timeout_ms * 1000;
    /* The writers may take all but the last fifth: leaving the group needs
     * a moment too. */
    finish_writers(&in, deadline - (int64_t)cfg->shutdown_timeout_ms * 200);
    release_filling(&in);
    if (st == CD_OK && in.failure != CD_OK) {
        st = in.failure;
        *err = in.failure_err;
    }
    if (opts->progress_interval_ms > 0)
        progress(&in, true);

done:
    /* Closed while the writers still exist: the revocation it makes calls on them. */
    if (in.consumer) {
        cd_err_t cerr;
        if (!deadline)
            deadline = cd_mono_us() + (int64_t)cfg->shutdown_timeout_ms * 1000;
        if (cd_kafka_consumer_close(in.consumer, deadline, &cerr) != CD_OK)
            cd_log_warn("run", "%s", cerr.msg);
    }
    for (int i = 0; i < in.nslots; i++)
        cd_writer_free(in.slots[i].w);
    cd_kafka_consumer_free(in.consumer);
    for (int i = 0; in.batches && i < 2 * cfg->ingest_writers; i++)
        cd_batch_fini(&in.batches[i]);
    for (int i = 0; i < in.nowned; i++)
        free(in.owned[i].topic);
    free(in.owned);
    free(in.batches);
    free(in.slots);
    free(in.writer_down);
    for (int i = 0; i < 2; i++) {
        if (in.done_pipe[i] >= 0)
            close(in.done_pipe[i]);
        if (in.abandon_pipe[i] >= 0)
            close(in.abandon_pipe[i]);
    }
    pthread_mutex_destroy(&in.health_lock);
    return st;
}
