/* cmd_simulate.c -- `convdiag simulate`: sample conversations into Kafka. */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "commands.h"
#include "convdiag/kafka.h"
#include "convdiag/log.h"
#include "convdiag/sim.h"
#include "convdiag/timeutil.h"

static const char help[] =
    "Usage: convdiag simulate [OPTIONS]\n\n"
    "Produces realistic conversations (bot-handled, escalated, routed, accepted,\n"
    "rejected, timed out, abandoned, force-closed, ...) to Kafka, keyed by\n"
    "liveWorkItemId.  The same seed, start time and options give the same messages.\n\n"
    "Options:\n"
    "  --conversations N    conversations to produce (default 100, or no limit\n"
    "                       when --events is given; 0 = no limit)\n"
    "  --events N           stop after N events (default: no limit)\n"
    "  --seed N             random seed (default 1)\n"
    "  --start TIME         RFC 3339 time of the first conversation (default: now)\n"
    "  --rate N             at most N events per second (default 0 = as fast as possible)\n"
    "  --dry-run            print the events as JSON lines instead of producing them\n"
    "  --progress SECONDS   log progress every SECONDS (default 2, 0 = never)\n\n"
    "Disorder, as real producers cause it (each P a probability from 0 to 1 per\n"
    "event, default 0; timestamps stay as planned):\n"
    "  --reorder P          hold an event back behind the next 1 to 3 events of its\n"
    "                       conversation (an end may arrive before its start)\n"
    "  --duplicates P       send an event again, same eventId and bytes, shortly after\n"
    "  --late P             hold an event back until 1 to 3 later conversations are out\n"
    "  --aliases P          send the scenario under one of its older names\n"
    "  --malformed P        send a message the contract rejects instead of the event\n"
    "                       (truncated JSON, a wrong type, a missing field, status\n"
    "                       'Done', invalid UTF-8, an unknown field)\n"
    "  --disorder           a realistic mix: --reorder 0.05 --duplicates 0.02\n"
    "                       --late 0.01 --aliases 0.1 --malformed 0.005; the options\n"
    "                       above, given too, override it whatever their order\n\n"
    "In --dry-run output a malformed message is one line, as sent, invalid UTF-8\n"
    "included.\n\n" CLI_COMMON_HELP;

static atomic_int stop_requested;
/* A probability: a decimal number from 0 to 1 ("0.05", "1", "5e-3"). */
static bool parse_probability(const char *arg, double *out)
{
    char *end;

    /* Digits, point, exponent and sign only: no hex, inf or nan, no spaces. */
    if (!arg[0] || strspn(arg, "0123456789.eE+-") != strlen(arg))
        return false;
    double p = strtod(arg, &end);
    if (*end != '\0' || !isfinite(p) || p < 0 || p > 1)
        return false;
    *out = p;
    return true;
}

/* Sleeps until `sent` events fit under `rate` events/s since `t0`. */
static void pace(int64_t t0, uint64_t sent, unsigned long long rate)
{
    int64_t due = t0 + (int64_t)(sent * 1000000ULL / rate);
    int64_t now = cd_mono_us();
    if (due > now) {
        struct timespec ts = {(time_t)((due - now) / 1000000), (long)((due - now) % 1000000) * 1000};
        nanosleep(&ts, NULL);
    }
}

int cmd_simulate(int argc, char **argv)
{
    enum {
        OPT_CONV = 1, OPT_EVENTS, OPT_SEED, OPT_START, OPT_RATE, OPT_DRY, OPT_PROGRESS,
        OPT_REORDER, OPT_DUPLICATES, OPT_LATE, OPT_ALIASES, OPT_MALFORMED, OPT_DISORDER,
    };
    static const struct option opts[] = {
        {"conversations", required_argument, NULL, OPT_CONV},
        {"events", required_argument, NULL, OPT_EVENTS},
        {"seed", required_argument, NULL, OPT_SEED},
        {"start", required_argument, NULL, OPT_START},
        {"rate", required_argument, NULL, OPT_RATE},
        {"dry-run", no_argument, NULL, OPT_DRY},
        {"progress", required_argument, NULL, OPT_PROGRESS},
        {"reorder", required_argument, NULL, OPT_REORDER},
        {"duplicates", required_argument, NULL, OPT_DUPLICATES},
        {"late", required_argument, NULL, OPT_LATE},
        {"aliases", required_argument, NULL, OPT_ALIASES},
        {"malformed", required_argument, NULL, OPT_MALFORMED},
        {"disorder", no_argument, NULL, OPT_DISORDER},
        CLI_COMMON_OPTIONS,
        {0},
    };
    cd_sim_conf_t conf;
    unsigned long long n, rate = 0, progress_s = 2;
    bool dry_run = false, conversations_given = false, disorder = false;
    /* Disorder given one by one, applied over --disorder; < 0: not given. */
    double p[OPT_MALFORMED - OPT_REORDER + 1] = {-1, -1, -1, -1, -1};
    cd_sim_t *sim = NULL;
    cd_kafka_producer_t *producer = NULL;
    cd_err_t err;
    cli_t cli;
    int opt, rc = CLI_EXIT_OK;

    cd_sim_conf_init(&conf);
    cli_init(&cli, "simulate");
    while ((opt = cli_getopt(&cli, argc, argv, opts, help)) > 0) {
        const char *name = opt > 0 && opt <= OPT_DISORDER ? opts[opt - 1].name : "";
        bool numeric = opt == OPT_CONV || opt == OPT_EVENTS || opt == OPT_SEED ||
                       opt == OPT_RATE || opt == OPT_PROGRESS;
        if (numeric && !cli_parse_u64(optarg, &n)) {
            rc = cli_usage_error(&cli, "--%s: '%s' is not a whole number", name, optarg);
            goto out;
        }
        if (opt >= OPT_REORDER && opt <= OPT_MALFORMED &&
            !parse_probability(optarg, &p[opt - OPT_REORDER])) {
            rc = cli_usage_error(&cli, "--%s: '%s' is not a number between 0 and 1", name,
                                 optarg);
            goto out;
        }
        switch (opt) {
        case OPT_CONV: conf.conversations = n; conversations_given = true; break;
        case OPT_EVENTS: conf.max_events = n; break;
        case OPT_SEED: conf.seed = n; break;
        case OPT_RATE: rate = n; break;
        case OPT_PROGRESS: progress_s = n; break;
        case OPT_DRY: dry_run = true; break;
        case OPT_DISORDER: disorder = true; break;
        case OPT_REORDER:
        case OPT_DUPLICATES:
        case OPT_LATE:
        case OPT_ALIASES:
        case OPT_MALFORMED: break; /* parsed above */
        case OPT_START:
            if (cd_time_parse_rfc3339(optarg, 0, &conf.start_us, &err) != CD_OK) {
                rc = cli_usage_error(&cli, "--start: %s", err.msg);
                goto out;
            }
            break;
        }
    }
    if (opt < 0) {
        rc = cli.exit_code;
        goto out;
    }
    if ((rc = cli_finish(&cli, argc, argv)) != CLI_EXIT_OK)
        goto out;
    if (disorder)
        cd_sim_conf_disorder(&conf);
    double *given[] = {&conf.p_reorder, &conf.p_duplicate, &conf.p_late, &conf.p_alias,
                       &conf.p_malformed};
    for (size_t i = 0; i < CD_ARRAY_LEN(given); i++) {
        if (p[i] >= 0)
            *given[i] = p[i];
    }
    if (conf.max_events && !conversations_given)
        conf.conversations = 0; /* --events alone sets the limit */
    if (conf.conversations == 0 && conf.max_events == 0) {
        rc = cli_usage_error(&cli, "give --conversations or --events a limit");
        goto out;
    }
    if (!(sim = cd_sim_new(&conf))) {
        fprintf(stderr, "convdiag simulate: out of memory\n");
        rc = CLI_EXIT_FAILURE;
        goto out;
    }
    if (!dry_run && !(producer = cd_kafka_producer_new(&cli.cfg, &err))) {
        fprintf(stderr, "convdiag simulate: %s\n", err.msg);
        rc = CLI_EXIT_USAGE;
        goto out;
    }

    cli_catch_stop_signals(&stop_requested);

    int64_t t0 = cd_mono_us(), last = t0;
    cd_sim_event_t ev;
    while (!stop_requested && cd_sim_next(sim, &ev)) {
        uint64_t sent = cd_sim_events_emitted(sim);
        if (dry_run) {
            fwrite(ev.json, 1, ev.json_len, stdout);
            fputc('\n', stdout);
        } else if (cd_kafka_producer_send(producer, NULL, ev.key, strlen(ev.key), ev.json,
                                          ev.json_len, NULL, &err) !=
                   CD_OK) {
            fprintf(stderr, "convdiag simulate: %s\n", err.msg);
            rc = CLI_EXIT_FAILURE;
            goto out;
        } else if (sent % 1000 == 0) {
            cd_kafka_producer_poll(producer);
        }
        if (rate)
            pace(t0, sent, rate);
        int64_t now = cd_mono_us();
        if (progress_s && now - last >= (int64_t)progress_s * 1000000) {
            cd_log_info("simulate", "progress: %llu events, %llu conversations, %.0f events/s",
                        (unsigned long long)sent,
                        (unsigned long long)cd_sim_conversations_started(sim),
                        (double)sent * 1e6 / (double)(now - t0));
            last = now;
        }
    }
    if (producer && cd_kafka_producer_flush(producer, 60000, &err) != CD_OK) {
        fprintf(stderr, "convdiag simulate: %s\n", err.msg);
        rc = CLI_EXIT_FAILURE;
        goto out;
    }
    fprintf(dry_run ? stderr : stdout,
            "simulate: %llu events of %llu conversations %s in %.1f s\n",
            (unsigned long long)cd_sim_events_emitted(sim),
            (unsigned long long)cd_sim_conversations_started(sim),
            dry_run ? "written" : "delivered", (double)(cd_mono_us() - t0) / 1e6);
    if (conf.p_reorder > 0 || conf.p_duplicate > 0 || conf.p_late > 0 || conf.p_alias > 0 ||
        conf.p_malformed > 0)
        fprintf(dry_run ? stderr : stdout,
                "simulate: %llu reordered, %llu duplicates, %llu late, %llu aliased, "
                "%llu malformed\n",
                (unsigned long long)cd_sim_messages_flagged(sim, CD_SIM_REORDERED),
                (unsigned long long)cd_sim_messages_flagged(sim, CD_SIM_DUPLICATE),
                (unsigned long long)cd_sim_messages_flagged(sim, CD_SIM_LATE),
                (unsigned long long)cd_sim_messages_flagged(sim, CD_SIM_ALIAS),
                (unsigned long long)cd_sim_messages_flagged(sim, CD_SIM_MALFORMED));
out:
    cd_kafka_producer_free(producer);
    cd_sim_free(sim);
    cli_fini(&cli);
    return rc;
}
