/*
 * envelope.c -- the Application Insights envelope of a stored event; see export.h.
 *
 * Where the choices come from:
 * - "time" has seven fractional digits and a Z, as the .NET SDK writes it
 *   (DateTime.ToString("o")); the service reads any ISO 8601 form, and the
 *   seventh digit (100 ns) is always 0 here since events carry microseconds.
 * - Members in the order ver, name, time, iKey, tags, data: the order of the
 *   Java and OpenTelemetry exporters' envelope (the .NET SDK leaves "ver"
 *   out).  The service does not care; byte-for-byte tests do.
 * - "name" carries the key without dashes, in lower case, as the .NET SDK's
 *   NormalizeInstrumentationKey makes it.
 * - Limits are the .NET SDK's (Property.cs), counted as it counts, in UTF-16
 *   code units.  ai.operation.name (1024) and ai.internal.sdkVersion (64)
 *   have limits there too.  The message is one of three short constants,
 *   far below its limit of 32768, so it is never cut.
 */
#include "convdiag/export.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convdiag/json.h"
#include "convdiag/strmap.h"
#include "convdiag/timeutil.h"

#define MAX_PROPERTY_KEY 150
#define MAX_PROPERTY_VALUE 8192
#define MAX_OPERATION_ID 128
#define MAX_OPERATION_PARENT_ID 128
#define MAX_OPERATION_NAME 1024
#define MAX_SESSION_ID 64
#define MAX_USER_ID 128
#define MAX_CLOUD_ROLE 256
#define MAX_CLOUD_ROLE_INSTANCE 256
#define MAX_SDK_VERSION 64

#define ATTRIBUTE_PREFIX "attributes."
#define TRUNCATED_KEY "convdiag.truncated"

/* The standard properties, in the order they are written.  No attribute may
 * take one of these names, even one a given event does not carry. */
enum property {
    P_ORGANIZATION_ID, P_LIVE_WORK_ITEM_ID, P_CHANNEL_TYPE, P_DURATION, P_PARTICIPANT_TYPE,
    P_CATEGORY, P_PP_SCENARIO, P_PP_SUBSCENARIO, P_PP_RESOURCE_ID, P_PP_ORGANIZATION_ID,
    P_OC_CHANNEL_TYPE, P_FAILURE_REASON, P_EVENT_ID, P_TRUNCATED, P_COUNT
};

static const char *const property_names[P_COUNT] = {
    [P_ORGANIZATION_ID] = "organizationId",
    [P_LIVE_WORK_ITEM_ID] = "LiveWorkItemID",
    [P_CHANNEL_TYPE] = "ChannelType",
    [P_DURATION] = "Duration",
    [P_PARTICIPANT_TYPE] = "ParticipantType",
    [P_CATEGORY] = "Category",
    [P_PP_SCENARIO] = "powerplatform.analytics.scenario",
    [P_PP_SUBSCENARIO] = "powerplatform.analytics.subscenario",
    [P_PP_RESOURCE_ID] = "powerplatform.analytics.resource.id",
    [P_PP_ORGANIZATION_ID] = "powerplatform.analytics.resource.organization.id",
    [P_OC_CHANNEL_TYPE] = "omnichannel.channel.type",
    [P_FAILURE_REASON] = "failureReason",
    [P_EVENT_ID] = "convdiag.eventId",
    [P_TRUNCATED] = TRUNCATED_KEY,
};

/* What current sample queries and dashboards look for in
 * powerplatform.analytics.scenario. */
#define PP_SCENARIO_VALUE "ConversationDiagnosticsScenario"

static bool present(const char *s) { return s && s[0]; }

/*
 * Bytes of the longest prefix of s that holds at most max_units UTF-16 code
 * units and ends between two characters.  s is UTF-8; should it not be, the
 * scan still stops at its NUL.
 */
static size_t prefix_len(const char *s, size_t max_units)
{
    size_t i = 0, units = 0;

    while (s[i]) {
        unsigned char c = (unsigned char)s[i];
        size_t bytes = c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        size_t u = bytes == 4 ? 2 : 1; /* beyond U+FFFF: a surrogate pair */

        if (units + u > max_units)
            break;
        for (size_t k = 1; k < bytes; k++)
            if (!s[i + k])
                return i;
        units += u;
        i += bytes;
    }
    return i;
}

typedef struct writer {
    cd_buf_t *out;
    cd_buf_t cut; /* a string made here, NUL-terminated for cd_json_put_string */
    bool cut_oom; /* making one ran out of memory (cut is reset for each) */
    bool first;   /* nothing written yet in the current object */
} writer_t;

/* What was made in cut, or "" when memory ran out, which is reported at the end. */
static const char *cut_text(writer_t *w)
{
    if (w->cut.oom) {
        w->cut_oom = true;
        return "";
    }
    return w->cut.data;
}

/* s as a JSON string, cut to max_units. */
static void put_text(writer_t *w, const char *s, size_t max_units)
{
    size_t n = prefix_len(s, max_units);

    if (!s[n]) {
        cd_json_put_string(w->out, s);
        return;
    }
    cd_buf_reset(&w->cut);
    cd_buf_append(&w->cut, s, n);
    cd_json_put_string(w->out, cut_text(w));
}

static void put_key(writer_t *w, const char *key)
{
    if (!w->first)
        cd_buf_putc(w->out, ',');
    w->first = false;
    cd_json_put_string(w->out, key);
    cd_buf_putc(w->out, ':');
}

static void put_member(writer_t *w, const char *key, const char *value, size_t max_units)
{
    put_key(w, key);
    put_text(w, value, max_units);
}

static void put_optional(writer_t *w, const char *key, const char *value, size_t max_units)
{
    if (present(value))
        put_member(w, key, value, max_units);
}

static void put_property(writer_t *w, enum property p, const char *value)
{
    put_member(w, property_names[p], value, MAX_PROPERTY_VALUE);
}

/* "Microsoft.ApplicationInsights.<key without dashes, lower case>.Message" */
static void put_name(writer_t *w, const char *ikey)
{
    cd_buf_reset(&w->cut);
    cd_buf_puts(&w->cut, "Microsoft.ApplicationInsights.");
    for (const char *p = ikey; *p; p++)
        if (*p != '-')
            cd_buf_putc(&w->cut, *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p);
    cd_buf_puts(&w->cut, ".Message");
    put_member(w, "name", cut_text(w), SIZE_MAX);
}

static void put_time(writer_t *w, int64_t us)
{
    char t[CD_TIME_UTC_MAX + 2];
    size_t n = cd_time_write_utc(t, us, 6);

    /* "...ffffffZ" becomes "...ffffff0Z": the seven digits of .NET's "o" format. */
    memcpy(t + n - 1, "0Z", 3);
    put_member(w, "time", t, SIZE_MAX);
}

static void put_tags(writer_t *w, const cd_export_config_t *cfg, const cd_export_item_t *item)
{
    put_key(w, "tags");
    cd_buf_putc(w->out, '{');
    w->first = true;
    put_optional(w, "ai.operation.id", item->operation_id, MAX_OPERATION_ID);
    put_member(w, "ai.operation.parentId", item->live_work_item_id, MAX_OPERATION_PARENT_ID);
    put_member(w, "ai.operation.name", item->scenario, MAX_OPERATION_NAME);
    put_optional(w, "ai.session.id", item->session_id, MAX_SESSION_ID);
    put_member(w, "ai.user.id", present(item->user_id) ? item->user_id : "0", MAX_USER_ID);
    put_optional(w, "ai.cloud.role", cfg->cloud_role, MAX_CLOUD_ROLE);
    put_optional(w, "ai.cloud.roleInstance", cfg->cloud_role_instance, MAX_CLOUD_ROLE_INSTANCE);
    put_optional(w, "ai.internal.sdkVersion", cfg->sdk_version, MAX_SDK_VERSION);
    cd_buf_putc(w->out, '}');
    w->first = false;
}

static void put_standard_properties(writer_t *w, const cd_export_item_t *item)
{
    char duration[24];

    put_property(w, P_ORGANIZATION_ID, item->organization_id);
    put_property(w, P_LIVE_WORK_ITEM_ID, item->live_work_item_id);
    put_property(w, P_CHANNEL_TYPE, item->channel_type);
    if (item->status != CD_EVENT_STARTED && item->duration_ms >= 0) {
        snprintf(duration, sizeof(duration), "%lld", (long long)item->duration_ms);
        put_property(w, P_DURATION, duration);
    }
    if (present(item->participant_type))
        put_property(w, P_PARTICIPANT_TYPE, item->participant_type);
    put_property(w, P_CATEGORY, item->category);
    put_property(w, P_PP_SCENARIO, PP_SCENARIO_VALUE);
    put_property(w, P_PP_SUBSCENARIO, item->scenario);
    put_property(w, P_PP_RESOURCE_ID, item->live_work_item_id);
    put_property(w, P_PP_ORGANIZATION_ID, item->organization_id);
    put_property(w, P_OC_CHANNEL_TYPE, item->channel_type);
    /* Only a Failed event has one (the event contract sees to that). */
    if (present(item->failure_reason))
        put_property(w, P_FAILURE_REASON, item->failure_reason);
    /* Export is at least once: the eventId tells a copy downstream (docs/queries.md). */
    put_property(w, P_EVENT_ID, item->event_id);
}

/*
 * Names under which attributes go out, unique among themselves and apart
 * from the standard properties.  Names built here are owned (at most two
 * per attribute: with the prefix, then cut or numbered); an attribute's own
 * name is borrowed from the parsed attributes.
 */
typedef struct attr_names {
    cd_strmap_t taken;
    char **made;
    size_t nmade;
    cd_buf_t tmp;
} attr_names_t;

static bool is_standard(const char *name)
{
    for (int p = 0; p < P_COUNT; p++)
        if (strcmp(name, property_names[p]) == 0)
            return true;
    return false;
}

static bool is_taken(const attr_names_t *an, const char *name)
{
    size_t unused;
    return cd_strmap_get(&an->taken, name, &unused);
}

/* tmp := s cut to max_units, then suffix. */
static void build(attr_names_t *an, const char *s, size_t max_units, const char *suffix)
{
    cd_buf_reset(&an->tmp);
    cd_buf_append(&an->tmp, s, prefix_len(s, max_units));
    cd_buf_puts(&an->tmp, suffix);
}

/* An owned copy of tmp, or NULL when memory ran out. */
static const char *keep(attr_names_t *an)
{
    char *copy = an->tmp.oom ? NULL : strdup(an->tmp.data);
    if (copy)
        an->made[an->nmade++] = copy;
    return copy;
}

/*
 * The name attribute `name` goes out under: with "attributes." before it
 * when it is a standard property's; cut to MAX_PROPERTY_KEY; when that is
 * taken (by an attribute whose own name it is, or after a cut), with the
 * first free number after it, as the .NET SDK's MakeKeyUnique does.  NULL
 * when memory ran out.
 */
static const char *attribute_name(attr_names_t *an, const char *name)
{
    const char *base = name;
    char num[24];

    if (is_standard(name)) {
        build(an, ATTRIBUTE_PREFIX, SIZE_MAX, name);
        if (!(base = keep(an)))
            return NULL;
    }
    build(an, base, MAX_PROPERTY_KEY, "");
    for (unsigned long i = 1; !an->tmp.oom && is_taken(an, an->tmp.data); i++) {
        int digits = snprintf(num, sizeof(num), "%lu", i);
        build(an, base, MAX_PROPERTY_KEY - (size_t)digits, num);
    }
    const char *chosen = an->tmp.oom || strcmp(an->tmp.data, base) != 0 ? keep(an) : base;
    if (!chosen || cd_strmap_add(&an->taken, chosen, 0, NULL) < 0)
        return NULL;
    return chosen;
}

/* The value of attribute a as a property value, or NULL for a type that has none. */
static const char *attribute_value(const cJSON *a, char *num, size_t size)
{
    if (cJSON_IsString(a))
        return a->valuestring;
    if (cJSON_IsNumber(a))
        return cd_json_number_text(a->valuedouble, num, size);
    if (cJSON_IsBool(a))
        return cJSON_IsTrue(a) ? "true" : "false";
    return NULL;
}

static const char *type_name(const cJSON *v)
{
    if (cJSON_IsNull(v))
        return "null";
    return cJSON_IsArray(v) ? "an array" : "an object";
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

/*
 * Writes the attributes as properties, in name order; offsets[i] receives where the i-th
 * begins in the output, offsets[count] where the last ends.
 */
static cd_status_t put_attributes(writer_t *w, const cd_export_item_t *item, const cJSON *root,
                                  size_t count, size_t *offsets, cd_err_t *err)
{
    attr_names_t an = {.made = calloc(2 * count + 1, sizeof(char *))};
    cd_status_t st = CD_OK;
    size_t i = 0;
    char num[32];

    cd_strmap_init(&an.taken);
    cd_buf_init(&an.tmp);
    if (!an.made)
        st = CD_RETRY;
    for (int p = 0; st == CD_OK && p < P_COUNT; p++)
        if (cd_strmap_add(&an.taken, property_names[p], 0, NULL) < 0)
            st = CD_RETRY;

    /* Name order: what PostgreSQL's jsonb keeps is not the order received, and
     * an event must give the same envelope from check as from the outbox. */
    const cJSON **sorted = calloc(count + 1, sizeof(*sorted));
    size_t n = 0;
    if (!sorted)
        st = CD_RETRY;
    for (const cJSON *a = root->child; sorted && a && n < count; a = a->next)
        sorted[n++] = a;
    if (sorted)
        qsort(sorted, n, sizeof(*sorted), by_name);

    for (; st == CD_OK && i < n; i++) {
        const cJSON *a = sorted[i];
        const char *value = attribute_value(a, num, sizeof(num));
        const char *name = value ? attribute_name(&an, a->string) : NULL;
        if (!value) {
            st = cd_err_set(err, CD_ERROR,
                            "event '%s': attribute '%s' is %s, not a string, number or boolean",
                            item->event_id, a->string, type_name(a));
        } else if (!name) {
            st = CD_RETRY;
        } else {
            offsets[i] = w->out->len;
            put_member(w, name, value, MAX_PROPERTY_VALUE);
        }
    }
    offsets[i] = w->out->len;

    free(sorted);
    for (size_t k = 0; k < an.nmade; k++)
        free(an.made[k]);
    free(an.made);
    cd_buf_fini(&an.tmp);
    cd_strmap_fini(&an.taken);
    return st;
}

/* Parses attributes_json; NULL root when there is none. */
static cd_status_t parse_attributes(const cd_export_item_t *item, cJSON **root, cd_err_t *err)
{
    *root = NULL;
    if (!present(item->attributes_json))
        return CD_OK;
    *root = cJSON_ParseWithOpts(item->attributes_json, NULL, true);
    if (*root && cJSON_IsObject(*root))
        return CD_OK;
    /* The text comes from a jsonb column, so this is a caller passing something
     * else or, rarely, memory running out.  cJSON cannot tell which; retrying
     * the first would never end, so the item is refused with the reason. */
    cJSON_Delete(*root);
    *root = NULL;
    return cd_err_set(err, CD_ERROR, "event '%s': attributes are not a JSON object",
                      item->event_id);
}

/* What closes the envelope after the properties: properties, baseData, data, envelope. */
#define CLOSING "}}}}"
#define TRUNCATED_MEMBER ",\"" TRUNCATED_KEY "\":\"attributes\""

/*
 * Closes the envelope, whose attributes begin at offsets[0..nattrs) and end
 * at offsets[nattrs].  The envelope and its newline must fit the limit: when
 * they do not, attributes go, the last first, and a property says so.
 */
static cd_status_t finish(cd_buf_t *out, const cd_export_item_t *item, size_t start,
                          const size_t *offsets, size_t nattrs, cd_err_t *err)
{
    size_t closing = strlen(CLOSING) + 1 /* newline */;
    size_t room = CD_EXPORT_ITEM_MAX_BYTES - closing;

    if (offsets[nattrs] - start > room) {
        size_t marker = nattrs > 0 ? strlen(TRUNCATED_MEMBER) : 0;
        size_t kept = nattrs;
        room -= marker;
        while (kept > 0 && offsets[kept] - start > room)
            kept--;
        if (offsets[kept] - start > room)
            return cd_err_set(err, CD_ERROR,
                              "event '%s': the envelope would take %zu bytes even without "
                              "attributes, over the limit of %d",
                              item->event_id, offsets[0] - start + marker + closing,
                              CD_EXPORT_ITEM_MAX_BYTES);
        out->len = offsets[kept];
        cd_buf_puts(out, TRUNCATED_MEMBER);
    }
    cd_buf_puts(out, CLOSING);
    return out->oom ? CD_RETRY : CD_OK;
}

cd_status_t cd_export_envelope_write(cd_buf_t *out, const cd_export_config_t *cfg,
                                     const cd_export_item_t *item, cd_err_t *err)
{
    writer_t w = {.out = out};
    size_t start = out->len;
    size_t *offsets = NULL;
    cJSON *attrs = NULL;
    cd_status_t st;

    if (out->oom)
        return cd_err_set(err, CD_RETRY, "out of memory for the envelope of event '%s'",
                          item->event_id);
    if ((st = parse_attributes(item, &attrs, err)) != CD_OK)
        return st;
    size_t nattrs = attrs ? (size_t)cJSON_GetArraySize(attrs) : 0;
    cd_buf_init(&w.cut);

    /* What never varies goes out as written here; every value through cd_json_put_string. */
    cd_buf_puts(out, "{\"ver\":1");
    w.first = false;
    put_name(&w, cfg->ikey);
    put_time(&w, item->time_us);
    put_member(&w, "iKey", cfg->ikey, SIZE_MAX);
    put_tags(&w, cfg, item);
    cd_buf_printf(out,
                  ",\"data\":{\"baseType\":\"MessageData\",\"baseData\":{\"ver\":2,"
                  "\"message\":\"Scenario%s\",\"severityLevel\":0,\"properties\":{",
                  cd_event_status_name(item->status));
    w.first = true;
    put_standard_properties(&w, item);

    if (!(offsets = malloc((nattrs + 1) * sizeof(*offsets))))
        st = CD_RETRY;
    else if (attrs)
        st = put_attributes(&w, item, attrs, nattrs, offsets, err);
    else
        offsets[0] = out->len;
    if (st == CD_OK && (out->oom || w.cut_oom))
        st = CD_RETRY;

    if (st == CD_OK)
        st = finish(out, item, start, offsets, nattrs, err);

    if (st == CD_RETRY)
        cd_err_set(err, CD_RETRY, "out of memory for the envelope of event '%s'", item->event_id);
    if (st != CD_OK) {
        /* As it was: the contents before start are intact, whatever failed after. */
        out->len = start;
        out->oom = false;
        if (out->data)
            out->data[start] = '\0';
    }
    free(offsets);
    cd_buf_fini(&w.cut);
    cJSON_Delete(attrs);
    return st;
}
