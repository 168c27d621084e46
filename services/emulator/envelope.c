/*
 * envelope.c -- judging one item; see envelope.h.
 *
 * Messages known from the service are reproduced with their numbers: 100
 * (too long), 103 (older than the allowed min date), 109 (required but
 * missing or empty) and "Invalid instrumentation key".  The others say the
 * same kind of thing in the same style, without a number.
 */
#include "envelope.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "convdiag/timeutil.h"
#include "convdiag/utf8.h"

/* Context tag limits, from the ContextTagKeys schema; other tags pass as sent. */
static const struct {
    const char *key;
    size_t max;
} tag_limits[] = {
    {"ai.application.ver", 1024},      {"ai.device.id", 1024},
    {"ai.device.locale", 64},          {"ai.device.model", 256},
    {"ai.device.oemName", 256},        {"ai.device.osVersion", 256},
    {"ai.device.type", 64},            {"ai.location.ip", 45},
    {"ai.operation.id", 128},          {"ai.operation.name", 1024},
    {"ai.operation.parentId", 128},    {"ai.operation.syntheticSource", 1024},
    {"ai.operation.correlationVector", 64}, {"ai.session.id", 64},
    {"ai.session.isFirst", 5},         {"ai.user.accountId", 1024},
    {"ai.user.userAgent", 2048},       {"ai.user.id", 128},
    {"ai.user.authUserId", 1024},      {"ai.cloud.role", 256},
    {"ai.cloud.roleInstance", 256},    {"ai.internal.sdkVersion", 64},
    {"ai.internal.agentVersion", 64},
};

/* The tags that become columns of the Traces table. */
static const struct {
    const char *key;
    int field;
} tag_columns[] = {
    {"ai.operation.name", EMU_F_OPERATION_NAME},
    {"ai.operation.id", EMU_F_OPERATION_ID},
    {"ai.operation.parentId", EMU_F_OPERATION_PARENT_ID},
    {"ai.session.id", EMU_F_SESSION_ID},
    {"ai.user.id", EMU_F_USER_ID},
};

#define MESSAGE_MAX 32768
#define PROPERTY_KEY_MAX 150
#define PROPERTY_VALUE_MAX 8192

bool emu_envelope_parse(const char *text, size_t len, cJSON **root)
{
    const char *end = NULL;

    *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    /* One value and nothing after it: the item's text has no trailing blanks. */
    if (*root && end != text + len) {
        cJSON_Delete(*root);
        *root = NULL;
    }
    return *root != NULL;
}

/* The type names the service's messages use. */
static const char *type_name(const cJSON *v)
{
    if (!v)
        return "undefined";
    if (cJSON_IsNull(v))
        return "null";
    if (cJSON_IsBool(v))
        return "boolean";
    if (cJSON_IsNumber(v))
        return "number";
    if (cJSON_IsString(v))
        return "string";
    if (cJSON_IsArray(v))
        return "array";
    return "object";
}

/* Characters as the service (a .NET one) counts them: UTF-16 code units, so a
 * character outside the Basic Multilingual Plane counts two. */
static size_t utf16_length(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80)
            n += *p >= 0xF0 ? 2 : 1;
    return n;
}

static bool missing(const char *field, const char *type, const char *expected, const cJSON *v,
                    cd_err_t *err)
{
    cd_err_set(err, CD_ERROR,
               "109: Field '%s' on type '%s' is required but missing or empty. Expected: %s, "
               "Actual: %s",
               field, type, expected, cJSON_IsString(v) ? "empty string" : type_name(v));
    return false;
}

static bool wrong_type(const char *field, const char *type, const char *expected, const cJSON *v,
                       cd_err_t *err)
{
    cd_err_set(err, CD_ERROR,
               "Field '%s' on type '%s' is of incorrect type. Expected: %s, Actual: %s", field,
               type, expected, type_name(v));
    return false;
}

static bool short_enough(const char *value, size_t max, const char *field, const char *type,
                         cd_err_t *err)
{
    size_t n = utf16_length(value);
    if (n <= max)
        return true;
    cd_err_set(err, CD_ERROR,
               "100: Field '%s' on type '%s' is too long. Expected: %zu characters, Actual: %zu",
               field, type, max, n);
    return false;
}

static bool required_string(const cJSON *obj, const char *field, const char *type, size_t max,
                            const char **out, cd_err_t *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field);
    if (!v || cJSON_IsNull(v) || (cJSON_IsString(v) && !v->valuestring[0]))
        return missing(field, type, "string", v, err);
    if (!cJSON_IsString(v))
        return wrong_type(field, type, "string", v, err);
    if (!short_enough(v->valuestring, max, field, type, err))
        return false;
    *out = v->valuestring;
    return true;
}

/* *out is NULL when the object is absent (or null) and not required. */
static bool object_field(const cJSON *obj, const char *field, const char *type, bool required,
                         const cJSON **out, cd_err_t *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field);
    *out = NULL;
    if (!v || cJSON_IsNull(v))
        return required ? missing(field, type, "object", v, err) : true;
    if (!cJSON_IsObject(v))
        return wrong_type(field, type, "object", v, err);
    *out = v;
    return true;
}

/* An optional number (a schema version, a sample rate). */
static bool number_field(const cJSON *obj, const char *field, const char *type, cd_err_t *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field);
    return !v || cJSON_IsNull(v) || cJSON_IsNumber(v) || wrong_type(field, type, "number", v, err);
}

/* Microsoft.ApplicationInsights.<iKey without dashes>.Message, as the SDKs
 * name a trace, or Microsoft.ApplicationInsights.Message without the key. */
static bool check_name(const char *name, const char *ikey, cd_err_t *err)
{
    char expected[EMU_IKEY_MAX + 64];
    size_t n = (size_t)snprintf(expected, sizeof(expected), "Microsoft.ApplicationInsights.");
    for (const char *k = ikey; *k; k++)
        if (*k != '-')
            expected[n++] = *k;
    snprintf(expected + n, sizeof(expected) - n, ".Message");
    if (strcasecmp(name, expected) == 0 ||
        strcasecmp(name, "Microsoft.ApplicationInsights.Message") == 0)
        return true;
    /* The answer is logged too: no key in full, even one written into the name.
     * Room for 1024 characters of UTF-8, the longest name let through. */
    char actual[3 * 1024 + 1];
    snprintf(actual, sizeof(actual), "%s", name);
    emu_ikey_mask_within(actual);
    cd_err_set(err, CD_ERROR,
               "Field 'name' on type 'Envelope' does not name a trace of this instrumentation "
               "key. Expected: Microsoft.ApplicationInsights.<iKey without dashes>.Message, "
               "Actual: %s",
               actual);
    return false;
}

static bool check_time(const char *text, int64_t now_us, int64_t *out, cd_err_t *err)
{
    cd_err_t parse_err;
    size_t len = strlen(text);

    if (cd_time_parse_rfc3339(text, 0, out, &parse_err) != CD_OK ||
        (text[len - 1] != 'Z' && text[len - 1] != 'z')) {
        cd_err_set(err, CD_ERROR,
                   "Field 'time' on type 'Envelope' is not a valid time. Expected: UTC ISO 8601 "
                   "with a trailing Z, Actual: %s",
                   text);
        return false;
    }
    int64_t age_ms = (now_us - *out) / 1000;
    if (age_ms > EMU_TIME_MAX_AGE_MS) {
        cd_err_set(err, CD_ERROR,
                   "103: Field 'time' on type 'Envelope' is older than the allowed min date. "
                   "Expected: now - %lldms, Actual: now - %lldms",
                   EMU_TIME_MAX_AGE_MS, (long long)age_ms);
        return false;
    }
    if (-age_ms > EMU_TIME_MAX_AHEAD_MS) {
        cd_err_set(err, CD_ERROR,
                   "Field 'time' on type 'Envelope' is newer than the allowed max date. "
                   "Expected: now + %lldms, Actual: now + %lldms",
                   EMU_TIME_MAX_AHEAD_MS, (long long)-age_ms);
        return false;
    }
    return true;
}

static bool check_tags(const cJSON *tags, emu_envelope_t *env, cd_err_t *err)
{
    const cJSON *tag;
    cJSON_ArrayForEach(tag, tags) {
        if (!cJSON_IsString(tag))
            return wrong_type(tag->string, "ContextTagKeys", "string", tag, err);
        for (size_t i = 0; i < CD_ARRAY_LEN(tag_limits); i++)
            if (strcmp(tag->string, tag_limits[i].key) == 0 &&
                !short_enough(tag->valuestring, tag_limits[i].max, tag->string, "ContextTagKeys",
                              err))
                return false;
    }
    for (size_t i = 0; i < CD_ARRAY_LEN(tag_columns); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(tags, tag_columns[i].key);
        env->fields[tag_columns[i].field] = v ? v->valuestring : NULL;
    }
    return true;
}

static bool check_properties(const cJSON *props, emu_envelope_t *env, cd_err_t *err)
{
    const cJSON *p;
    cJSON_ArrayForEach(p, props) {
        size_t n = utf16_length(p->string);
        if (n > PROPERTY_KEY_MAX) {
            cd_err_set(err, CD_ERROR,
                       "Field 'properties' on type 'MessageData' has a key that is too long. "
                       "Expected: %d characters, Actual: %zu",
                       PROPERTY_KEY_MAX, n);
            return false;
        }
        if (!cJSON_IsString(p)) {
            cd_err_set(err, CD_ERROR,
                       "Field 'properties' on type 'MessageData' has a value of incorrect type "
                       "for key '%s'. Expected: string, Actual: %s",
                       p->string, type_name(p));
            return false;
        }
        if ((n = utf16_length(p->valuestring)) > PROPERTY_VALUE_MAX) {
            cd_err_set(err, CD_ERROR,
                       "Field 'properties' on type 'MessageData' has a value that is too long "
                       "for key '%s'. Expected: %d characters, Actual: %zu",
                       p->string, PROPERTY_VALUE_MAX, n);
            return false;
        }
    }
    const cJSON *lwi = cJSON_GetObjectItemCaseSensitive(props, "LiveWorkItemID");
    env->fields[EMU_F_CONVERSATION] = cJSON_IsString(lwi) ? lwi->valuestring : NULL;
    env->properties = props;
    return true;
}

static bool check_severity(const cJSON *base, emu_envelope_t *env, cd_err_t *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(base, "severityLevel");
    env->severity = -1;
    if (!v || cJSON_IsNull(v))
        return true;
    if (!cJSON_IsNumber(v))
        return wrong_type("severityLevel", "MessageData", "number", v, err);
    double d = v->valuedouble;
    if (d < 0 || d > 4 || d != (int)d) { /* range first: the cast needs it */
        cd_err_set(err, CD_ERROR,
                   "Field 'severityLevel' on type 'MessageData' has an invalid value. Expected: "
                   "0 (Verbose) to 4 (Critical), Actual: %g",
                   d);
        return false;
    }
    env->severity = (int)d;
    return true;
}

static bool check_data(const cJSON *root, emu_envelope_t *env, cd_err_t *err)
{
    const cJSON *data, *base, *tags, *props;
    const char *base_type;

    if (!object_field(root, "data", "Envelope", true, &data, err) ||
        !required_string(data, "baseType", "Data", 64, &base_type, err))
        return false;
    /* The exporter sends traces only; other telemetry would not show in Traces. */
    if (strcmp(base_type, "MessageData") != 0) {
        cd_err_set(err, CD_ERROR,
                   "Field 'baseType' on type 'Data' names telemetry this emulator does not "
                   "take. Expected: MessageData, Actual: %s",
                   base_type);
        return false;
    }
    return object_field(data, "baseData", "Data", true, &base, err) &&
           number_field(base, "ver", "MessageData", err) &&
           required_string(base, "message", "MessageData", MESSAGE_MAX,
                           &env->fields[EMU_F_MESSAGE], err) &&
           check_severity(base, env, err) &&
           object_field(base, "properties", "MessageData", false, &props, err) &&
           (!props || check_properties(props, env, err)) &&
           object_field(root, "tags", "Envelope", false, &tags, err) &&
           (!tags || check_tags(tags, env, err));
}

bool emu_envelope_check(const char *text, size_t len, const cJSON *root,
                        const emu_ikeys_t *ikeys, int64_t now_us, emu_envelope_t *env,
                        cd_err_t *err)
{
    const char *name, *time;
    size_t bad_at;

    memset(env, 0, sizeof(*env));
    env->severity = -1;
    if (!cJSON_IsObject(root)) {
        cd_err_set(err, CD_ERROR, "The item is not a JSON object. Expected: object, Actual: %s",
                   type_name(root));
        return false;
    }
    if (len > EMU_ITEM_MAX_BYTES) {
        cd_err_set(err, CD_ERROR,
                   "The item is too large. Expected: at most %d bytes, Actual: %zu bytes",
                   EMU_ITEM_MAX_BYTES, len);
        return false;
    }
    if (!cd_utf8_valid(text, len, &bad_at)) {
        cd_err_set(err, CD_ERROR, "The item is not valid UTF-8 at byte %zu", bad_at);
        return false;
    }
    if (!required_string(root, "iKey", "Envelope", EMU_IKEY_MAX, &env->ikey, err))
        return false;
    if (!emu_ikeys_accepts(ikeys, env->ikey)) {
        cd_err_set(err, CD_ERROR, "Invalid instrumentation key");
        return false;
    }
    return number_field(root, "ver", "Envelope", err) &&
           number_field(root, "sampleRate", "Envelope", err) &&
           required_string(root, "name", "Envelope", 1024, &name, err) &&
           check_name(name, env->ikey, err) &&
           required_string(root, "time", "Envelope", 64, &time, err) &&
           check_time(time, now_us, &env->time_us, err) && check_data(root, env, err);
}
