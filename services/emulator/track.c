/* track.c -- the ingestion endpoint; see track.h. */
#include "track.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convdiag/json.h"
#include "convdiag/json_arena.h"
#include "convdiag/log.h"
#include "envelope.h"
#include "payload.h"

/* What became of one item. */
typedef struct item {
    int status;    /* 0 while accepted so far; else its own status */
    char *message; /* why it was refused, or NULL for the status's usual message */
    emu_trace_t trace;
    uint64_t hash;                      /* of the envelope text, for counting duplicates */
    char ikey[EMU_IKEY_MASKED_MAX];     /* for the log, when refused */
} item_t;

/* What the log line of a request tells. */
typedef struct outcome {
    size_t accepted, duplicates;
    const item_t *first_refused;
    size_t first_refused_index;
    bool store_filled; /* the store turned away its first item since the last reset */
    unsigned throttled_for_s; /* > 0: refused by the throttle, room after this long */
} outcome_t;

/* One step of text_hash's lanes. */
static uint64_t hash_step(uint64_t h, const char *s)
{
    uint64_t w;
    memcpy(&w, s, 8);
    h = (h ^ w) * 0xFF51AFD7ED558CCDULL;
    return h ^ (h >> 32);
}

/* A 64-bit hash of the envelope text, eight bytes a step (a byte-wise one
 * took a tenth of the emulator's time), in four lanes whose multiplications
 * overlap (a single lane still took 4%); duplicates only need equal texts to
 * hash equal and different ones rarely to collide. */
static uint64_t text_hash(const char *s, size_t len)
{
    uint64_t lane[4] = {0x9E3779B97F4A7C15ULL ^ len, 0xC2B2AE3D27D4EB4FULL,
                        0x165667B19E3779F9ULL, 0x27D4EB2F165667C5ULL};
    size_t i = 0;
    for (; len - i >= 32; i += 32)
        for (int k = 0; k < 4; k++)
            lane[k] = hash_step(lane[k], s + i + 8 * k);
    uint64_t h = lane[0];
    for (int k = 1; k < 4; k++)
        h = hash_step(h, (const char *)&lane[k]);
    for (; len - i >= 8; i += 8)
        h = hash_step(h, s + i);
    uint64_t tail = 0;
    memcpy(&tail, s + i, len - i);
    h = (h ^ tail) * 0xC4CEB9FE1A85EC53ULL;
    return h ^ (h >> 29);
}

static void refuse(item_t *it, int status, const char *message)
{
    it->status = status;
    it->message = message ? strdup(message) : NULL;
}

/* The properties (string values only, as checked) as cJSON_PrintUnformatted
 * prints them, without its allocations. */
static void put_properties(cd_buf_t *b, const cJSON *props)
{
    cd_buf_putc(b, '{');
    for (const cJSON *p = props->child; p; p = p->next) {
        if (p != props->child)
            cd_buf_putc(b, ',');
        cd_json_put_string(b, p->string);
        cd_buf_putc(b, ':');
        cd_json_put_string(b, p->valuestring);
    }
    cd_buf_putc(b, '}');
}

/* dims: room for the properties' text, reused from item to item. */
static cd_status_t make_trace(const emu_envelope_t *env, cd_buf_t *dims, emu_trace_t *trace)
{
    const char *fields[EMU_F_COUNT];

    memcpy(fields, env->fields, sizeof(fields));
    if (env->properties) {
        cd_buf_reset(dims);
        put_properties(dims, env->properties);
        if (dims->oom)
            return CD_ERROR;
        fields[EMU_F_DIMENSIONS] = dims->data;
    }
    return emu_trace_init(trace, env->time_us, env->severity, env->item_count, fields);
}

/* Judges one item, parsed into root. */
static void judge_item(const emu_t *emu, const emu_span_t *span, const cJSON *root,
                       int64_t now_us, cd_buf_t *dims, item_t *it)
{
    emu_envelope_t env;
    cd_err_t why;

    if (!emu_envelope_check(span->text, span->len, root, &emu->conf.ikeys, now_us, &env, &why)) {
        const cJSON *ikey = cJSON_GetObjectItemCaseSensitive(root, "iKey");
        emu_ikey_mask(cJSON_IsString(ikey) ? ikey->valuestring : "", it->ikey);
        refuse(it, 400, why.msg);
    } else if (make_trace(&env, dims, &it->trace) != CD_OK) {
        refuse(it, 500, "out of memory");
    } else {
        it->hash = text_hash(span->text, span->len);
    }
}

/*
 * Judges every item, without the lock: this is the work that grows with the
 * body.  Returns 0, or 400 with err when an element of a JSON array is not
 * JSON: the array as a whole is then unreadable.  In a JSON stream a bad line
 * is one bad item.
 *
 * Each item's tree lives in an arena, emptied for the next item: parsing
 * allocates for every key and value, and malloc and free one by one took a
 * fifth of the emulator's time.
 */
static int judge_items(const emu_t *emu, const emu_payload_t *payload, int64_t now_us,
                       item_t *items, cd_err_t *err)
{
    cd_json_arena_t arena;
    cd_buf_t dims;
    int status = 0;

    cd_json_arena_init(&arena);
    cd_buf_init(&dims);
    bool in_arena = cd_json_arena_enter(&arena);
    for (size_t i = 0; i < payload->count && !status; i++) {
        const emu_span_t *span = &payload->items[i];
        cJSON *root;

        if (emu_envelope_parse(span->text, span->len, &root)) {
            judge_item(emu, span, root, now_us, &dims, &items[i]);
        } else if (payload->format == EMU_FORMAT_ARRAY) {
            cd_err_set(err, CD_ERROR, "The body is not valid JSON: item %zu cannot be parsed", i);
            status = 400;
        } else {
            refuse(&items[i], 400, "The item is not valid JSON");
        }
        if (in_arena)
            cd_json_arena_reset(&arena);
        else
            cJSON_Delete(root); /* NULL when parsing failed */
    }
    if (in_arena)
        cd_json_arena_leave();
    cd_json_arena_fini(&arena);
    cd_buf_fini(&dims);
    return status;
}

/*
 * With the lock held: counts the request, sets Retry-After when the status
 * asks the client to come back, and draws the delay; returns it in ms.
 */
static unsigned conclude(emu_t *emu, int status, size_t body_len, emu_reply_t *reply)
{
    emu_faults_t *f = &emu->faults;

    emu->stats.requests++;
    emu->stats.bytes_received += body_len;
    emu_stats_count_status(emu->stats.responses, status);
    reply->status = status;
    if (emu_status_retryable(status))
        emu_faults_retry_after(f, cd_now_us(), reply->retry_after, sizeof(reply->retry_after));
    return emu_faults_hit(f, f->delay_ms != 0, f->delay_share) ? f->delay_ms : 0;
}

/*
 * With the lock held: why the Authorization header does not let the request
 * in, or NULL when it does.  The header and the token are never logged.
 */
static const char *unauthorized(const emu_faults_t *f, const char *authorization)
{
    static const char scheme[] = "Bearer ";

    if (!f->bearer[0])
        return NULL;
    if (!authorization)
        return "no Authorization header";
    if (strncmp(authorization, scheme, sizeof(scheme) - 1) != 0)
        return "the Authorization header is not a Bearer token";
    if (strcmp(authorization + sizeof(scheme) - 1, f->bearer) != 0)
        return "the bearer token is not the one required";
    return NULL;
}

/*
 * A request refused for its credentials (status 401 or 403, or 400 with
 * "Authentication not supported"), each of its count items refused with that
 * status and message as the service refuses them ({"itemsReceived":N,
 * "itemsAccepted":0,"errors":[...]}); count is 0 when the body could not be read.
 */
static unsigned refuse_all(emu_t *emu, int status, const char *message, const char *why,
                           size_t count, size_t body_len, emu_reply_t *reply)
{
    const char *sep = "";

    pthread_mutex_lock(&emu->mu);
    emu->stats.items_received += count;
    emu->stats.refused[status] += count;
    unsigned delay = conclude(emu, status, body_len, reply);
    pthread_mutex_unlock(&emu->mu);

    cd_buf_printf(&reply->body, "{\"itemsReceived\":%zu,\"itemsAccepted\":0,\"errors\":[",
                  count);
    for (size_t i = 0; i < count; i++) {
        cd_buf_printf(&reply->body, "%s{\"index\":%zu,\"statusCode\":%d,\"message\":", sep, i,
                      status);
        cd_json_put_string(&reply->body, message);
        cd_buf_putc(&reply->body, '}');
        sep = ",";
    }
    cd_buf_puts(&reply->body, "]}");
    cd_log_warn("track", "refused the request status=%d items=%zu bytes=%zu reason=%s", status,
                count, body_len, why);
    return delay;
}

/* The answer and reason auth_fault plays; NULL when it is off. */
static const char *auth_fault_message(int fault, const char **why)
{
    switch (fault) {
    case 401:
        *why = "auth_fault=401";
        return emu_status_message(401);
    case 403:
        *why = "auth_fault=403";
        return "Forbidden - the provided credentials do not grant the access to ingest the "
               "telemetry into the component";
    case EMU_AUTH_UNSUPPORTED:
        *why = "auth_fault=unsupported (a resource that requires Microsoft Entra, on /v2/track)";
        return "Authentication not supported";
    default:
        return NULL;
    }
}

bool emu_track_redirect(emu_t *emu, const char *self, const char *path, emu_reply_t *reply)
{
    pthread_mutex_lock(&emu->mu);
    const emu_faults_t *f = &emu->faults;
    int code = f->redirect_code, max_age = f->redirect_max_age;
    const char *target = f->redirect_self ? self
                         : emu->conf.redirect_listen.set ? emu->conf.redirect_listen.text
                                                         : NULL;
    if (code) {
        emu->stats.requests++;
        emu_stats_count_status(emu->stats.responses, target ? code : 500);
    }
    pthread_mutex_unlock(&emu->mu);
    if (!code)
        return false;
    if (!target) {
        emu_reply_error(reply, 500, "the redirect fault is on, but the emulator has no "
                                    "--redirect-listen port to send requests to");
        return true;
    }
    reply->status = code;
    reply->content_type = EMU_JSON;
    snprintf(reply->location, sizeof(reply->location), "http://%s%s", target, path);
    if (max_age >= 0)
        snprintf(reply->cache_control, sizeof(reply->cache_control), "max-age=%d", max_age);
    cd_log_debug("track", "redirected status=%d location=%s max_age=%d", code, reply->location,
                 max_age);
    return true;
}

/* A body refused whole: {"itemsReceived":0,"itemsAccepted":0,"errors":[{...}]}. */
static unsigned refuse_body(emu_t *emu, int status, const char *why, size_t body_len,
                            emu_reply_t *reply)
{
    pthread_mutex_lock(&emu->mu);
    unsigned delay = conclude(emu, status, body_len, reply);
    pthread_mutex_unlock(&emu->mu);

    cd_buf_printf(&reply->body,
                  "{\"itemsReceived\":0,\"itemsAccepted\":0,\"errors\":[{\"index\":0,"
                  "\"statusCode\":%d,\"message\":",
                  status);
    cd_json_put_string(&reply->body, why);
    cd_buf_puts(&reply->body, "}]}");
    cd_log_warn("track", "refused the request status=%d bytes=%zu reason=%s", status, body_len,
                why);
    return delay;
}

/*
 * With the lock held: the request fault, then for each valid item the item
 * fault, room in the store, and storing.  Returns the HTTP status.
 */
static int settle(emu_t *emu, item_t *items, size_t count, outcome_t *out)
{
    emu_faults_t *f = &emu->faults;
    int request_fault = emu_faults_hit(f, f->request_code != 0, f->request_share)
                            ? f->request_code
                            : 0;
    if (!request_fault && f->throttle_rate &&
        !emu_throttle_admit(&emu->throttle, cd_now_us() / 1000000, f->throttle_rate,
                            f->throttle_window, count, &out->throttled_for_s))
        request_fault = 429;

    for (size_t i = 0; i < count; i++) {
        item_t *it = &items[i];
        bool duplicate;

        if (request_fault) {
            /* The whole request failed: every item carries the request's status. */
            free(it->message);
            it->message = NULL;
            it->status = request_fault;
        } else if (it->status) {
            /* refused while judged */
        } else if (emu_faults_hit(f, f->item_code != 0, f->item_share)) {
            it->status = f->item_code;
        } else if (emu_store_full(&emu->store)) {
            refuse(it, 503, "The emulator's store is full (--max-items); DELETE /api/items "
                            "empties it");
            if (!emu->stats.full_warned) {
                out->store_filled = true;
                emu->stats.full_warned = true;
            }
        } else if (emu_store_add(&emu->store, &it->trace, it->hash, &duplicate) != CD_OK) {
            refuse(it, 500, "out of memory");
        } else {
            out->accepted++;
            out->duplicates += duplicate;
            continue;
        }
        emu_stats_count_status(emu->stats.refused, it->status);
        if (!out->first_refused) {
            out->first_refused = it;
            out->first_refused_index = i;
        }
    }
    emu->stats.items_received += count;
    emu->stats.items_accepted += out->accepted;
    emu->stats.duplicates += out->duplicates;
    if (out->accepted == count)
        return 200;
    return out->accepted ? 206 : out->first_refused->status;
}

static void put_answer(cd_buf_t *body, const item_t *items, size_t count, size_t accepted)
{
    const char *sep = "";
    cd_buf_printf(body, "{\"itemsReceived\":%zu,\"itemsAccepted\":%zu,\"errors\":[", count,
                  accepted);
    for (size_t i = 0; i < count; i++) {
        if (!items[i].status)
            continue;
        cd_buf_printf(body, "%s{\"index\":%zu,\"statusCode\":%d,\"message\":", sep, i,
                      items[i].status);
        cd_json_put_string(body, items[i].message ? items[i].message
                                                  : emu_status_message(items[i].status));
        cd_buf_putc(body, '}');
        sep = ",";
    }
    cd_buf_puts(body, "]}");
}

/* What a proxy in the service's place, or a connection dropped mid-answer, gives. */
static void put_mangled(cd_buf_t *body, emu_body_fault_t how, size_t count, emu_reply_t *reply)
{
    if (how == EMU_BODY_HTML) {
        reply->content_type = "text/html; charset=utf-8";
        cd_buf_puts(body, "<!DOCTYPE html><html><head><title>Sign in</title></head><body>"
                          "<h1>Your session has expired</h1><p>Sign in to continue.</p>"
                          "</body></html>");
        return;
    }
    char whole[96];
    int n = snprintf(whole, sizeof(whole), "{\"itemsReceived\":%zu,\"itemsAccepted\":%zu,"
                                           "\"errors\":[]}", count, count);
    cd_buf_append(body, whole, (size_t)n / 2);
}

static void log_request(int status, size_t count, const outcome_t *o, size_t body_len,
                        const emu_payload_t *payload, const char *encoding)
{
    const char *format = payload->format == EMU_FORMAT_ARRAY ? "array" : "stream";
    const item_t *r = o->first_refused;

    if (o->store_filled)
        cd_log_warn("track", "the store is full: items are refused with 503 until DELETE "
                             "/api/items");
    if (!r) {
        cd_log_debug("track",
                     "status=%d items=%zu accepted=%zu duplicates=%zu bytes=%zu format=%s "
                     "encoding=%.20s",
                     status, count, o->accepted, o->duplicates, body_len, format,
                     encoding ? encoding : "identity");
        return;
    }
    /* Refusals by validation point at a bug in the sender; injected faults were asked for. */
    cd_log(r->status == 400 ? CD_LOG_WARN : CD_LOG_DEBUG, "track",
           "status=%d items=%zu accepted=%zu refused=%zu bytes=%zu format=%s first_refused=%zu "
           "code=%d ikey=%s reason=%s",
           status, count, o->accepted, count - o->accepted, body_len, format,
           o->first_refused_index, r->status, r->ikey[0] ? r->ikey : "-",
           r->message ? r->message : emu_status_message(r->status));
}

void emu_track_handle(emu_t *emu, const char *encoding, const char *authorization,
                      const char *body, size_t len, emu_reply_t *reply)
{
    emu_payload_t payload;
    item_t *items = NULL;
    outcome_t outcome = {0};
    unsigned delay;
    cd_err_t err;

    reply->content_type = EMU_JSON;
    pthread_mutex_lock(&emu->mu);
    const char *why_not = unauthorized(&emu->faults, authorization);
    int refusal = why_not ? 401 : 0;
    const char *message = emu_status_message(401);
    const char *fault_why = NULL;
    const char *fault_message = auth_fault_message(emu->faults.auth_fault, &fault_why);
    if (fault_message) {
        refusal = emu->faults.auth_fault == 403 ? 403 : emu->faults.auth_fault == 401 ? 401 : 400;
        message = fault_message;
        why_not = fault_why;
    }
    pthread_mutex_unlock(&emu->mu);
    emu_payload_init(&payload);
    int status = emu_payload_decode(&payload, encoding, body, len, emu->conf.max_inflated, &err);
    if (!status)
        status = emu_payload_split(&payload, &err);
    if (why_not) {
        /* Authentication comes first; the body is read only to count its items. */
        delay = refuse_all(emu, refusal, message, why_not, status ? 0 : payload.count, len,
                           reply);
        if (delay)
            emu_sleep_ms(emu, delay);
        emu_payload_fini(&payload);
        return;
    }
    if (!status && payload.count == 0) {
        cd_err_set(&err, CD_ERROR, "The body holds no telemetry items");
        status = 400;
    } else if (!status && payload.count > EMU_BATCH_MAX_ITEMS) {
        cd_err_set(&err, CD_ERROR,
                   "Too many items in one request. Expected: at most %d, Actual: %zu",
                   EMU_BATCH_MAX_ITEMS, payload.count);
        status = 400;
    }
    if (!status && !(items = calloc(payload.count, sizeof(*items)))) {
        cd_err_set(&err, CD_ERROR, "out of memory");
        status = 500;
    }
    if (!status)
        status = judge_items(emu, &payload, cd_now_us(), items, &err);
    if (status) {
        delay = refuse_body(emu, status, err.msg, len, reply);
    } else {
        pthread_mutex_lock(&emu->mu);
        emu_faults_t *f = &emu->faults;
        emu_body_fault_t mangle = emu_faults_hit(f, f->body_fault != EMU_BODY_OK,
                                                 f->body_fault_share)
                                      ? f->body_fault
                                      : EMU_BODY_OK;
        if (mangle) {
            /* Answered in the service's place: nothing reached it, nothing is kept. */
            emu->stats.items_received += payload.count;
            status = 200;
        } else {
            status = settle(emu, items, payload.count, &outcome);
        }
        delay = conclude(emu, status, len, reply);
        pthread_mutex_unlock(&emu->mu);
        if (outcome.throttled_for_s)
            snprintf(reply->retry_after, sizeof(reply->retry_after), "%u",
                     outcome.throttled_for_s);
        if (mangle)
            put_mangled(&reply->body, mangle, payload.count, reply);
        else
            put_answer(&reply->body, items, payload.count, outcome.accepted);
        log_request(status, payload.count, &outcome, len, &payload, encoding);
        if (mangle)
            cd_log_warn("track", "answered status=200 items=%zu with %s; none kept",
                        payload.count, mangle == EMU_BODY_CUT ? "an answer cut short"
                                                              : "a proxy's HTML page");
    }
    if (delay)
        emu_sleep_ms(emu, delay);

    for (size_t i = 0; items && i < payload.count; i++) {
        emu_trace_fini(&items[i].trace);
        free(items[i].message);
    }
    free(items);
    emu_payload_fini(&payload);
}

void emu_track_too_large(emu_t *emu, size_t len, emu_reply_t *reply)
{
    char why[128];
    snprintf(why, sizeof(why), "The body is larger than %zu bytes", emu->conf.max_body);
    reply->content_type = EMU_JSON;
    /* No delay here: the client may still be sending the rest of the body. */
    refuse_body(emu, 413, why, len, reply);
}
