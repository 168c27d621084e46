/* policy.c -- the response policy of the exporter; see export_policy.h. */
#include "convdiag/export_policy.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_AFTER_MAX_MS (3600LL * 1000)
/* 9999-12-31T23:59:59Z, the last date a Retry-After is read as. */
#define LAST_DATE_S 253402300799LL

static bool is_transient(int code)
{
    switch (code) {
    case 408: /* timeout */
    case 429: /* too many requests */
    case 439: /* daily quota exceeded, retry later (the service's own code) */
    case 500:
    case 502:
    case 503:
    case 504:
        return true;
    default:
        return false;
    }
}

cd_export_fate_t cd_export_fate_of_response(int http_status)
{
    if (http_status == 200 || http_status == 206)
        return CD_EXPORT_ACCEPTED;
    if (http_status == 400 || http_status == 402)
        return CD_EXPORT_FINAL;
    /* 401/403 (credentials), 404 (endpoint), 5xx, no answer: the data is fine;
     * keep it until the service takes it or it ages out. */
    return CD_EXPORT_RESEND;
}

cd_export_fate_t cd_export_fate_of_item(int item_status)
{
    if (item_status == 200 || item_status == 206) /* 206 for an item: sampled */
        return CD_EXPORT_ACCEPTED;
    /* The service answers a missing or refused token with every item at 401
     * (403): the credentials are wrong, not the item. */
    if (item_status == 401 || item_status == 403)
        return CD_EXPORT_RESEND;
    return is_transient(item_status) ? CD_EXPORT_RESEND : CD_EXPORT_FINAL;
}

void cd_export_outcomes_clear(cd_export_outcome_t *outcomes, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(outcomes[i].message);
        outcomes[i].message = NULL;
    }
}

const char *cd_export_pause_name(cd_export_pause_t p)
{
    switch (p) {
    case CD_EXPORT_THROTTLED:
        return "throttled";
    case CD_EXPORT_BAD_CREDENTIALS:
        return "credentials";
    case CD_EXPORT_BAD_KEY:
        return "key";
    default:
        return "";
    }
}

/* The service's words for a request it cannot take from this sender at all. */
static bool names_bad_key(const char *msg)
{
    return msg && (strcasestr(msg, "Invalid instrumentation key") ||
                   strcasestr(msg, "Authentication not supported"));
}

static cd_export_pause_t pause_of(int status, const char *msg)
{
    if (status == 400 && names_bad_key(msg))
        return CD_EXPORT_BAD_KEY;
    if (status == 401 || status == 403)
        return CD_EXPORT_BAD_CREDENTIALS;
    if (status == 429 || status == 439)
        return CD_EXPORT_THROTTLED;
    return CD_EXPORT_GO;
}

/* The worse of two pauses: a configuration error outranks throttling. */
static cd_export_pause_t worse(cd_export_pause_t a, cd_export_pause_t b) { return a > b ? a : b; }

static bool set_message(cd_export_outcome_t *o, const char *msg)
{
    free(o->message);
    o->message = NULL;
    return !msg || (o->message = strdup(msg)) != NULL;
}

/* Why a 200 or 206 body is not the service's word on count items, NULL when it is. */
static const char *distrust_of(const cJSON *root, size_t count)
{
    const cJSON *received = cJSON_GetObjectItemCaseSensitive(root, "itemsReceived");
    if (!cJSON_IsObject(root))
        return "the body is not the service's JSON answer";
    if (!cJSON_IsNumber(received) ||
        !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(root, "itemsAccepted")) ||
        !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root, "errors")))
        return "the body lacks itemsReceived, itemsAccepted or errors";
    if (received->valuedouble != (double)count)
        return "itemsReceived is not the number of items sent";
    return NULL;
}

int cd_export_outcomes_from_response(cd_export_outcome_t *outcomes, size_t count,
                                     int http_status, const char *body, size_t body_len,
                                     const char *fallback, cd_export_answer_t *answer)
{
    cd_export_fate_t fate = cd_export_fate_of_response(http_status);
    cJSON *root = body && body_len ? cJSON_ParseWithLength(body, body_len) : NULL;
    bool success = fate == CD_EXPORT_ACCEPTED;
    bool *named = NULL;

    *answer = (cd_export_answer_t){.pause = pause_of(http_status, NULL)};
    if (success && (answer->distrust = distrust_of(root, count)) != NULL)
        fate = CD_EXPORT_RESEND; /* the body does not say what was taken: nothing was */
    for (size_t i = 0; i < count; i++) {
        outcomes[i] = (cd_export_outcome_t){.fate = fate, .status = http_status};
        if (fate != CD_EXPORT_ACCEPTED && !set_message(&outcomes[i], fallback))
            goto oom;
    }
    if (answer->distrust) {
        cJSON_Delete(root);
        return 0;
    }
    if (success && count && !(named = calloc(count, sizeof(*named))))
        goto oom;

    const cJSON *errors = cJSON_GetObjectItemCaseSensitive(root, "errors");
    const cJSON *e;
    if (!cJSON_IsArray(errors))
        errors = NULL; /* not the service's answer: the status alone decides */
    cJSON_ArrayForEach(e, errors) {
        const cJSON *index = cJSON_GetObjectItemCaseSensitive(e, "index");
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "statusCode");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
        /* An index that does not name one of the items exactly names none. */
        if (!cJSON_IsNumber(index) || !cJSON_IsNumber(code) || index->valuedouble < 0 ||
            index->valuedouble >= (double)count ||
            index->valuedouble != (double)(size_t)index->valuedouble)
            continue;
        size_t i = (size_t)index->valuedouble;
        cd_export_outcome_t *o = &outcomes[i];
        o->status = code->valueint;
        o->fate = cd_export_fate_of_item(o->status);
        if (!set_message(o, cJSON_IsString(msg) ? msg->valuestring : fallback))
            goto oom;
        answer->pause = worse(answer->pause, pause_of(o->status, o->message));
        if (named)
            named[i] = true;
        answer->applied++;
    }

    if (success) {
        /* itemsAccepted counts the items taken without comment: those no entry names. */
        size_t unnamed = 0;
        for (size_t i = 0; i < count; i++)
            unnamed += !named[i];
        double said = cJSON_GetObjectItemCaseSensitive(root, "itemsAccepted")->valuedouble;
        if (said < (double)unnamed) {
            answer->distrust = "itemsAccepted is less than the items no error names";
            for (size_t i = 0; i < count; i++) {
                if (named[i])
                    continue;
                outcomes[i].fate = CD_EXPORT_RESEND;
                if (!set_message(&outcomes[i], fallback))
                    goto oom;
            }
        }
    }
    /* The key or the credentials are wrong: what the items would have met is unknown. */
    if (answer->pause == CD_EXPORT_BAD_KEY || answer->pause == CD_EXPORT_BAD_CREDENTIALS)
        for (size_t i = 0; i < count; i++)
            if (outcomes[i].fate == CD_EXPORT_FINAL)
                outcomes[i].fate = CD_EXPORT_RESEND;
    free(named);
    cJSON_Delete(root);
    return 0;
oom:
    free(named);
    cJSON_Delete(root);
    cd_export_outcomes_clear(outcomes, count);
    return -1;
}

bool cd_export_retry_after_parse(const char *value, int64_t now_us, int64_t *delay_ms)
{
    while (*value == ' ' || *value == '\t')
        value++;
    if (*value >= '0' && *value <= '9') {
        char *end;
        errno = 0;
        long long secs = strtoll(value, &end, 10);
        while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
            end++;
        if ((errno && errno != ERANGE) || *end)
            return false;
        /* Digits past LLONG_MAX are still a number of seconds: a long one. */
        *delay_ms = secs > RETRY_AFTER_MAX_MS / 1000 ? RETRY_AFTER_MAX_MS : secs * 1000;
        return true;
    }
    time_t when = curl_getdate(value, NULL);
    if (when < 0)
        return false;
    /* curl takes years up to 2^31 - 1, whose seconds times 1000 overflow: read any date
     * past 9999 as its end, still far beyond what the back-off waits. */
    if (when > LAST_DATE_S)
        when = LAST_DATE_S;
    int64_t ms = (int64_t)when * 1000 - now_us / 1000;
    *delay_ms = ms < 0 ? 0 : ms;
    return true;
}

int64_t cd_export_backoff_next(cd_export_backoff_t *b, int64_t retry_after_ms, uint32_t random)
{
    int64_t d = b->min_ms;
    for (int i = 0; i < b->failures && d < b->max_ms; i++)
        d *= 2;
    if (d > b->max_ms)
        d = b->max_ms;
    if (b->failures < 62)
        b->failures++;
    d = d / 2 + (int64_t)(random % (uint32_t)(d / 2 + 1));
    if (retry_after_ms > d)
        d = retry_after_ms > RETRY_AFTER_MAX_MS ? RETRY_AFTER_MAX_MS : retry_after_ms;
    return d;
}
