/* faults.c -- fault switches, their text and JSON forms, and the draws; see faults.h. */
#include "faults.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "convdiag/json.h"
#include "throttle.h"

/* What a client may be told to come back later with, plus 400 (an item the
 * service will never take) and 402 (daily cap reached), which an exporter
 * must take as permanent. */
static const int fault_codes[] = {400, 402, 408, 429, 439, 500, 502, 503, 504};

typedef enum {
    K_CODE, K_SHARE, K_UINT, K_FORMAT, K_DOWN, K_DOWN_FOR, K_BEARER, K_REDIRECT, K_TARGET,
    K_MAX_AGE, K_AUTH, K_BODY,
} kind_t;

static const struct setting {
    const char *name;
    kind_t kind;
    size_t offset; /* of the field in emu_faults_t; down and down_for set two */
    unsigned max;  /* K_UINT, K_DOWN_FOR, and K_BEARER's length */
} settings[] = {
    /* Applied in this order, whatever the order in a /control body: down
     * before down_for, so {"down_for":5,"down":true} means five seconds. */
    {"request_fault_code", K_CODE, offsetof(emu_faults_t, request_code), 0},
    {"request_fault_share", K_SHARE, offsetof(emu_faults_t, request_share), 0},
    {"item_fault_code", K_CODE, offsetof(emu_faults_t, item_code), 0},
    {"item_fault_share", K_SHARE, offsetof(emu_faults_t, item_share), 0},
    {"retry_after", K_UINT, offsetof(emu_faults_t, retry_after), 86400},
    {"retry_after_format", K_FORMAT, offsetof(emu_faults_t, retry_after_format), 0},
    {"delay_ms", K_UINT, offsetof(emu_faults_t, delay_ms), 600000},
    {"delay_share", K_SHARE, offsetof(emu_faults_t, delay_share), 0},
    {"down", K_DOWN, 0, 0},
    {"down_for", K_DOWN_FOR, 0, 7 * 86400},
    {"bearer", K_BEARER, offsetof(emu_faults_t, bearer), EMU_BEARER_MAX},
    {"redirect", K_REDIRECT, offsetof(emu_faults_t, redirect_code), 0},
    {"redirect_to", K_TARGET, offsetof(emu_faults_t, redirect_self), 0},
    {"redirect_max_age", K_MAX_AGE, offsetof(emu_faults_t, redirect_max_age), 86400 * 365},
    {"auth_fault", K_AUTH, offsetof(emu_faults_t, auth_fault), 0},
    {"body_fault", K_BODY, offsetof(emu_faults_t, body_fault), 0},
    {"body_fault_share", K_SHARE, offsetof(emu_faults_t, body_fault_share), 0},
    {"throttle_rate", K_UINT, offsetof(emu_faults_t, throttle_rate), 100000000},
    {"throttle_window", K_UINT, offsetof(emu_faults_t, throttle_window), EMU_THROTTLE_WINDOW_MAX},
};

/* Every fault off; the generator and the bearer token are left alone. */
static void switches_off(emu_faults_t *f)
{
    emu_faults_t kept = *f;
    memset(f, 0, sizeof(*f));
    f->request_share = f->item_share = f->delay_share = f->body_fault_share = 1.0;
    f->retry_after = 1;
    f->redirect_max_age = -1;
    f->throttle_window = 60;
    f->retry_after_format = EMU_RETRY_SECONDS;
    f->rng = kept.rng;
    memcpy(f->bearer, kept.bearer, sizeof(f->bearer));
}

void emu_faults_init(emu_faults_t *f, uint64_t seed)
{
    f->rng = seed;
    f->bearer[0] = '\0';
    switches_off(f);
}

static bool parse_uint(const char *s, unsigned max, unsigned *out)
{
    char *end;
    if (!s[0] || s[0] == '-' || s[0] == '+')
        return false;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v > max)
        return false;
    *out = (unsigned)v;
    return true;
}

static bool fault_code_known(unsigned code)
{
    for (size_t i = 0; i < CD_ARRAY_LEN(fault_codes); i++)
        if ((int)code == fault_codes[i])
            return true;
    return false;
}

cd_status_t emu_faults_set(emu_faults_t *f, const char *name, const char *value,
                           int64_t now_mono_us, cd_err_t *err)
{
    const struct setting *s = NULL;
    for (size_t i = 0; i < CD_ARRAY_LEN(settings) && !s; i++)
        if (strcmp(settings[i].name, name) == 0)
            s = &settings[i];
    if (!s)
        return cd_err_set(err, CD_ERROR, "no such switch");

    void *field = (char *)f + s->offset;
    unsigned u;
    switch (s->kind) {
    case K_CODE:
        if (!parse_uint(value, 999, &u) || (u != 0 && !fault_code_known(u)))
            return cd_err_set(err, CD_ERROR,
                              "'%s' is not one of 0 (off), 400, 402, 408, 429, 439, 500, 502, "
                              "503, 504",
                              value);
        *(int *)field = (int)u;
        return CD_OK;
    case K_SHARE: {
        char *end;
        double p = strtod(value, &end);
        /* Digits, point and exponent only: no hex, inf or nan. */
        if (!value[0] || strspn(value, "0123456789.eE+-") != strlen(value) || *end ||
            !isfinite(p) || p < 0 || p > 1)
            return cd_err_set(err, CD_ERROR, "'%s' is not a number from 0 to 1", value);
        *(double *)field = p;
        return CD_OK;
    }
    case K_UINT:
        if (!parse_uint(value, s->max, &u))
            return cd_err_set(err, CD_ERROR, "'%s' is not a whole number from 0 to %u", value,
                              s->max);
        *(unsigned *)field = u;
        return CD_OK;
    case K_FORMAT:
        if (strcmp(value, "seconds") == 0)
            *(emu_retry_format_t *)field = EMU_RETRY_SECONDS;
        else if (strcmp(value, "date") == 0)
            *(emu_retry_format_t *)field = EMU_RETRY_DATE;
        else
            return cd_err_set(err, CD_ERROR, "'%s' is not 'seconds' or 'date'", value);
        return CD_OK;
    case K_DOWN:
        if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0)
            return cd_err_set(err, CD_ERROR, "'%s' is not true or false", value);
        f->down = strcmp(value, "true") == 0;
        f->down_until_us = 0;
        return CD_OK;
    case K_DOWN_FOR:
        if (!parse_uint(value, s->max, &u) || u == 0)
            return cd_err_set(err, CD_ERROR, "'%s' is not a whole number of seconds from 1 to %u",
                              value, s->max);
        f->down = true;
        f->down_until_us = now_mono_us + (int64_t)u * 1000000;
        return CD_OK;
    case K_BEARER: {
        /* What an Authorization header can carry; the value is never quoted back. */
        size_t len = strlen(value);
        if (len > s->max)
            return cd_err_set(err, CD_ERROR, "the token is longer than %u bytes", s->max);
        for (const char *c = value; *c; c++)
            if (*c <= ' ' || *c > '~')
                return cd_err_set(err, CD_ERROR,
                                  "the token is not visible ASCII without spaces");
        memcpy(field, value, len + 1);
        return CD_OK;
    }
    case K_REDIRECT:
        if (!parse_uint(value, 999, &u) || (u != 0 && u != 307 && u != 308))
            return cd_err_set(err, CD_ERROR, "'%s' is not 0 (off), 307 or 308", value);
        *(int *)field = (int)u;
        return CD_OK;
    case K_TARGET:
        if (strcmp(value, "self") != 0 && strcmp(value, "alternate") != 0)
            return cd_err_set(err, CD_ERROR,
                              "'%s' is not 'alternate' (the --redirect-listen port) or 'self'",
                              value);
        *(bool *)field = strcmp(value, "self") == 0;
        return CD_OK;
    case K_MAX_AGE:
        if (strcmp(value, "none") == 0) {
            *(int *)field = -1;
            return CD_OK;
        }
        if (!parse_uint(value, s->max, &u))
            return cd_err_set(err, CD_ERROR, "'%s' is not 'none' or seconds from 0 to %u", value,
                              s->max);
        *(int *)field = (int)u;
        return CD_OK;
    case K_AUTH:
        if (strcmp(value, "off") == 0 || strcmp(value, "0") == 0)
            *(int *)field = 0;
        else if (strcmp(value, "401") == 0 || strcmp(value, "403") == 0)
            *(int *)field = atoi(value);
        else if (strcmp(value, "unsupported") == 0)
            *(int *)field = EMU_AUTH_UNSUPPORTED;
        else
            return cd_err_set(err, CD_ERROR, "'%s' is not off, 401, 403 or unsupported", value);
        return CD_OK;
    case K_BODY:
        if (strcmp(value, "off") == 0)
            *(emu_body_fault_t *)field = EMU_BODY_OK;
        else if (strcmp(value, "cut") == 0)
            *(emu_body_fault_t *)field = EMU_BODY_CUT;
        else if (strcmp(value, "html") == 0)
            *(emu_body_fault_t *)field = EMU_BODY_HTML;
        else
            return cd_err_set(err, CD_ERROR, "'%s' is not off, cut or html", value);
        return CD_OK;
    }
    return CD_ERROR;
}

/* A JSON value in the text form emu_faults_set reads. */
static bool value_text(const cJSON *v, char *buf, size_t size)
{
    if (cJSON_IsBool(v))
        snprintf(buf, size, "%s", cJSON_IsTrue(v) ? "true" : "false");
    else if (cJSON_IsNumber(v))
        cd_json_number_text(v->valuedouble, buf, size);
    else if (cJSON_IsString(v))
        snprintf(buf, size, "%s", v->valuestring);
    else
        return false;
    return true;
}

cd_status_t emu_faults_apply_json(emu_faults_t *f, const char *json, size_t len,
                                  int64_t now_mono_us, cd_err_t *err)
{
    cJSON *root = cJSON_ParseWithLength(json, len);
    emu_faults_t next = *f;
    cd_status_t st = CD_ERROR;
    char text[64];

    if (!cJSON_IsObject(root)) {
        cd_err_set(err, CD_ERROR, "the body is not a JSON object");
        goto out;
    }
    const cJSON *member;
    cJSON_ArrayForEach(member, root) {
        bool known = strcmp(member->string, "reset") == 0;
        for (size_t i = 0; i < CD_ARRAY_LEN(settings) && !known; i++)
            known = strcmp(settings[i].name, member->string) == 0;
        if (!known) {
            cd_err_set(err, CD_ERROR, "unknown switch '%s'", member->string);
            goto out;
        }
    }
    const cJSON *reset = cJSON_GetObjectItemCaseSensitive(root, "reset");
    if (reset && !cJSON_IsBool(reset)) {
        cd_err_set(err, CD_ERROR, "reset: expected true or false");
        goto out;
    }
    if (cJSON_IsTrue(reset))
        switches_off(&next);
    for (size_t i = 0; i < CD_ARRAY_LEN(settings); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, settings[i].name);
        if (!v)
            continue;
        const char *value = text;
        if (settings[i].kind == K_BEARER) {
            /* Longer than text holds, and a string only: 0 or true is no token. */
            if (!cJSON_IsString(v)) {
                cd_err_set(err, CD_ERROR, "%s: expected a string (\"\": no authentication)",
                           settings[i].name);
                goto out;
            }
            value = v->valuestring;
        } else if (!value_text(v, text, sizeof(text))) {
            cd_err_set(err, CD_ERROR, "%s: expected a number, a string or true/false",
                       settings[i].name);
            goto out;
        }
        cd_err_t why;
        if (emu_faults_set(&next, settings[i].name, value, now_mono_us, &why) != CD_OK) {
            cd_err_set(err, CD_ERROR, "%s: %s", settings[i].name, why.msg);
            goto out;
        }
    }
    *f = next;
    st = CD_OK;
out:
    cJSON_Delete(root);
    return st;
}

static const char *auth_name(int code)
{
    return code == 401 ? "401" : code == 403 ? "403" : code ? "unsupported" : "off";
}

static const char *body_name(emu_body_fault_t b)
{
    return b == EMU_BODY_CUT ? "cut" : b == EMU_BODY_HTML ? "html" : "off";
}

static unsigned down_left_s(const emu_faults_t *f, int64_t now_mono_us)
{
    if (!f->down || !f->down_until_us || f->down_until_us <= now_mono_us)
        return 0;
    return (unsigned)((f->down_until_us - now_mono_us + 999999) / 1000000);
}

void emu_faults_to_json(const emu_faults_t *f, int64_t now_mono_us, cd_buf_t *out)
{
    cd_buf_printf(out, "{\"request_fault_code\":%d,\"request_fault_share\":", f->request_code);
    cd_json_put_number(out, f->request_share);
    cd_buf_printf(out, ",\"item_fault_code\":%d,\"item_fault_share\":", f->item_code);
    cd_json_put_number(out, f->item_share);
    cd_buf_printf(out, ",\"retry_after\":%u,\"retry_after_format\":\"%s\",\"delay_ms\":%u,"
                       "\"delay_share\":",
                  f->retry_after, f->retry_after_format == EMU_RETRY_DATE ? "date" : "seconds",
                  f->delay_ms);
    cd_json_put_number(out, f->delay_share);
    cd_buf_printf(out, ",\"down\":%s,\"down_for\":%u,\"bearer\":%s",
                  f->down ? "true" : "false", down_left_s(f, now_mono_us),
                  f->bearer[0] ? "true" : "false");
    cd_buf_printf(out, ",\"redirect\":%d,\"redirect_to\":\"%s\",\"redirect_max_age\":",
                  f->redirect_code, f->redirect_self ? "self" : "alternate");
    if (f->redirect_max_age < 0)
        cd_buf_puts(out, "\"none\"");
    else
        cd_buf_printf(out, "%d", f->redirect_max_age);
    cd_buf_printf(out, ",\"auth_fault\":\"%s\",\"body_fault\":\"%s\",\"body_fault_share\":",
                  auth_name(f->auth_fault), body_name(f->body_fault));
    cd_json_put_number(out, f->body_fault_share);
    cd_buf_printf(out, ",\"throttle_rate\":%u,\"throttle_window\":%u}", f->throttle_rate,
                  f->throttle_window);
}

void emu_faults_describe(const emu_faults_t *f, char *out, size_t size)
{
    char more[256];
    snprintf(more, sizeof(more),
             " redirect=%d redirect_to=%s redirect_max_age=%d auth_fault=%s body_fault=%s "
             "throttle_rate=%u throttle_window=%u",
             f->redirect_code, f->redirect_self ? "self" : "alternate", f->redirect_max_age,
             auth_name(f->auth_fault), body_name(f->body_fault), f->throttle_rate,
             f->throttle_window);
    char share[3][32];
    cd_json_number_text(f->request_share, share[0], sizeof(share[0]));
    cd_json_number_text(f->item_share, share[1], sizeof(share[1]));
    cd_json_number_text(f->delay_share, share[2], sizeof(share[2]));
    snprintf(out, size,
             "request_fault_code=%d request_fault_share=%s item_fault_code=%d "
             "item_fault_share=%s retry_after=%u retry_after_format=%s delay_ms=%u "
             "delay_share=%s down=%s bearer=%s%s",
             f->request_code, share[0], f->item_code, share[1], f->retry_after,
             f->retry_after_format == EMU_RETRY_DATE ? "date" : "seconds", f->delay_ms, share[2],
             f->down ? "true" : "false", f->bearer[0] ? "required" : "off", more);
}

/* splitmix64: small, fast and good enough to pick which requests fail. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

bool emu_faults_hit(emu_faults_t *f, bool on, double share)
{
    if (!on)
        return false;
    double u = (double)(next_random(&f->rng) >> 11) * 0x1.0p-53; /* [0, 1) */
    return u < share;
}

bool emu_status_retryable(int status)
{
    switch (status) {
    case 408: case 429: case 439: case 500: case 502: case 503: case 504: return true;
    default: return false;
    }
}

void emu_faults_retry_after(const emu_faults_t *f, int64_t now_us, char *out, size_t size)
{
    out[0] = '\0';
    if (!f->retry_after)
        return;
    if (f->retry_after_format == EMU_RETRY_SECONDS) {
        snprintf(out, size, "%u", f->retry_after);
        return;
    }
    /* An IMF-fixdate (RFC 9110 5.6.7); the C locale's day and month names. */
    time_t at = (time_t)(now_us / 1000000) + f->retry_after;
    struct tm tm;
    gmtime_r(&at, &tm);
    strftime(out, size, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

const char *emu_status_message(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized - please provide the valid authorization token";
    case 402: return "Payment Required: the daily cap has been reached";
    case 408: return "Request Timeout";
    case 413: return "Request Entity Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 439: return "Too Many Requests over an extended time";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Error";
    }
}
