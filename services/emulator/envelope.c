/*
 * envelope.c -- judging one item; see envelope.h.
 *
 * Messages known from the service are reproduced with their numbers: 100
 * (too long), 103 (older than the allowed min date), 109 (required but
 * missing or empty) and "Invalid instrumentation key".  The others say the
 * same kind of thing in the same style, without a number.
 */
#include "envelope.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "convdiag/timeutil.h"
#include "convdiag/utf8.h"
#include "plainjson.h"

/* Context tag limits, from the ContextTagKeys schema, and the tags that
 * become columns of the Traces table; other tags pass as sent.  The lengths
 * let a tag be looked up without a strcmp per entry: all start "ai.". */
#define TAG(key, max, column) {key, sizeof(key) - 1, max, column}
static const struct tag {
    const char *key;
    size_t len, max;
    int column; /* -1: not a column */
} tags[] = {
    TAG("ai.application.ver", 1024, -1),
    TAG("ai.device.id", 1024, -1),
    TAG("ai.device.locale", 64, -1),
    TAG("ai.device.model", 256, -1),
    TAG("ai.device.oemName", 256, -1),
    TAG("ai.device.osVersion", 256, -1),
    TAG("ai.device.type", 64, -1),
    TAG("ai.location.ip", 45, -1),
    TAG("ai.operation.id", 128, EMU_F_OPERATION_ID),
    TAG("ai.operation.name", 1024, EMU_F_OPERATION_NAME),
    TAG("ai.operation.parentId", 128, EMU_F_OPERATION_PARENT_ID),
    TAG("ai.operation.syntheticSource", 1024, -1),
    TAG("ai.operation.correlationVector", 64, -1),
    TAG("ai.session.id", 64, EMU_F_SESSION_ID),
    TAG("ai.session.isFirst", 5, -1),
    TAG("ai.user.accountId", 1024, -1),
    TAG("ai.user.userAgent", 2048, -1),
    TAG("ai.user.id", 128, EMU_F_USER_ID),
    TAG("ai.user.authUserId", 1024, -1),
    TAG("ai.cloud.role", 256, EMU_F_CLOUD_ROLE),
    TAG("ai.cloud.roleInstance", 256, EMU_F_CLOUD_ROLE_INSTANCE),
    TAG("ai.internal.sdkVersion", 64, EMU_F_SDK_VERSION),
    TAG("ai.internal.agentVersion", 64, -1),
};

/* The members each object of an envelope is read for. */
enum { ENV_IKEY, ENV_VER, ENV_SAMPLE_RATE, ENV_NAME, ENV_TIME, ENV_DATA, ENV_TAGS, ENV_COUNT };
static const char *const envelope_keys[ENV_COUNT] = {
    [ENV_IKEY] = "iKey", [ENV_VER] = "ver",   [ENV_SAMPLE_RATE] = "sampleRate",
    [ENV_NAME] = "name", [ENV_TIME] = "time", [ENV_DATA] = "data",
    [ENV_TAGS] = "tags",
};
enum { DATA_BASE_TYPE, DATA_BASE_DATA, DATA_COUNT };
static const char *const data_keys[DATA_COUNT] = {
    [DATA_BASE_TYPE] = "baseType",
    [DATA_BASE_DATA] = "baseData",
};
enum { BASE_VER, BASE_MESSAGE, BASE_SEVERITY, BASE_PROPERTIES, BASE_COUNT };
static const char *const base_keys[BASE_COUNT] = {
    [BASE_VER] = "ver",
    [BASE_MESSAGE] = "message",
    [BASE_SEVERITY] = "severityLevel",
    [BASE_PROPERTIES] = "properties",
};

#define MESSAGE_MAX 32768
#define PROPERTY_KEY_MAX 150
#define PROPERTY_VALUE_MAX 8192

bool emu_envelope_parse(const char *text, size_t len, cJSON **root)
{
    const char *end = NULL;

    /* Plain JSON, what exporters send, the faster way to the same tree. */
    if ((*root = emu_plainjson_parse(text, len)))
        return true;
    *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    /* One value and nothing after it: the item's text has no trailing blanks. */
    if (*root && end != text + len) {
        cJSON_Delete(*root);
        *root = NULL;
    }
    return *root != NULL;
}

/*
 * out[i] is the member of obj named keys[i] that cJSON_GetObjectItemCaseSensitive
 * would find (the first), or NULL: all found in one pass over the members,
 * where comparing first bytes spares nearly every strcmp.  Lookups one by
 * one were a tenth of the emulator's time.
 */
static void find_members(const cJSON *obj, const char *const keys[], size_t n,
                         const cJSON *out[])
{
    for (size_t i = 0; i < n; i++)
        out[i] = NULL;
    for (const cJSON *m = obj->child; m; m = m->next)
        for (size_t i = 0; i < n; i++)
            if (!out[i] && m->string[0] == keys[i][0] && strcmp(m->string, keys[i]) == 0) {
                out[i] = m;
                break;
            }
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

/* Whether s has more than max UTF-16 code units; *n is their count when it
 * has.  A code unit takes at least one byte of UTF-8, so text of at most max
 * bytes is short enough without counting, and strnlen stops there. */
static bool too_long(const char *s, size_t max, size_t *n)
{
    if (strnlen(s, max + 1) <= max)
        return false;
    *n = utf16_length(s);
    return *n > max;
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
    size_t n;
    if (!too_long(value, max, &n))
        return true;
    cd_err_set(err, CD_ERROR,
               "100: Field '%s' on type '%s' is too long. Expected: %zu characters, Actual: %zu",
               field, type, max, n);
    return false;
}

/* v is the member named field, NULL when absent. */
static bool required_string(const cJSON *v, const char *field, const char *type, size_t max,
                            const char **out, cd_err_t *err)
{
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
static bool object_field(const cJSON *v, const char *field, const char *type, bool required,
                         const cJSON **out, cd_err_t *err)
{
    *out = NULL;
    if (!v || cJSON_IsNull(v))
        return required ? missing(field, type, "object", v, err) : true;
    if (!cJSON_IsObject(v))
        return wrong_type(field, type, "object", v, err);
    *out = v;
    return true;
}

/* An optional number (a schema version, a sample rate). */
static bool number_field(const cJSON *v, const char *field, const char *type, cd_err_t *err)
{
    return !v || cJSON_IsNull(v) || cJSON_IsNumber(v) || wrong_type(field, type, "number", v, err);
}

/* Whether name is Microsoft.ApplicationInsights.<iKey without dashes>.Message,
 * as the SDKs name a trace, or Microsoft.ApplicationInsights.Message without
 * the key; case aside, as strcasecmp compares.  Read piece by piece: building
 * the expected name for every item was a snprintf each. */
static bool names_trace(const char *name, const char *ikey)
{
    static const char prefix[] = "Microsoft.ApplicationInsights.";

    if (strncasecmp(name, prefix, sizeof(prefix) - 1) != 0)
        return false;
    name += sizeof(prefix) - 1;
    if (strcasecmp(name, "Message") == 0)
        return true;
    /* At the end of name, tolower('\0') differs from any key character. */
    for (; *ikey; ikey++)
        if (*ikey != '-' && tolower((unsigned char)*name++) != tolower((unsigned char)*ikey))
            return false;
    return strcasecmp(name, ".Message") == 0;
}

static bool check_name(const char *name, const char *ikey, cd_err_t *err)
{
    if (names_trace(name, ikey))
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

/* The schema's entry for a context tag, NULL for one it does not name. */
static const struct tag *known_tag(const char *key)
{
    size_t len = strlen(key);
    for (size_t i = 0; i < CD_ARRAY_LEN(tags); i++)
        if (tags[i].len == len && memcmp(tags[i].key, key, len) == 0)
            return &tags[i];
    return NULL;
}

static bool check_tags(const cJSON *obj, emu_envelope_t *env, cd_err_t *err)
{
    for (const cJSON *tag = obj->child; tag; tag = tag->next) {
        if (!cJSON_IsString(tag))
            return wrong_type(tag->string, "ContextTagKeys", "string", tag, err);
        const struct tag *t = known_tag(tag->string);
        if (!t)
            continue;
        if (!short_enough(tag->valuestring, t->max, tag->string, "ContextTagKeys", err))
            return false;
        /* A tag given twice: the first one counts, as a lookup by name finds it. */
        if (t->column >= 0 && !env->fields[t->column])
            env->fields[t->column] = tag->valuestring;
    }
    return true;
}

static bool check_properties(const cJSON *props, emu_envelope_t *env, cd_err_t *err)
{
    static const char conversation[] = "LiveWorkItemID";

    for (const cJSON *p = props->child; p; p = p->next) {
        size_t n;
        if (too_long(p->string, PROPERTY_KEY_MAX, &n)) {
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
        if (too_long(p->valuestring, PROPERTY_VALUE_MAX, &n)) {
            cd_err_set(err, CD_ERROR,
                       "Field 'properties' on type 'MessageData' has a value that is too long "
                       "for key '%s'. Expected: %d characters, Actual: %zu",
                       p->string, PROPERTY_VALUE_MAX, n);
            return false;
        }
        /* Given twice, the first one counts, as a lookup by name finds it. */
        if (!env->fields[EMU_F_CONVERSATION] && p->string[0] == conversation[0] &&
            strcmp(p->string, conversation) == 0)
            env->fields[EMU_F_CONVERSATION] = p->valuestring;
    }
    env->properties = props;
    return true;
}

static bool check_severity(const cJSON *v, emu_envelope_t *env, cd_err_t *err)
{
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

/* The envelope's data (NULL when absent), which must hold a MessageData. */
static bool check_data(const cJSON *member, emu_envelope_t *env, cd_err_t *err)
{
    const cJSON *data, *base, *props, *d[DATA_COUNT], *b[BASE_COUNT];
    const char *base_type;

    if (!object_field(member, "data", "Envelope", true, &data, err))
        return false;
    find_members(data, data_keys, DATA_COUNT, d);
    if (!required_string(d[DATA_BASE_TYPE], "baseType", "Data", 64, &base_type, err))
        return false;
    /* The exporter sends traces only; other telemetry would not show in Traces. */
    if (strcmp(base_type, "MessageData") != 0) {
        cd_err_set(err, CD_ERROR,
                   "Field 'baseType' on type 'Data' names telemetry this emulator does not "
                   "take. Expected: MessageData, Actual: %s",
                   base_type);
        return false;
    }
    if (!object_field(d[DATA_BASE_DATA], "baseData", "Data", true, &base, err))
        return false;
    find_members(base, base_keys, BASE_COUNT, b);
    return number_field(b[BASE_VER], "ver", "MessageData", err) &&
           required_string(b[BASE_MESSAGE], "message", "MessageData", MESSAGE_MAX,
                           &env->fields[EMU_F_MESSAGE], err) &&
           check_severity(b[BASE_SEVERITY], env, err) &&
           object_field(b[BASE_PROPERTIES], "properties", "MessageData", false, &props, err) &&
           (!props || check_properties(props, env, err));
}

bool emu_envelope_check(const char *text, size_t len, const cJSON *root,
                        const emu_ikeys_t *ikeys, int64_t now_us, emu_envelope_t *env,
                        cd_err_t *err)
{
    const cJSON *m[ENV_COUNT], *tags_obj;
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
    find_members(root, envelope_keys, ENV_COUNT, m);
    if (!required_string(m[ENV_IKEY], "iKey", "Envelope", EMU_IKEY_MAX, &env->ikey, err))
        return false;
    if (!emu_ikeys_accepts(ikeys, env->ikey)) {
        cd_err_set(err, CD_ERROR, "Invalid instrumentation key");
        return false;
    }
    /* A sampled item stands for 100 / sampleRate of its kind (the portal's itemCount). */
    double rate = cJSON_IsNumber(m[ENV_SAMPLE_RATE]) ? m[ENV_SAMPLE_RATE]->valuedouble : 100;
    env->item_count = rate > 0 && rate < 100 ? (uint32_t)(100 / rate + 0.5) : 1;
    return number_field(m[ENV_VER], "ver", "Envelope", err) &&
           number_field(m[ENV_SAMPLE_RATE], "sampleRate", "Envelope", err) &&
           required_string(m[ENV_NAME], "name", "Envelope", 1024, &name, err) &&
           check_name(name, env->ikey, err) &&
           required_string(m[ENV_TIME], "time", "Envelope", 64, &time, err) &&
           check_time(time, now_us, &env->time_us, err) && check_data(m[ENV_DATA], env, err) &&
           object_field(m[ENV_TAGS], "tags", "Envelope", false, &tags_obj, err) &&
           (!tags_obj || check_tags(tags_obj, env, err));
}
