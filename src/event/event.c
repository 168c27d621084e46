/*
 * event.c -- parses and validates an input event (contract v1).
 *
 * Validation happens in three passes over the message:
 *   1. a byte scan: size, UTF-8, NUL bytes and escapes, nesting depth;
 *   2. cJSON parse, with trailing garbage refused;
 *   3. one walk over the top-level members, each checked by the rule of its
 *      field, then the cross-field rules (required fields, status-dependent
 *      fields).
 * Every rejection names the field, the offending value and the rule.
 */
#include "convdiag/event.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convdiag/buf.h"
#include "convdiag/json.h"
#include "convdiag/scenario.h"
#include "convdiag/timeutil.h"
#include "convdiag/utf8.h"

#define MAX_DEPTH 16
#define MAX_DURATION_MS (int64_t)(366LL * 24 * 3600 * 1000) /* one year */
#define MAX_ATTR_KEY_CHARS 150

static const char *const status_names[] = {"Started", "Completed", "Failed"};
static const char *const participant_types[] = {"HumanAgent", "VirtualAgent", "Customer",
                                                "Supervisor", "System"};

const char *cd_event_status_name(cd_event_status_t status)
{
    return status_names[status];
}

void cd_event_limits_init(cd_event_limits_t *limits)
{
    limits->max_bytes = 64 * 1024;
    limits->max_id_chars = 128;
    limits->max_text_chars = 8192;
    limits->max_attributes = 64;
    limits->strict_scenarios = false;
}

/* The value as it may appear inside a reason: shortened, never split mid-character. */
static const char *excerpt(const char *s, char *buf, size_t size)
{
    size_t n = strlen(s);
    if (n < size) {
        memcpy(buf, s, n + 1);
        return buf;
    }
    n = size - 4;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    memcpy(buf, s, n);
    memcpy(buf + n, "...", 4);
    return buf;
}

static const char *type_name(const cJSON *v)
{
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsArray(v)) return "an array";
    return "an object";
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* End of the JSON number starting at i (RFC 8259 grammar, which cJSON does not
 * enforce: it takes "012" and "1."), or 0 when it is malformed. */
static size_t number_end(const char *buf, size_t len, size_t i)
{
    if (buf[i] == '-')
        i++;
    if (i >= len || !is_digit(buf[i]))
        return 0;
    if (buf[i] == '0') {
        i++;
    } else {
        while (i < len && is_digit(buf[i]))
            i++;
    }
    if (i < len && buf[i] == '.') {
        if (++i >= len || !is_digit(buf[i]))
            return 0;
        while (i < len && is_digit(buf[i]))
            i++;
    }
    if (i < len && (buf[i] == 'e' || buf[i] == 'E')) {
        i++;
        if (i < len && (buf[i] == '+' || buf[i] == '-'))
            i++;
        if (i >= len || !is_digit(buf[i]))
            return 0;
        while (i < len && is_digit(buf[i]))
            i++;
    }
    if (i < len && (is_digit(buf[i]) || buf[i] == '.'))
        return 0; /* "012", "1.2.3" */
    return i;
}

/* Pass 1: what cJSON would accept silently but PostgreSQL text cannot hold. */
static cd_status_t scan_bytes(const char *buf, size_t len, cd_err_t *err)
{
    int depth = 0;
    bool in_string = false;

    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (c == '\0')
            return cd_err_set(err, CD_ERROR, "message contains a NUL byte at offset %zu", i);
        if (in_string) {
            if ((unsigned char)c < 0x20)
                return cd_err_set(err, CD_ERROR,
                                  "message has an unescaped control character in a string at "
                                  "offset %zu",
                                  i);
            if (c == '\\') {
                if (i + 5 < len && memcmp(buf + i + 1, "u0000", 5) == 0)
                    return cd_err_set(err, CD_ERROR,
                                      "message contains an escaped NUL (\\u0000) at offset %zu",
                                      i);
                i++; /* skip the escaped character */
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t end = number_end(buf, len, i);
            if (end == 0)
                return cd_err_set(err, CD_ERROR, "message has a malformed number at offset %zu",
                                  i);
            i = end - 1;
        } else if (c == '{' || c == '[') {
            if (++depth > MAX_DEPTH)
                return cd_err_set(err, CD_ERROR, "message nests deeper than %d levels",
                                  MAX_DEPTH);
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return CD_OK;
}

static bool is_uuid(const char *s)
{
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                     (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return s[36] == '\0';
}

static int one_of(const char *s, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return (int)i;
    return -1;
}

/* Each field's rule; returns the validated string, or NULL with err set. */
typedef struct check_ctx {
    const cd_event_limits_t *limits;
    cd_err_t *err;
    char buf[80]; /* for excerpts */
} check_ctx_t;

static const char *want_string(check_ctx_t *c, const cJSON *v, const char *field)
{
    if (!cJSON_IsString(v)) {
        cd_err_set(c->err, CD_ERROR, "%s: expected a string, got %s", field, type_name(v));
        return NULL;
    }
    return v->valuestring;
}

/* A non-empty string of at most max code points without control characters. */
static const char *want_text(check_ctx_t *c, const cJSON *v, const char *field, size_t max,
                             bool allow_control)
{
    const char *s = want_string(c, v, field);
    if (!s)
        return NULL;
    size_t len = strlen(s);
    if (len == 0) {
        cd_err_set(c->err, CD_ERROR, "%s: must not be empty", field);
        return NULL;
    }
    size_t chars = cd_utf8_length(s, len);
    if (chars > max) {
        cd_err_set(c->err, CD_ERROR, "%s: '%s' is %zu characters, over the limit of %zu", field,
                   excerpt(s, c->buf, 40), chars, max);
        return NULL;
    }
    if (!allow_control) {
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
            if (*p < 0x20 || *p == 0x7f) {
                cd_err_set(c->err, CD_ERROR, "%s: '%s' contains a control character", field,
                           excerpt(s, c->buf, 40));
                return NULL;
            }
        }
    }
    return s;
}

static const char *want_uuid(check_ctx_t *c, const cJSON *v, const char *field)
{
    const char *s = want_string(c, v, field);
    if (s && !is_uuid(s)) {
        cd_err_set(c->err, CD_ERROR, "%s: '%s' is not a UUID", field, excerpt(s, c->buf, 60));
        return NULL;
    }
    return s;
}

static const char *want_enum(check_ctx_t *c, const cJSON *v, const char *field,
                             const char *const *names, size_t n, int *index)
{
    const char *s = want_string(c, v, field);
    if (!s)
        return NULL;
    *index = one_of(s, names, n);
    if (*index < 0) {
        char allowed[160] = "";
        for (size_t i = 0; i < n; i++) {
            strcat(allowed, names[i]);
            if (i + 1 < n)
                strcat(allowed, ", ");
        }
        cd_err_set(c->err, CD_ERROR, "%s: '%s' is not one of %s", field,
                   excerpt(s, c->buf, 60), allowed);
        return NULL;
    }
    return s;
}

/* channelType is an open set; what all its values share is this form. */
static const char *want_channel(check_ctx_t *c, const cJSON *v)
{
    const char *s = want_text(c, v, "channelType", 64, false);
    if (!s)
        return NULL;
    for (const char *p = s; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-')) {
            cd_err_set(c->err, CD_ERROR,
                       "channelType: '%s' must be lower-case letters, digits, '_' or '-'",
                       excerpt(s, c->buf, 60));
            return NULL;
        }
    }
    return s;
}

static bool check_duration(check_ctx_t *c, const cJSON *v, int64_t *out)
{
    if (!cJSON_IsNumber(v))
        return cd_err_set(c->err, CD_ERROR, "durationMs: expected a number, got %s",
                          type_name(v)),
               false;
    double d = v->valuedouble;
    char text[32];
    if (!(d >= 0) || d != floor(d) || d > (double)MAX_DURATION_MS)
        return cd_err_set(c->err, CD_ERROR,
                          "durationMs: %s is not a whole number of milliseconds between 0 and "
                          "%lld",
                          cd_json_number_text(d, text, sizeof(text)), (long long)MAX_DURATION_MS),
               false;
    *out = (int64_t)d;
    return true;
}

static bool check_attributes(check_ctx_t *c, const cJSON *v, cd_event_t *ev)
{
    if (!cJSON_IsObject(v))
        return cd_err_set(c->err, CD_ERROR, "attributes: expected an object, got %s",
                          type_name(v)),
               false;
    size_t n = 0;
    for (const cJSON *a = v->child; a; a = a->next) {
        if (++n > c->limits->max_attributes)
            return cd_err_set(c->err, CD_ERROR, "attributes: more than %zu entries",
                              c->limits->max_attributes),
                   false;
        size_t klen = strlen(a->string);
        if (klen == 0 || cd_utf8_length(a->string, klen) > MAX_ATTR_KEY_CHARS)
            return cd_err_set(c->err, CD_ERROR,
                              "attributes: key '%s' must have 1 to %d characters",
                              excerpt(a->string, c->buf, 40), MAX_ATTR_KEY_CHARS),
                   false;
        for (const cJSON *b = v->child; b != a; b = b->next)
            if (strcmp(a->string, b->string) == 0)
                return cd_err_set(c->err, CD_ERROR, "attributes: key '%s' appears twice",
                                  excerpt(a->string, c->buf, 40)),
                       false;
        if (cJSON_IsString(a)) {
            size_t len = strlen(a->valuestring);
            if (cd_utf8_length(a->valuestring, len) > c->limits->max_text_chars)
                return cd_err_set(c->err, CD_ERROR,
                                  "attributes.%s: value is over the limit of %zu characters",
                                  excerpt(a->string, c->buf, 40), c->limits->max_text_chars),
                       false;
        } else if (cJSON_IsNumber(a) && !isfinite(a->valuedouble)) {
            return cd_err_set(c->err, CD_ERROR,
                              "attributes.%s: the number is too large to be represented",
                              excerpt(a->string, c->buf, 40)),
                   false;
        } else if (!cJSON_IsNumber(a) && !cJSON_IsBool(a)) {
            return cd_err_set(c->err, CD_ERROR,
                              "attributes.%s: expected a string, number or boolean, got %s",
                              excerpt(a->string, c->buf, 40), type_name(a)),
                   false;
        }
    }
    /* Written by hand: cJSON's printer would round numbers to 15 digits. */
    cd_buf_t b;
    cd_buf_init(&b);
    cd_buf_putc(&b, '{');
    for (const cJSON *a = v->child; a; a = a->next) {
        if (a != v->child)
            cd_buf_putc(&b, ',');
        cd_json_put_string(&b, a->string);
        cd_buf_putc(&b, ':');
        if (cJSON_IsString(a))
            cd_json_put_string(&b, a->valuestring);
        else if (cJSON_IsNumber(a))
            cd_json_put_number(&b, a->valuedouble);
        else
            cd_buf_puts(&b, cJSON_IsTrue(a) ? "true" : "false");
    }
    cd_buf_putc(&b, '}');
    if (b.oom) {
        cd_buf_fini(&b);
        return cd_err_set(c->err, CD_ERROR, "attributes: out of memory"), false;
    }
    ev->attributes_json = b.data; /* ownership moves to the event */
    return true;
}

enum field {
    F_EVENT_ID, F_TIMESTAMP, F_ORGANIZATION_ID, F_LIVE_WORK_ITEM_ID, F_SCENARIO, F_STATUS,
    F_CHANNEL_TYPE, F_PARTICIPANT_TYPE, F_USER_ID, F_SESSION_ID, F_TRANSACTION_ID,
    F_TRACEPARENT, F_TRACESTATE, F_DURATION_MS, F_FAILURE_REASON, F_ATTRIBUTES, F_COUNT
};

static const char *const field_names[F_COUNT] = {
    "eventId", "timestamp", "organizationId", "liveWorkItemId", "scenario", "status",
    "channelType", "participantType", "userId", "sessionId", "transactionId", "traceparent",
    "tracestate", "durationMs", "failureReason", "attributes",
};
#define REQUIRED_FIELDS 7 /* the first seven above */

static bool check_field(check_ctx_t *c, enum field f, const cJSON *v, cd_event_t *ev)
{
    const cd_event_limits_t *lim = c->limits;
    int idx;

    switch (f) {
    case F_EVENT_ID:
        return (ev->event_id = want_text(c, v, "eventId", lim->max_id_chars, false)) != NULL;
    case F_TIMESTAMP:
        if (!(ev->timestamp = want_string(c, v, "timestamp")))
            return false;
        {
            cd_err_t terr;
            if (cd_time_parse_rfc3339(ev->timestamp, 3, &ev->ts_us, &terr) != CD_OK)
                return cd_err_set(c->err, CD_ERROR, "timestamp: %s", terr.msg), false;
        }
        return true;
    case F_ORGANIZATION_ID:
        return (ev->organization_id = want_uuid(c, v, "organizationId")) != NULL;
    case F_LIVE_WORK_ITEM_ID:
        return (ev->live_work_item_id =
                    want_text(c, v, "liveWorkItemId", lim->max_id_chars, false)) != NULL;
    case F_SCENARIO:
        return (ev->scenario_received = want_text(c, v, "scenario", 128, false)) != NULL;
    case F_STATUS:
        if (!want_enum(c, v, "status", status_names, CD_ARRAY_LEN(status_names), &idx))
            return false;
        ev->status = (cd_event_status_t)idx;
        return true;
    case F_CHANNEL_TYPE:
        return (ev->channel_type = want_channel(c, v)) != NULL;
    case F_PARTICIPANT_TYPE:
        return (ev->participant_type = want_enum(c, v, "participantType", participant_types,
                                                 CD_ARRAY_LEN(participant_types), &idx)) != NULL;
    case F_USER_ID:
        return (ev->user_id = want_uuid(c, v, "userId")) != NULL;
    case F_SESSION_ID:
        return (ev->session_id = want_text(c, v, "sessionId", lim->max_id_chars, false)) != NULL;
    case F_TRANSACTION_ID:
        return (ev->transaction_id =
                    want_text(c, v, "transactionId", lim->max_id_chars, false)) != NULL;
    case F_TRACEPARENT:
        /* An invalid value is ignored by the tagger, not refused: only the type is ruled here. */
        return (ev->traceparent =
                    want_text(c, v, "traceparent", lim->max_text_chars, false)) != NULL;
    case F_TRACESTATE:
        return (ev->tracestate = want_text(c, v, "tracestate", lim->max_text_chars, false)) !=
               NULL;
    case F_DURATION_MS:
        return check_duration(c, v, &ev->duration_ms);
    case F_FAILURE_REASON:
        return (ev->failure_reason =
                    want_text(c, v, "failureReason", lim->max_text_chars, true)) != NULL;
    case F_ATTRIBUTES:
        return check_attributes(c, v, ev);
    case F_COUNT:
        break;
    }
    return false;
}

static int field_index(const char *name)
{
    return one_of(name, field_names, F_COUNT);
}

cd_status_t cd_event_parse(cd_event_t *ev, const char *buf, size_t len,
                           const cd_event_limits_t *limits, cd_err_t *err)
{
    check_ctx_t c = {.limits = limits, .err = err};
    const cJSON *seen[F_COUNT] = {0};
    size_t bad_at;

    memset(ev, 0, sizeof(*ev));
    ev->duration_ms = -1;

    if (len > limits->max_bytes)
        return cd_err_set(err, CD_ERROR, "message is %zu bytes, over the limit of %zu", len,
                          limits->max_bytes);
    if (len == 0)
        return cd_err_set(err, CD_ERROR, "message is empty");
    if (!cd_utf8_valid(buf, len, &bad_at))
        return cd_err_set(err, CD_ERROR, "message is not valid UTF-8 (byte offset %zu)", bad_at);
    if (scan_bytes(buf, len, err) != CD_OK)
        return CD_ERROR;

    const char *end = NULL;
    ev->root = cJSON_ParseWithLengthOpts(buf, len, &end, false);
    if (!ev->root) {
        /* The parse end, not cJSON_GetErrorPtr(): that one is process-wide,
         * and other threads parse too. */
        size_t off = end && end >= buf && end <= buf + len ? (size_t)(end - buf) : 0;
        return cd_err_set(err, CD_ERROR, "message is not valid JSON (error near byte offset %zu)",
                          off);
    }
    while (end < buf + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
        end++;
    if (end != buf + len) {
        cd_err_set(err, CD_ERROR, "message has data after the JSON value (byte offset %zu)",
                   (size_t)(end - buf));
        goto fail;
    }
    if (!cJSON_IsObject(ev->root)) {
        cd_err_set(err, CD_ERROR, "message is %s, not a JSON object", type_name(ev->root));
        goto fail;
    }

    for (const cJSON *v = ev->root->child; v; v = v->next) {
        int f = field_index(v->string);
        if (f < 0) {
            cd_err_set(err, CD_ERROR, "%s: unknown field (contract v1 has no such field)",
                       excerpt(v->string, c.buf, 60));
            goto fail;
        }
        if (seen[f]) {
            cd_err_set(err, CD_ERROR, "%s: field appears twice", field_names[f]);
            goto fail;
        }
        seen[f] = v;
        /* null stands for "absent" in optional fields; required fields need a value. */
        if (cJSON_IsNull(v) && f >= REQUIRED_FIELDS)
            continue;
        if (!check_field(&c, (enum field)f, v, ev))
            goto fail;
    }

    for (int f = 0; f < REQUIRED_FIELDS; f++) {
        if (!seen[f]) {
            cd_err_set(err, CD_ERROR, "%s: required field is missing", field_names[f]);
            goto fail;
        }
    }
    if (ev->duration_ms >= 0 && ev->status == CD_EVENT_STARTED) {
        cd_err_set(err, CD_ERROR, "durationMs: only allowed when status is Completed or Failed");
        goto fail;
    }
    if (ev->failure_reason && ev->status != CD_EVENT_FAILED) {
        cd_err_set(err, CD_ERROR, "failureReason: only allowed when status is Failed, not %s",
                   status_names[ev->status]);
        goto fail;
    }

    const cd_scenario_t *sc = cd_scenario_lookup(ev->scenario_received);
    if (sc) {
        ev->scenario = sc->name;
        ev->category = sc->category;
        ev->scenario_known = true;
    } else if (limits->strict_scenarios) {
        cd_err_set(err, CD_ERROR, "scenario: '%s' is not a known scenario or alias",
                   excerpt(ev->scenario_received, c.buf, 60));
        goto fail;
    } else {
        ev->scenario = ev->scenario_received;
        ev->category = CD_CATEGORY_OTHER;
    }
    return CD_OK;

fail:
    cd_event_fini(ev);
    return CD_ERROR;
}

void cd_event_fini(cd_event_t *ev)
{
    free(ev->attributes_json);
    cJSON_Delete(ev->root);
    ev->attributes_json = NULL;
    ev->root = NULL;
}

bool cd_event_detach(cd_event_t *ev, cd_event_copy_fn copy, void *arg, struct cJSON **tree)
{
    const char **fields[] = {
        &ev->event_id,       &ev->timestamp,      &ev->organization_id, &ev->live_work_item_id,
        &ev->scenario_received, &ev->scenario,    &ev->category,        &ev->channel_type,
        &ev->participant_type, &ev->user_id,      &ev->session_id,      &ev->transaction_id,
        &ev->traceparent,    &ev->tracestate,     &ev->failure_reason,
    };
    const char *copies[CD_ARRAY_LEN(fields)];

    for (size_t i = 0; i < CD_ARRAY_LEN(fields); i++) {
        copies[i] = *fields[i] ? copy(arg, *fields[i], strlen(*fields[i])) : NULL;
        if (*fields[i] && !copies[i])
            return false;
    }
    for (size_t i = 0; i < CD_ARRAY_LEN(fields); i++)
        *fields[i] = copies[i];
    *tree = ev->root;
    ev->root = NULL;
    return true;
}
