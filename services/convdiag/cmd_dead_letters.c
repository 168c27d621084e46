/*
 * cmd_dead_letters.c -- `convdiag dead-letters list|show|replay`: the
 * messages that were not valid events, looked at and sent back to Kafka
 * once what refused them is fixed.
 *
 * A replay is at least once: a batch of letters is produced, the broker's
 * acknowledgement awaited, and only then are they marked replayed.  A crash
 * or a failed delivery in between leaves them pending, to be sent again;
 * the pipeline stores an event once per (eventId, timestamp), so a valid
 * event sent twice is stored once.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "convdiag/buf.h"
#include "convdiag/dead_letters.h"
#include "convdiag/json.h"
#include "convdiag/kafka.h"
#include "convdiag/log.h"
#include "convdiag/timeutil.h"
#include "convdiag/utf8.h"

static const char help[] =
    "Usage: convdiag dead-letters ACTION [OPTIONS]\n\n"
    "The messages `run` could not store as events, kept byte for byte with the reason\n"
    "(table dead_letters).\n\n"
    "Actions:\n"
    "  list                 those not replayed yet, oldest first: id, when received,\n"
    "                       topic/partition@offset, size and reason\n"
    "  show ID              one of them whole: coordinates, headers, reason, message\n"
    "  replay               send them back to the topic they came from (key, value and\n"
    "                       trace headers as received) once what refused them is fixed,\n"
    "                       e.g. with a longer events.retention.days; `run` judges them\n"
    "                       again, and what is still not an event comes back as a new\n"
    "                       dead letter.  Each is marked replayed once the broker has it.\n\n"
    "Which dead letters (list and replay; every option given must hold):\n"
    "  --id ID              this one (repeatable)\n"
    "  --reason TEXT        those whose reason contains TEXT\n"
    "  --since TIME         received at or after TIME: RFC 3339 or YYYY-MM-DD\n"
    "  --until TIME         received before TIME; a date includes that whole day\n"
    "  --replayed           also those replayed already\n"
    "  --all                replay: every one not replayed yet (replay needs a filter\n"
    "                       or --all)\n\n"
    "Output:\n"
    "  --limit N            list: at most N (default 100; 0 = all)\n"
    "  --json               list, show: one JSON object per dead letter\n"
    "  --raw                show: the message's bytes alone, exactly as received\n"
    "  --dry-run            replay: list what would be sent, send nothing\n"
    "  --progress SECONDS   replay: log progress every SECONDS (default 2, 0 = never)\n\n"
    CLI_COMMON_HELP;

/* Letters per fetch, and for replay per acknowledgement wait: large enough
 * to keep the producer batching, small enough that a failure leaves little
 * to send again. */
#define PAGE 500
#define FLUSH_TIMEOUT_MS 30000
#define MAX_IDS 1000

typedef struct options {
    cd_dead_letter_filter_t filter;
    int64_t ids[MAX_IDS];
    bool all, json, raw, dry_run;
    unsigned long long limit;
    int progress_ms;
} options_t;

static atomic_int stop_requested;

/* bytes as text a terminal shows safely: valid UTF-8 as it is, tab and newline
 * kept, other control characters and invalid bytes as \xNN. */
static void print_escaped(FILE *out, const char *bytes, size_t len)
{
    size_t at = 0, bad;

    while (at < len) {
        size_t n = cd_utf8_valid(bytes + at, len - at, &bad) ? len - at : bad;
        for (size_t i = at; i < at + n; i++) {
            unsigned char c = (unsigned char)bytes[i];
            if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f || c == '\\')
                fprintf(out, c == '\\' ? "\\\\" : "\\x%02x", c);
            else
                fputc(c, out);
        }
        at += n;
        if (at < len)
            fprintf(out, "\\x%02x", (unsigned char)bytes[at++]);
    }
}

/* A JSON member holding bytes: a string when they are valid UTF-8, else
 * name_hex with their hexadecimal digits. */
static void put_bytes_json(cd_buf_t *b, const char *name, const char *bytes, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    bool text = !bytes || cd_utf8_valid(bytes, len, NULL);

    cd_buf_printf(b, ", \"%s%s\": ", name, text ? "" : "_hex");
    if (!bytes) {
        cd_buf_puts(b, "null");
    } else if (text && memchr(bytes, '\0', len) == NULL) {
        cd_json_put_string(b, bytes);
    } else {
        cd_buf_putc(b, '"');
        for (size_t i = 0; i < len; i++) {
            cd_buf_putc(b, hex[(unsigned char)bytes[i] >> 4]);
            cd_buf_putc(b, hex[(unsigned char)bytes[i] & 15]);
        }
        cd_buf_putc(b, '"');
    }
}

static void put_text_json(cd_buf_t *b, const char *name, const char *text)
{
    cd_buf_printf(b, ", \"%s\": ", name);
    if (text)
        cd_json_put_string(b, text);
    else
        cd_buf_puts(b, "null");
}

static bool print_json(const cd_dead_letter_t *d, bool with_payload)
{
    cd_buf_t b;
    bool ok;

    cd_buf_init(&b);
    cd_buf_printf(&b, "{\"id\": %lld", (long long)d->id);
    put_text_json(&b, "topic", d->topic);
    cd_buf_printf(&b, ", \"partition\": %d, \"offset\": %lld, \"bytes\": %zu", (int)d->partition,
                  (long long)d->offset, d->len);
    put_text_json(&b, "reason", d->reason);
    put_text_json(&b, "kafka_time", d->kafka_time);
    put_text_json(&b, "received_at", d->received_at);
    put_text_json(&b, "replayed_at", d->replayed_at);
    put_text_json(&b, "traceparent", d->traceparent);
    put_text_json(&b, "tracestate", d->tracestate);
    put_bytes_json(&b, "key", d->key, d->key_len);
    if (with_payload)
        put_bytes_json(&b, "message", d->payload, d->len);
    cd_buf_putc(&b, '}');
    if ((ok = !b.oom))
        puts(b.data);
    cd_buf_fini(&b);
    return ok;
}

static void print_line(const cd_dead_letter_t *d)
{
    char from[256];

    snprintf(from, sizeof(from), "%s/%d@%lld", d->topic, (int)d->partition, (long long)d->offset);
    printf("%-8lld %-24s %-32s %8zu  ", (long long)d->id, d->received_at ? d->received_at : "",
           from, d->len);
    print_escaped(stdout, d->reason, strlen(d->reason));
    if (d->replayed_at)
        printf("  (replayed %s)", d->replayed_at);
    putchar('\n');
}

static int do_list(cd_dead_letters_t *dl, const options_t *o)
{
    cd_dead_letter_list_t page = {0};
    size_t total, shown = 0;
    int64_t after = 0;
    cd_err_t err;

    if (cd_dead_letters_count(dl, &o->filter, &total, &err) != CD_OK)
        goto failed;
    if (!o->json)
        printf("%-8s %-24s %-32s %8s  %s\n", "id", "received_at", "topic/partition@offset", "bytes",
               "reason");
    while (!o->limit || shown < o->limit) {
        size_t want = o->limit && o->limit - shown < PAGE ? o->limit - shown : PAGE;
        if (cd_dead_letters_fetch(dl, &o->filter, after, want, false, &page, &err) != CD_OK)
            goto failed;
        if (page.count == 0)
            break;
        for (size_t i = 0; i < page.count; i++) {
            if (!o->json) {
                print_line(&page.items[i]);
            } else if (!print_json(&page.items[i], false)) {
                cd_dead_letter_list_fini(&page);
                fprintf(stderr, "convdiag dead-letters: out of memory writing JSON\n");
                return CLI_EXIT_FAILURE;
            }
        }
        shown += page.count;
        after = page.items[page.count - 1].id;
        cd_dead_letter_list_fini(&page);
    }
    if (!o->json)
        printf("(%zu of %zu dead letters%s)\n", shown, total,
               o->filter.replayed ? "" : " not replayed yet");
    return CLI_EXIT_OK;
failed:
    fprintf(stderr, "convdiag dead-letters: %s\n", err.msg);
    return CLI_EXIT_FAILURE;
}

static int do_show(cd_dead_letters_t *dl, const options_t *o)
{
    cd_dead_letter_filter_t f = {.ids = o->filter.ids, .nids = 1, .replayed = true};
    cd_dead_letter_list_t one;
    cd_err_t err;
    int rc = CLI_EXIT_OK;

    if (cd_dead_letters_fetch(dl, &f, 0, 1, true, &one, &err) != CD_OK) {
        fprintf(stderr, "convdiag dead-letters: %s\n", err.msg);
        return CLI_EXIT_FAILURE;
    }
    if (one.count == 0) {
        fprintf(stderr, "convdiag dead-letters: no dead letter with id %lld\n",
                (long long)o->filter.ids[0]);
        return CLI_EXIT_FAILURE;
    }
    const cd_dead_letter_t *d = &one.items[0];
    if (o->raw) {
        if (fwrite(d->payload, 1, d->len, stdout) != d->len)
            rc = CLI_EXIT_FAILURE;
    } else if (o->json) {
        rc = print_json(d, true) ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
    } else {
        printf("id           %lld\nfrom         %s/%d@%lld\nkafka time   %s\n"
               "received at  %s\nreplayed at  %s\ntraceparent  %s\ntracestate   %s\nkey          ",
               (long long)d->id, d->topic, (int)d->partition, (long long)d->offset,
               d->kafka_time ? d->kafka_time : "-", d->received_at,
               d->replayed_at ? d->replayed_at : "-", d->traceparent ? d->traceparent : "-",
               d->tracestate ? d->tracestate : "-");
        if (d->key)
            print_escaped(stdout, d->key, d->key_len);
        else
            fputs("-", stdout);
        fputs("\nreason       ", stdout);
        print_escaped(stdout, d->reason, strlen(d->reason));
        printf("\nmessage      %zu bytes\n", d->len);
        print_escaped(stdout, d->payload, d->len);
        putchar('\n');
    }
    cd_dead_letter_list_fini(&one);
    return rc;
}

/* Sends one page, waits for the broker, marks what it acknowledged. */
static cd_status_t replay_page(cd_dead_letters_t *dl, cd_kafka_producer_t *producer,
                               const cd_dead_letter_list_t *page, size_t *replayed,
                               cd_err_t *err)
{
    int64_t ids[PAGE];
    size_t marked;

    for (size_t i = 0; i < page->count; i++) {
        const cd_dead_letter_t *d = &page->items[i];
        const char *headers[5] = {NULL};
        size_t h = 0;
        if (d->traceparent) {
            headers[h++] = "traceparent";
            headers[h++] = d->traceparent;
        }
        if (d->tracestate) {
            headers[h++] = "tracestate";
            headers[h++] = d->tracestate;
        }
        if (cd_kafka_producer_send(producer, d->topic, d->key, d->key_len, d->payload, d->len,
                                   headers, err) != CD_OK)
            return CD_ERROR;
        ids[i] = d->id;
    }
    if (cd_kafka_producer_flush(producer, FLUSH_TIMEOUT_MS, err) != CD_OK)
        return CD_ERROR;
    if (cd_dead_letters_mark_replayed(dl, ids, page->count, &marked, err) != CD_OK)
        return CD_ERROR;
    *replayed += marked;
    return CD_OK;
}

static int do_replay(cd_dead_letters_t *dl, const cli_t *cli, const options_t *o)
{
    cd_kafka_producer_t *producer = NULL;
    cd_dead_letter_list_t page = {0};
    size_t total, replayed = 0;
    int64_t after = 0, last_log = cd_mono_us(), started = last_log;
    cd_err_t err;
    int rc = CLI_EXIT_FAILURE;

    if (cd_dead_letters_count(dl, &o->filter, &total, &err) != CD_OK)
        goto failed;
    if (o->dry_run) {
        options_t all = *o;
        all.limit = 0;
        printf("dead-letters replay: would send %zu dead letters\n", total);
        return do_list(dl, &all);
    }
    if (total == 0) {
        printf("dead-letters replay: no dead letter matches; nothing sent\n");
        return CLI_EXIT_OK;
    }
    if (!(producer = cd_kafka_producer_new(&cli->cfg, &err)))
        goto failed;
    cli_catch_stop_signals(&stop_requested);
    while (!stop_requested) {
        if (cd_dead_letters_fetch(dl, &o->filter, after, PAGE, true, &page, &err) != CD_OK)
            goto failed;
        if (page.count == 0)
            break;
        after = page.items[page.count - 1].id;
        if (replay_page(dl, producer, &page, &replayed, &err) != CD_OK) {
            fprintf(stderr,
                    "convdiag dead-letters: %s; dead letters %lld to %lld stay pending and "
                    "are sent again by the next replay\n",
                    err.msg, (long long)page.items[0].id, (long long)after);
            goto out;
        }
        cd_dead_letter_list_fini(&page);
        int64_t now = cd_mono_us();
        if (o->progress_ms && now - last_log >= (int64_t)o->progress_ms * 1000) {
            cd_log_info("dead-letters", "progress: %zu of %zu dead letters replayed", replayed,
                        total);
            last_log = now;
        }
    }
    printf("dead-letters replay: %zu of %zu dead letters sent back to Kafka and marked "
           "replayed in %.1f s%s\n",
           replayed, total, (double)(cd_mono_us() - started) / 1e6,
           stop_requested ? " (stopped by a signal; the rest stay pending)" : "");
    rc = CLI_EXIT_OK;
    goto out;
failed:
    fprintf(stderr, "convdiag dead-letters: %s\n", err.msg);
out:
    cd_dead_letter_list_fini(&page);
    cd_kafka_producer_free(producer);
    return rc;
}

int cmd_dead_letters(int argc, char **argv)
{
    enum {
        OPT_ID = 1, OPT_REASON, OPT_SINCE, OPT_UNTIL, OPT_REPLAYED, OPT_ALL, OPT_LIMIT, OPT_JSON,
        OPT_RAW, OPT_DRY_RUN, OPT_PROGRESS,
    };
    static const struct option opts[] = {
        {"id", required_argument, NULL, OPT_ID},
        {"reason", required_argument, NULL, OPT_REASON},
        {"since", required_argument, NULL, OPT_SINCE},
        {"until", required_argument, NULL, OPT_UNTIL},
        {"replayed", no_argument, NULL, OPT_REPLAYED},
        {"all", no_argument, NULL, OPT_ALL},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"json", no_argument, NULL, OPT_JSON},
        {"raw", no_argument, NULL, OPT_RAW},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"progress", required_argument, NULL, OPT_PROGRESS},
        CLI_COMMON_OPTIONS,
        {0},
    };
    options_t o;
    const char *action = argc > 1 && argv[1][0] != '-' ? argv[1] : NULL;
    unsigned long long n;
    cd_dead_letters_t *dl = NULL;
    cd_err_t err;
    cli_t cli;
    int opt, rc = CLI_EXIT_OK;

    memset(&o, 0, sizeof(o));
    o.limit = 100;
    o.progress_ms = 2000;
    o.filter.ids = o.ids;
    cli_init(&cli, "dead-letters");
    /* The action first, then the options: getopt starts after it. */
    if (action) {
        argv++;
        argc--;
    }
    while ((opt = cli_getopt(&cli, argc, argv, opts, help)) > 0) {
        switch (opt) {
        case OPT_ID:
            if (!cli_parse_u64(optarg, &n) || n == 0 || n > INT64_MAX) {
                rc = cli_usage_error(&cli, "--id: '%s' is not a dead letter id", optarg);
                goto out;
            }
            if (o.filter.nids == MAX_IDS) {
                rc = cli_usage_error(&cli, "--id: at most %d of them; use --since/--until",
                                     MAX_IDS);
                goto out;
            }
            o.ids[o.filter.nids++] = (int64_t)n;
            break;
        case OPT_REASON: o.filter.reason = optarg; break;
        case OPT_SINCE:
            if ((rc = cli_parse_time(&cli, "--since", optarg, false, &o.filter.since_us)))
                goto out;
            break;
        case OPT_UNTIL:
            if ((rc = cli_parse_time(&cli, "--until", optarg, true, &o.filter.until_us)))
                goto out;
            break;
        case OPT_REPLAYED: o.filter.replayed = true; break;
        case OPT_ALL: o.all = true; break;
        case OPT_LIMIT:
            if (!cli_parse_u64(optarg, &o.limit)) {
                rc = cli_usage_error(&cli, "--limit: '%s' is not a number", optarg);
                goto out;
            }
            break;
        case OPT_JSON: o.json = true; break;
        case OPT_RAW: o.raw = true; break;
        case OPT_DRY_RUN: o.dry_run = true; break;
        case OPT_PROGRESS:
            if ((rc = cli_parse_progress(&cli, optarg, &o.progress_ms)))
                goto out;
            break;
        }
    }
    if (opt < 0) {
        rc = cli.exit_code;
        goto out;
    }
    bool list = action && strcmp(action, "list") == 0;
    bool show = action && strcmp(action, "show") == 0;
    bool replay = action && strcmp(action, "replay") == 0;
    if (!list && !show && !replay) {
        rc = action ? cli_usage_error(&cli, "unknown action '%s'; give list, show or replay",
                                      action)
                    : cli_usage_error(&cli, "give an action: list, show or replay");
        goto out;
    }
    if (show) {
        /* The id is the argument after the options. */
        if (optind >= argc || !cli_parse_u64(argv[optind], &n) || n == 0 || n > INT64_MAX) {
            rc = cli_usage_error(&cli, "show: give the id of a dead letter, e.g. show 42");
            goto out;
        }
        o.ids[0] = (int64_t)n;
        o.filter.nids = 1;
        optind++;
    }
    if (o.filter.since_us && o.filter.until_us && o.filter.since_us >= o.filter.until_us) {
        rc = cli_usage_error(&cli, "the range is empty: --since is not before --until");
        goto out;
    }
    bool filtered = o.filter.nids || o.filter.reason || o.filter.since_us || o.filter.until_us;
    if (replay && !filtered && !o.all) {
        rc = cli_usage_error(&cli, "replay: say which dead letters (--id, --reason, --since, "
                                   "--until) or --all");
        goto out;
    }
    if ((o.raw && !show) || (o.dry_run && !replay) || (o.all && !replay)) {
        rc = cli_usage_error(&cli, "%s is not an option of %s",
                             o.raw ? "--raw" : o.dry_run ? "--dry-run" : "--all", action);
        goto out;
    }
    if ((rc = cli_finish(&cli, argc, argv)) != CLI_EXIT_OK)
        goto out;
    if (!(dl = cd_dead_letters_new(&cli.db, &err))) {
        fprintf(stderr, "convdiag dead-letters: %s\n", err.msg);
        rc = CLI_EXIT_FAILURE;
        goto out;
    }
    rc = list ? do_list(dl, &o) : show ? do_show(dl, &o) : do_replay(dl, &cli, &o);
out:
    cd_dead_letters_free(dl);
    cli_fini(&cli);
    return rc;
}
