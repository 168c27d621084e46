/*
 * cmd_check.c -- `convdiag check`: validates and tags events from stdin, with
 * no Kafka and no PostgreSQL, one JSON line out per line in.
 */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "convdiag/batch.h"
#include "convdiag/export.h"
#include "convdiag/json.h"
#include "convdiag/strmap.h"
#include "convdiag/tagging.h"
#include "convdiag/timeutil.h"

/* Stands in for the instrumentation key when no connection string is set. */
#define NIL_IKEY "00000000-0000-0000-0000-000000000000"

static const char help[] =
    "Usage: convdiag check [OPTIONS] < events.jsonl\n\n"
    "Reads events as JSON lines on stdin, each line an event or an object\n"
    "{\"headers\": {\"traceparent\": ..., \"tracestate\": ...}, \"event\": {...}}\n"
    "carrying Kafka headers and the event.  For each line prints one JSON line:\n"
    "the tagged event (canonical scenario, category, status, operation_Id,\n"
    "operation_ParentId, session_Id, user_Id) or the rejection with its reason.\n"
    "Lines are taken as one stream, in order: later events of a conversation\n"
    "inherit its operation_Id, and a repeated eventId is reported as a duplicate.\n"
    "Exit code 1 when any line was rejected.\n\n"
    "Options:\n"
    "  --envelope           print instead, for each accepted event, the exact\n"
    "                       Application Insights envelope the exporter sends\n"
    "                       (instrumentation key from APPLICATIONINSIGHTS_CONNECTION_STRING,\n"
    "                       else " NIL_IKEY ")\n\n" CLI_COMMON_HELP;

typedef struct checker {
    bool envelope;
    cd_export_config_t export;
    cd_buf_t out; /* one envelope */
    cd_event_limits_t limits;
    cd_tagger_conf_t tagger;
    cd_tag_state_t state; /* conversations seen so far */
    cd_strmap_t seen;     /* eventIds seen so far, keys owned by `ids` */
    char **ids;
    size_t ids_count, ids_cap;
} checker_t;

static void put_member(cJSON *o, const char *key, const char *value)
{
    if (value)
        cJSON_AddStringToObject(o, key, value);
    else
        cJSON_AddNullToObject(o, key);
}

static void print_json(cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    if (s) {
        puts(s);
        cJSON_free(s);
    }
    cJSON_Delete(o);
}

static void print_rejection(long lineno, const char *reason)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "line", (double)lineno);
    cJSON_AddBoolToObject(o, "ok", 0);
    cJSON_AddStringToObject(o, "error", reason);
    print_json(o);
}

static void print_tagged(long lineno, const cd_record_t *rec)
{
    const cd_event_t *ev = &rec->event;
    char ts[40];
    cJSON *o = cJSON_CreateObject();

    cd_time_format_utc(ev->ts_us, 6, ts, sizeof(ts));
    cJSON_AddNumberToObject(o, "line", (double)lineno);
    cJSON_AddBoolToObject(o, "ok", 1);
    cJSON_AddStringToObject(o, "eventId", ev->event_id);
    cJSON_AddStringToObject(o, "timestamp", ts);
    cJSON_AddStringToObject(o, "liveWorkItemId", ev->live_work_item_id);
    cJSON_AddStringToObject(o, "scenario", ev->scenario);
    cJSON_AddStringToObject(o, "scenarioReceived", ev->scenario_received);
    cJSON_AddStringToObject(o, "category", ev->category);
    cJSON_AddStringToObject(o, "status", cd_event_status_name(ev->status));
    cJSON_AddBoolToObject(o, "duplicate", rec->duplicate);
    if (!rec->duplicate) {
        cJSON_AddStringToObject(o, "operation_Id", rec->tags.operation_id);
        cJSON_AddStringToObject(o, "operationIdSource", cd_opid_source_name(rec->tags.source));
        cJSON_AddStringToObject(o, "operation_ParentId", ev->live_work_item_id);
        cJSON_AddStringToObject(o, "operation_Name", ev->scenario);
        put_member(o, "session_Id", ev->session_id);
        cJSON_AddStringToObject(o, "user_Id", ev->user_id ? ev->user_id : "0");
        put_member(o, "traceparent", rec->tags.traceparent);
        put_member(o, "tracestate", rec->tags.tracestate);
    }
    print_json(o);
}

/* A wrapper has "event" and, optionally, "headers", and nothing else: an event
 * that happens to carry a field named "event" is judged as an event. */
static bool is_wrapper(const cJSON *root)
{
    if (!cJSON_IsObject(root) || !cJSON_GetObjectItemCaseSensitive(root, "event"))
        return false;
    for (const cJSON *m = root->child; m; m = m->next)
        if (strcmp(m->string, "event") != 0 && strcmp(m->string, "headers") != 0)
            return false;
    return true;
}

/* The duration the exporter reports: the event's own, else that of the run it closed. */
static int64_t export_duration(const checker_t *ck, const cd_record_t *rec)
{
    const cd_event_t *ev = &rec->event;
    if (ev->duration_ms >= 0 || ev->status == CD_EVENT_STARTED)
        return ev->duration_ms;
    const cd_conversation_t *c = cd_tag_state_find(&ck->state, ev->live_work_item_id);
    for (size_t i = 0; c && i < c->runs_count; i++)
        if (c->runs[i].end_event_id && strcmp(c->runs[i].end_event_id, ev->event_id) == 0)
            return c->runs[i].duration_ms;
    return -1;
}

static void print_envelope(checker_t *ck, long lineno, const cd_record_t *rec)
{
    const cd_event_t *ev = &rec->event;
    cd_export_item_t item = {
        .event_id = ev->event_id,
        .time_us = ev->ts_us,
        .organization_id = ev->organization_id,
        .live_work_item_id = ev->live_work_item_id,
        .scenario = ev->scenario,
        .category = ev->category,
        .status = ev->status,
        .channel_type = ev->channel_type,
        .participant_type = ev->participant_type,
        .user_id = ev->user_id,
        .session_id = ev->session_id,
        .operation_id = rec->tags.operation_id,
        .duration_ms = export_duration(ck, rec),
        .failure_reason = ev->failure_reason,
        .attributes_json = ev->attributes_json,
    };
    cd_err_t err;

    cd_buf_reset(&ck->out);
    if (cd_export_envelope_write(&ck->out, &ck->export, &item, &err) != CD_OK) {
        print_rejection(lineno, err.msg);
        return;
    }
    puts(ck->out.data);
}

/* Splits a wrapper line into the event's text and its headers; a plain event
 * line is its own event text.  Returns a reason on a malformed wrapper. */
static const char *unwrap(const char *line, size_t len, cd_batch_t *batch, cd_record_t *rec)
{
    cJSON *root = cJSON_ParseWithLength(line, len);
    const char *why = NULL;

    rec->payload = line;
    rec->len = len;
    if (!is_wrapper(root))
        goto out; /* the parser will judge the line as an event */

    const cJSON *headers = cJSON_GetObjectItemCaseSensitive(root, "headers");
    if (headers && !cJSON_IsObject(headers)) {
        why = "headers: expected an object of Kafka header names and values";
        goto out;
    }
    for (const cJSON *h = headers ? headers->child : NULL; h; h = h->next) {
        if (!cJSON_IsString(h)) {
            why = "headers: every header value must be a string";
            goto out;
        }
        if (strcmp(h->string, "traceparent") == 0)
            rec->header_traceparent =
                cd_batch_copy(batch, h->valuestring, strlen(h->valuestring));
        else if (strcmp(h->string, "tracestate") == 0)
            rec->header_tracestate = cd_batch_copy(batch, h->valuestring, strlen(h->valuestring));
    }
    if (!cd_json_member_span(line, len, "event", &rec->payload, &rec->len))
        why = "event: missing";
out:
    cJSON_Delete(root);
    return why;
}

/* Remembers an eventId; true when it was seen before. */
static bool seen_before(checker_t *ck, const char *event_id)
{
    size_t dummy;
    if (cd_strmap_get(&ck->seen, event_id, &dummy))
        return true;
    if (ck->ids_count == ck->ids_cap) {
        size_t cap = ck->ids_cap ? ck->ids_cap * 2 : 256;
        char **ids = realloc(ck->ids, cap * sizeof(*ids));
        if (!ids)
            return false;
        ck->ids = ids;
        ck->ids_cap = cap;
    }
    char *copy = strdup(event_id);
    if (copy && cd_strmap_add(&ck->seen, copy, 0, NULL) == 1)
        ck->ids[ck->ids_count++] = copy;
    else
        free(copy);
    return false;
}

/* Returns true when the line was accepted. */
static bool check_line(checker_t *ck, cd_batch_t *batch, const char *line, size_t len,
                       long lineno)
{
    cd_record_t *rec = cd_batch_push(batch);
    bool ok = false;
    cd_err_t err;

    if (!rec) {
        print_rejection(lineno, "out of memory");
        return false;
    }
    rec->topic = "stdin";
    rec->offset = lineno;
    const char *why = unwrap(line, len, batch, rec);
    if (why) {
        print_rejection(lineno, why);
        goto out;
    }
    cd_batch_parse(batch, &ck->limits);
    if (!rec->valid) {
        print_rejection(lineno, rec->reason ? rec->reason : "out of memory");
        goto out;
    }
    rec->duplicate = seen_before(ck, rec->event.event_id);
    if (cd_tagger_apply(&ck->tagger, batch, &ck->state, &err) != CD_OK) {
        print_rejection(lineno, err.msg);
        goto out;
    }
    if (ck->envelope && !rec->duplicate)
        print_envelope(ck, lineno, rec);
    else
        print_tagged(lineno, rec);
    ok = true;
out:
    cd_batch_clear(batch);
    return ok;
}

int cmd_check(int argc, char **argv)
{
    enum { OPT_ENVELOPE = 1 };
    static const struct option opts[] = {{"envelope", no_argument, NULL, OPT_ENVELOPE},
                                         CLI_COMMON_OPTIONS, {0}};
    static cd_export_conn_t conn; /* large; one per process */
    char host[256] = "localhost";
    checker_t ck;
    cd_batch_t batch = {0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0, rejected = 0;
    cli_t cli;
    int rc = CLI_EXIT_OK;

    memset(&ck, 0, sizeof(ck));
    cd_buf_init(&ck.out);
    cd_tag_state_init(&ck.state, SIZE_MAX); /* never committed: all of stdin is one batch */
    cd_strmap_init(&ck.seen);
    cli_init(&cli, "check");
    int opt;
    while ((opt = cli_getopt(&cli, argc, argv, opts, help)) > 0)
        ck.envelope = ck.envelope || opt == OPT_ENVELOPE;
    if (opt < 0) {
        rc = cli.exit_code;
        goto out;
    }
    if ((rc = cli_finish(&cli, argc, argv)) != CLI_EXIT_OK)
        goto out;
    cd_event_limits_init(&ck.limits);
    ck.limits.max_bytes = cli.cfg.event_max_bytes;
    ck.limits.strict_scenarios = cli.cfg.scenarios_strict;
    cd_tagger_conf_from_config(&ck.tagger, &cli.cfg);
    const char *cs = getenv("APPLICATIONINSIGHTS_CONNECTION_STRING");
    cd_err_t cerr;
    if (ck.envelope && cs && cs[0] && cd_export_conn_parse(&conn, cs, &cerr) != CD_OK) {
        fprintf(stderr, "convdiag check: APPLICATIONINSIGHTS_CONNECTION_STRING: %s\n", cerr.msg);
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    gethostname(host, sizeof(host) - 1);
    ck.export = (cd_export_config_t){
        .ikey = cs && cs[0] ? conn.ikey : NIL_IKEY,
        .cloud_role = "convdiag",
        .cloud_role_instance = host,
        .sdk_version = CD_EXPORT_SDK_VERSION,
    };
    if (cd_batch_init(&batch, 1) != CD_OK) {
        fprintf(stderr, "convdiag check: out of memory\n");
        rc = CLI_EXIT_FAILURE;
        goto out;
    }

    while ((n = getline(&line, &cap, stdin)) != -1) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        if (n == 0)
            continue;
        if (!check_line(&ck, &batch, line, (size_t)n, lineno))
            rejected++;
    }
    fflush(stdout);
    if (rejected) {
        fprintf(stderr, "convdiag check: %ld of the lines rejected\n", rejected);
        rc = CLI_EXIT_FAILURE;
    }
out:
    free(line);
    cd_batch_fini(&batch);
    for (size_t i = 0; i < ck.ids_count; i++)
        free(ck.ids[i]);
    free(ck.ids);
    cd_strmap_fini(&ck.seen);
    cd_tag_state_fini(&ck.state);
    cd_buf_fini(&ck.out);
    cli_fini(&cli);
    return rc;
}
