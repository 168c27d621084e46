/*
 * test_sim.c -- the conversation generator: reproducibility, the event
 * contract v1, the shape of each conversation, the flow catalogue, limits,
 * and the disorder it can mix in (reordered, duplicate, late, aliased and
 * malformed messages).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "convdiag/common.h"
#include "convdiag/event.h"
#include "convdiag/sim.h"

/* 2026-11-22T10:00:00.123456Z */
#define START_US 1795341600123456LL

static const char *const canonical_scenarios[] = {
    "ConversationInitialized", "CustomerIdentified", "VirtualAgentAssigned",
    "ConversationEndedByVirtualAgent", "VirtualAgentEscalatedToHumanAgent",
    "DemandClassification", "QueueAssignment", "AgentAccepted", "AgentRejected",
    "AgentAcceptanceTimedOut", "AgentRejoined", "AgentSelfAssignment",
    "ConversationEndedByCustomer", "ConversationEndedByAgent", "AgentSessionClosed",
    "ConversationAbandonedByCustomer", "ConversationForceClosedBySupervisor",
    "ConversationClosed",
};

static const char *const channel_types[] = {
    "livechat", "voice", "sms", "whatsapp", "facebook", "teams", "line", "wechat",
    "twitter", "applemessages", "googlebusinessmessages", "email", "custom",
};

static const char *const participant_types[] = {
    "HumanAgent", "VirtualAgent", "Customer", "Supervisor", "System",
};

static const char *const statuses[] = {"Started", "Completed", "Failed"};

static const char *const known_fields[] = {
    "eventId", "timestamp", "organizationId", "liveWorkItemId", "scenario", "status",
    "channelType", "participantType", "userId", "sessionId", "transactionId",
    "traceparent", "tracestate", "durationMs", "failureReason", "attributes",
};

#define N_SCENARIOS CD_ARRAY_LEN(canonical_scenarios)

/* ---- Helpers ---- */

static cd_sim_t *new_sim(uint64_t seed, uint64_t conversations, uint64_t max_events)
{
    cd_sim_conf_t conf;

    cd_sim_conf_init(&conf);
    conf.seed = seed;
    conf.start_us = START_US;
    conf.conversations = conversations;
    conf.max_events = max_events;
    cd_sim_t *sim = cd_sim_new(&conf);
    assert_non_null(sim);
    return sim;
}

/* Index of s in a table, or -1. */
static int lookup(const char *const *table, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(table[i], s) == 0)
            return (int)i;
    }
    return -1;
}

#define LOOKUP(table, s) lookup((table), CD_ARRAY_LEN(table), (s))

static bool is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return true;
}

static bool all_zero(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '0')
            return false;
    }
    return true;
}

/* Lower-case canonical form, version 4, RFC 4122 variant. */
static bool is_uuid_v4(const char *s)
{
    if (strlen(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-')
        return false;
    if (!is_lower_hex(s, 8) || !is_lower_hex(s + 9, 4) || !is_lower_hex(s + 14, 4) ||
        !is_lower_hex(s + 19, 4) || !is_lower_hex(s + 24, 12))
        return false;
    return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

/* W3C trace context, version 00, with the ids it forbids rejected. */
static bool is_traceparent(const char *s)
{
    return strlen(s) == 55 && strncmp(s, "00-", 3) == 0 && is_lower_hex(s + 3, 32) &&
           !all_zero(s + 3, 32) && s[35] == '-' && is_lower_hex(s + 36, 16) &&
           !all_zero(s + 36, 16) && strcmp(s + 52, "-01") == 0;
}

/* Exactly YYYY-MM-DDTHH:MM:SS.mmmZ, a real date; milliseconds since the epoch. */
static bool parse_timestamp(const char *s, int64_t *ms)
{
    static const char form[] = "dddd-dd-ddTdd:dd:dd.dddZ";

    if (strlen(s) != sizeof(form) - 1)
        return false;
    for (size_t i = 0; form[i]; i++) {
        if (form[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != form[i])
            return false;
    }

    struct tm tm = {0};
    tm.tm_year = atoi(s) - 1900;
    tm.tm_mon = atoi(s + 5) - 1;
    tm.tm_mday = atoi(s + 8);
    tm.tm_hour = atoi(s + 11);
    tm.tm_min = atoi(s + 14);
    tm.tm_sec = atoi(s + 17);
    struct tm want = tm;
    time_t secs = timegm(&tm);
    /* timegm normalises 2026-02-30 into March: a changed field means invalid. */
    if (tm.tm_mon != want.tm_mon || tm.tm_mday != want.tm_mday || tm.tm_hour != want.tm_hour ||
        tm.tm_min != want.tm_min || tm.tm_sec != want.tm_sec)
        return false;
    *ms = (int64_t)secs * 1000 + atoi(s + 20);
    return true;
}

static const char *str_field(const cJSON *o, const char *name)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);

    return cJSON_IsString(f) ? f->valuestring : NULL;
}

static int64_t event_ms(const cJSON *o)
{
    int64_t ms = 0;

    assert_true(parse_timestamp(str_field(o, "timestamp"), &ms));
    return ms;
}

static cJSON *parse_event(const cd_sim_event_t *ev)
{
    assert_int_equal(strlen(ev->json), ev->json_len);
    assert_null(strchr(ev->json, '\n'));
    cJSON *o = cJSON_ParseWithLength(ev->json, ev->json_len);
    assert_non_null(o);
    assert_true(cJSON_IsObject(o));
    return o;
}

/* A string field that must be there. */
static const char *required(const cJSON *o, const char *name)
{
    const char *s = str_field(o, name);

    if (!s)
        fail_msg("missing or not a string: %s", name);
    return s;
}

/* Everything the contract says of one event, and what this generator adds:
 * userId exactly on agent, bot and supervisor steps. */
static void check_event(const cJSON *o, const cd_sim_event_t *ev)
{
    const cJSON *f;

    cJSON_ArrayForEach(f, o) {
        if (LOOKUP(known_fields, f->string) < 0)
            fail_msg("unexpected field %s", f->string);
    }

    const char *id = required(o, "eventId");
    assert_true(strlen(id) <= 128);
    assert_true(is_uuid_v4(id));
    assert_string_equal(id, ev->event_id);
    /* No disorder unless asked for. */
    assert_int_equal(ev->flags, 0);
    assert_int_equal(ev->malformed, CD_SIM_WELL_FORMED);

    int64_t ms;
    assert_true(parse_timestamp(required(o, "timestamp"), &ms));
    assert_true(is_uuid_v4(required(o, "organizationId")));

    const char *lwi = required(o, "liveWorkItemId");
    assert_true(is_uuid_v4(lwi));
    assert_string_equal(lwi, ev->key);

    assert_true(LOOKUP(canonical_scenarios, required(o, "scenario")) >= 0);
    const char *status = required(o, "status");
    assert_true(LOOKUP(statuses, status) >= 0);
    assert_true(LOOKUP(channel_types, required(o, "channelType")) >= 0);

    const char *who = required(o, "participantType");
    assert_true(LOOKUP(participant_types, who) >= 0);
    bool staff = strcmp(who, "HumanAgent") == 0 || strcmp(who, "VirtualAgent") == 0 ||
                 strcmp(who, "Supervisor") == 0;
    const char *user = str_field(o, "userId");
    assert_int_equal(user != NULL, staff);
    if (user)
        assert_true(is_uuid_v4(user));

    if (cJSON_HasObjectItem(o, "sessionId"))
        assert_true(is_uuid_v4(required(o, "sessionId")));
    if (cJSON_HasObjectItem(o, "transactionId"))
        assert_true(is_uuid_v4(required(o, "transactionId")));
    if (cJSON_HasObjectItem(o, "traceparent"))
        assert_true(is_traceparent(required(o, "traceparent")));
    if (cJSON_HasObjectItem(o, "tracestate")) {
        assert_true(cJSON_HasObjectItem(o, "traceparent"));
        assert_non_null(strchr(required(o, "tracestate"), '='));
    }

    bool ended = strcmp(status, "Started") != 0;
    f = cJSON_GetObjectItemCaseSensitive(o, "durationMs");
    if (f) {
        assert_true(ended);
        assert_true(cJSON_IsNumber(f));
        assert_true(f->valuedouble >= 0 && f->valuedouble == (double)(int64_t)f->valuedouble);
    }

    const char *reason = str_field(o, "failureReason");
    assert_int_equal(reason != NULL, strcmp(status, "Failed") == 0);
    assert_int_equal(cJSON_HasObjectItem(o, "failureReason"), reason != NULL);
    if (reason)
        assert_true(reason[0] != '\0');

    f = cJSON_GetObjectItemCaseSensitive(o, "attributes");
    if (f) {
        assert_true(cJSON_IsObject(f));
        assert_non_null(f->child);
        const cJSON *a;
        cJSON_ArrayForEach(a, f) {
            assert_true(cJSON_IsString(a) || cJSON_IsNumber(a) || cJSON_IsBool(a));
        }
    }
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- Reproducibility ---- */

static void test_same_seed_same_stream(void **state)
{
    (void)state;
    cd_sim_t *a = new_sim(42, 0, 5000);
    cd_sim_t *b = new_sim(42, 0, 5000);
    cd_sim_event_t ea, eb;
    size_t n = 0;

    while (cd_sim_next(a, &ea)) {
        assert_int_equal(cd_sim_next(b, &eb), 1);
        assert_int_equal(ea.json_len, eb.json_len);
        assert_memory_equal(ea.json, eb.json, ea.json_len);
        assert_string_equal(ea.key, eb.key);
        assert_int_equal(ea.conversation, eb.conversation);
        n++;
    }
    assert_int_equal(cd_sim_next(b, &eb), 0);
    assert_int_equal(n, 5000);
    cd_sim_free(a);
    cd_sim_free(b);
}

static void test_different_seed_different_stream(void **state)
{
    (void)state;
    cd_sim_t *a = new_sim(1, 0, 1000);
    cd_sim_t *b = new_sim(2, 0, 1000);
    cd_sim_event_t ea, eb;

    /* Every identifier comes from the seed, so no event may coincide. */
    while (cd_sim_next(a, &ea)) {
        assert_int_equal(cd_sim_next(b, &eb), 1);
        assert_true(ea.json_len != eb.json_len || memcmp(ea.json, eb.json, ea.json_len) != 0);
        assert_string_not_equal(ea.key, eb.key);
    }

    /* Nor the organizations. */
    cd_sim_t *c = new_sim(1, 1, 1);
    cd_sim_t *d = new_sim(2, 1, 1);
    assert_int_equal(cd_sim_next(c, &ea), 1);
    assert_int_equal(cd_sim_next(d, &eb), 1);
    cJSON *oc = parse_event(&ea), *od = parse_event(&eb);
    assert_string_not_equal(str_field(oc, "organizationId"), str_field(od, "organizationId"));

    cJSON_Delete(oc);
    cJSON_Delete(od);
    cd_sim_free(a);
    cd_sim_free(b);
    cd_sim_free(c);
    cd_sim_free(d);
}

/* ---- The contract ---- */

static void test_events_follow_contract(void **state)
{
    (void)state;
    enum { N = 20000 };
    cd_sim_t *sim = new_sim(7, 0, N);
    char **ids = calloc(N, sizeof(*ids));
    cd_sim_event_t ev;
    size_t n = 0, ends = 0, timed = 0;
    size_t with_session = 0, with_transaction = 0, with_trace = 0, with_state = 0, with_attrs = 0;

    assert_non_null(ids);
    while (cd_sim_next(sim, &ev)) {
        cJSON *o = parse_event(&ev);
        check_event(o, &ev);

        ids[n] = strdup(str_field(o, "eventId"));
        assert_non_null(ids[n]);
        n++;

        if (strcmp(str_field(o, "status"), "Started") != 0) {
            ends++;
            timed += cJSON_HasObjectItem(o, "durationMs");
        }
        with_session += cJSON_HasObjectItem(o, "sessionId");
        with_transaction += cJSON_HasObjectItem(o, "transactionId");
        with_trace += cJSON_HasObjectItem(o, "traceparent");
        with_state += cJSON_HasObjectItem(o, "tracestate");
        with_attrs += cJSON_HasObjectItem(o, "attributes");
        cJSON_Delete(o);
    }
    assert_int_equal(n, N);

    /* Optional fields: present sometimes, never always. */
    assert_in_range(with_session, 1, N - 1);
    assert_in_range(with_transaction, 1, N - 1);
    assert_in_range(with_trace, 1, N - 1);
    assert_in_range(with_state, 1, with_trace - 1);
    assert_in_range(with_attrs, 1, N - 1);
    /* Most ends report a duration; some leave the pairing to the pipeline. */
    assert_true(timed > ends * 7 / 10);
    assert_true(timed < ends);

    qsort(ids, n, sizeof(*ids), compare_strings);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(ids[i - 1], ids[i]) == 0)
            fail_msg("duplicate eventId %s", ids[i]);
    }
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    cd_sim_free(sim);
}

static void expect_first_timestamp(int64_t start_us, const char *want)
{
    cd_sim_conf_t conf;
    cd_sim_event_t ev;

    cd_sim_conf_init(&conf);
    conf.start_us = start_us;
    cd_sim_t *sim = cd_sim_new(&conf);
    assert_non_null(sim);
    assert_int_equal(cd_sim_next(sim, &ev), 1);
    cJSON *o = parse_event(&ev);
    assert_string_equal(str_field(o, "timestamp"), want);
    cJSON_Delete(o);
    cd_sim_free(sim);
}

/* The first conversation starts at start_us, truncated to the millisecond. */
static void test_timestamp_form(void **state)
{
    (void)state;
    expect_first_timestamp(START_US, "2026-11-22T10:00:00.123Z");
    expect_first_timestamp(0, "1970-01-01T00:00:00.000Z");
    expect_first_timestamp(1835481599999999LL, "2028-02-29T23:59:59.999Z");
    expect_first_timestamp(951782400000000LL, "2000-02-29T00:00:00.000Z");
    expect_first_timestamp(4102444799000000LL, "2099-12-31T23:59:59.000Z");
    /* Before 1970 the millisecond is still the one the instant falls in. */
    expect_first_timestamp(-1, "1969-12-31T23:59:59.999Z");
    expect_first_timestamp(-1000, "1969-12-31T23:59:59.999Z");
    expect_first_timestamp(-1001, "1969-12-31T23:59:59.998Z");
    expect_first_timestamp(-86400000000LL, "1969-12-31T00:00:00.000Z");
    expect_first_timestamp(-11676096000000000LL, "1600-01-01T00:00:00.000Z");
    expect_first_timestamp(-62167219200000000LL, "0000-01-01T00:00:00.000Z");
    expect_first_timestamp(253402300799999000LL, "9999-12-31T23:59:59.999Z");
}

/* ---- Conversations ---- */

/* Started events of one scenario still waiting for their end, oldest first. */
typedef struct open_runs {
    int64_t start_ms[16];
    size_t n;
} open_runs_t;

typedef struct conv_check {
    char key[64], org[64], channel[64], transaction[64], trace_id[33];
    bool has_transaction, traced;
    int64_t first_ms, last_ms;
    size_t events;
    char last_scenario[64], last_status[16];
    open_runs_t open[N_SCENARIOS];
    char accepted_by[64];
    char declined_by[4][64];
    size_t declined;
} conv_check_t;

static void conv_begin(conv_check_t *c, const cJSON *o, const cd_sim_event_t *ev)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->key, sizeof(c->key), "%s", ev->key);
    snprintf(c->org, sizeof(c->org), "%s", str_field(o, "organizationId"));
    snprintf(c->channel, sizeof(c->channel), "%s", str_field(o, "channelType"));
    c->has_transaction = cJSON_HasObjectItem(o, "transactionId");
    if (c->has_transaction)
        snprintf(c->transaction, sizeof(c->transaction), "%s", str_field(o, "transactionId"));
    /* A traced conversation carries its trace context from the first event. */
    c->traced = cJSON_HasObjectItem(o, "traceparent");
    if (c->traced)
        memcpy(c->trace_id, str_field(o, "traceparent") + 3, 32);
    c->first_ms = c->last_ms = event_ms(o);
    assert_string_equal(str_field(o, "scenario"), "ConversationInitialized");
    assert_string_equal(str_field(o, "status"), "Started");
}

static void conv_event(conv_check_t *c, const cJSON *o, const cd_sim_event_t *ev)
{
    const char *scenario = str_field(o, "scenario");
    const char *status = str_field(o, "status");
    const char *user = str_field(o, "userId");
    int64_t ms = event_ms(o);

    /* What a conversation shares stays put. */
    assert_string_equal(ev->key, c->key);
    assert_string_equal(str_field(o, "organizationId"), c->org);
    assert_string_equal(str_field(o, "channelType"), c->channel);
    assert_int_equal(cJSON_HasObjectItem(o, "transactionId"), c->has_transaction);
    if (c->has_transaction)
        assert_string_equal(str_field(o, "transactionId"), c->transaction);
    if (cJSON_HasObjectItem(o, "traceparent")) {
        assert_true(c->traced);
        assert_memory_equal(str_field(o, "traceparent") + 3, c->trace_id, 32);
    }

    /* Time only moves forward within a conversation. */
    assert_true(ms >= c->last_ms);
    c->last_ms = ms;

    /* Each end closes the oldest open Started of its scenario, and a
     * reported duration is exactly the time between the two. */
    open_runs_t *runs = &c->open[LOOKUP(canonical_scenarios, scenario)];
    if (strcmp(status, "Started") == 0) {
        assert_true(runs->n < CD_ARRAY_LEN(runs->start_ms));
        runs->start_ms[runs->n++] = ms;
    } else {
        if (runs->n == 0)
            fail_msg("%s %s without a Started in %s", scenario, status, c->key);
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "durationMs");
        if (d)
            assert_int_equal((int64_t)d->valuedouble, ms - runs->start_ms[0]);
        memmove(runs->start_ms, runs->start_ms + 1, --runs->n * sizeof(runs->start_ms[0]));
    }

    /* An agent who declined or let the offer expire is not the one who accepts. */
    if (strcmp(status, "Started") != 0 && user) {
        if (strcmp(scenario, "AgentRejected") == 0 || strcmp(scenario, "AgentAcceptanceTimedOut") == 0) {
            assert_true(c->declined < CD_ARRAY_LEN(c->declined_by));
            snprintf(c->declined_by[c->declined++], sizeof(c->declined_by[0]), "%s", user);
        } else if (strcmp(scenario, "AgentAccepted") == 0) {
            snprintf(c->accepted_by, sizeof(c->accepted_by), "%s", user);
        }
    }

    snprintf(c->last_scenario, sizeof(c->last_scenario), "%s", scenario);
    snprintf(c->last_status, sizeof(c->last_status), "%s", status);
    c->events++;
}

static void conv_end(const conv_check_t *c)
{
    assert_string_equal(c->last_scenario, "ConversationClosed");
    assert_string_equal(c->last_status, "Completed");
    for (size_t i = 0; i < N_SCENARIOS; i++) {
        if (c->open[i].n)
            fail_msg("%s left open in %s", canonical_scenarios[i], c->key);
    }
    for (size_t i = 0; i < c->declined; i++)
        assert_string_not_equal(c->declined_by[i], c->accepted_by);
    /* Every Started has its end: an even count. */
    assert_int_equal(c->events % 2, 0);
}

static void test_conversations_are_whole_and_ordered(void **state)
{
    (void)state;
    enum { CONVERSATIONS = 3000 };
    cd_sim_t *sim = new_sim(11, CONVERSATIONS, 0);
    conv_check_t *c = malloc(sizeof(*c));
    cd_sim_event_t ev;
    uint64_t current = UINT64_MAX, events = 0;
    int64_t previous_arrival = 0;

    assert_non_null(c);
    while (cd_sim_next(sim, &ev)) {
        cJSON *o = parse_event(&ev);
        if (ev.conversation != current) {
            /* One conversation after another, each in one piece. */
            assert_int_equal(ev.conversation, current + 1);
            if (current != UINT64_MAX)
                conv_end(c);
            conv_begin(c, o, &ev);
            assert_true(c->first_ms >= previous_arrival);
            previous_arrival = c->first_ms;
            current = ev.conversation;
        }
        conv_event(c, o, &ev);
        cJSON_Delete(o);
        events++;
    }
    conv_end(c);
    assert_int_equal(current, CONVERSATIONS - 1);
    assert_int_equal(cd_sim_conversations_started(sim), CONVERSATIONS);
    assert_int_equal(cd_sim_events_emitted(sim), events);
    free(c);
    cd_sim_free(sim);
}

static void test_catalogue_is_covered(void **state)
{
    (void)state;
    enum { CONVERSATIONS = 3000 };
    cd_sim_t *sim = new_sim(3, CONVERSATIONS, 0);
    size_t completed[N_SCENARIOS] = {0}, failed[N_SCENARIOS] = {0};
    bool channel_seen[CD_ARRAY_LEN(channel_types)] = {0};
    bool participant_seen[CD_ARRAY_LEN(participant_types)] = {0};
    char orgs[8][64];
    size_t norgs = 0;
    cd_sim_event_t ev;

    while (cd_sim_next(sim, &ev)) {
        cJSON *o = parse_event(&ev);
        int sc = LOOKUP(canonical_scenarios, str_field(o, "scenario"));
        const char *status = str_field(o, "status");
        if (strcmp(status, "Completed") == 0)
            completed[sc]++;
        else if (strcmp(status, "Failed") == 0)
            failed[sc]++;
        channel_seen[LOOKUP(channel_types, str_field(o, "channelType"))] = true;
        participant_seen[LOOKUP(participant_types, str_field(o, "participantType"))] = true;

        const char *org = str_field(o, "organizationId");
        size_t i = 0;
        while (i < norgs && strcmp(orgs[i], org) != 0)
            i++;
        if (i == norgs) {
            assert_true(norgs < CD_ARRAY_LEN(orgs));
            snprintf(orgs[norgs++], sizeof(orgs[0]), "%s", org);
        }
        cJSON_Delete(o);
    }

    for (size_t i = 0; i < N_SCENARIOS; i++) {
        if (completed[i] == 0)
            fail_msg("%s never completed", canonical_scenarios[i]);
    }
    for (size_t i = 0; i < CD_ARRAY_LEN(channel_types); i++) {
        if (!channel_seen[i])
            fail_msg("channel %s never used", channel_types[i]);
    }
    for (size_t i = 0; i < CD_ARRAY_LEN(participant_types); i++) {
        if (!participant_seen[i])
            fail_msg("participant %s never seen", participant_types[i]);
    }
    /* Failures the flows retry or route around. */
    assert_true(failed[LOOKUP(canonical_scenarios, "QueueAssignment")] > 0);
    assert_true(failed[LOOKUP(canonical_scenarios, "VirtualAgentAssigned")] > 0);
    /* A small, fixed pool of tenants. */
    assert_in_range(norgs, 2, 5);
    cd_sim_free(sim);
}

/* A userId belongs to one organization: agents do not work for two tenants. */
static void test_users_belong_to_one_org(void **state)
{
    (void)state;
    enum { N = 10000 };
    cd_sim_t *sim = new_sim(5, 0, N);
    struct { char user[40], org[40]; } *seen = calloc(N, sizeof(*seen));
    size_t nseen = 0;
    cd_sim_event_t ev;

    assert_non_null(seen);
    while (cd_sim_next(sim, &ev)) {
        cJSON *o = parse_event(&ev);
        const char *user = str_field(o, "userId");
        const char *org = str_field(o, "organizationId");
        if (user) {
            size_t i = 0;
            while (i < nseen && strcmp(seen[i].user, user) != 0)
                i++;
            if (i < nseen) {
                assert_string_equal(seen[i].org, org);
            } else {
                snprintf(seen[nseen].user, sizeof(seen[0].user), "%s", user);
                snprintf(seen[nseen].org, sizeof(seen[0].org), "%s", org);
                nseen++;
            }
        }
        cJSON_Delete(o);
    }
    /* A pool, not a fresh id per event. */
    assert_in_range(nseen, 10, 500);
    free(seen);
    cd_sim_free(sim);
}

static int64_t arrival_span_ms(double conv_per_sec, uint64_t conversations)
{
    cd_sim_conf_t conf;
    cd_sim_event_t ev;
    int64_t first = -1, last = -1;

    cd_sim_conf_init(&conf);
    conf.start_us = START_US;
    conf.conversations = conversations;
    conf.conv_per_sec = conv_per_sec;
    cd_sim_t *sim = cd_sim_new(&conf);
    assert_non_null(sim);
    uint64_t current = UINT64_MAX;
    while (cd_sim_next(sim, &ev)) {
        if (ev.conversation == current)
            continue;
        current = ev.conversation;
        cJSON *o = parse_event(&ev);
        last = event_ms(o);
        if (first < 0)
            first = last;
        cJSON_Delete(o);
    }
    cd_sim_free(sim);
    return last - first;
}

/* Arrivals are spaced by the configured rate: 1999 gaps of mean 1/rate. */
static void test_arrival_rate(void **state)
{
    (void)state;
    assert_in_range(arrival_span_ms(5.0, 2000), 360000, 440000);
    assert_in_range(arrival_span_ms(50.0, 2000), 36000, 44000);
}

/* ---- Limits ---- */

static void test_max_events_is_exact(void **state)
{
    (void)state;
    cd_sim_t *cut = new_sim(9, 0, 777);
    cd_sim_t *full = new_sim(9, 0, 0);
    cd_sim_event_t a, b;
    size_t n = 0;

    /* The cut stream is a prefix of the uncut one. */
    while (cd_sim_next(cut, &a)) {
        assert_int_equal(cd_sim_next(full, &b), 1);
        assert_int_equal(a.json_len, b.json_len);
        assert_memory_equal(a.json, b.json, a.json_len);
        n++;
    }
    assert_int_equal(n, 777);
    assert_int_equal(cd_sim_next(cut, &a), 0);
    assert_int_equal(cd_sim_next(cut, &a), 0);
    assert_int_equal(cd_sim_events_emitted(cut), 777);
    assert_int_equal(cd_sim_conversations_started(cut), b.conversation + 1);
    cd_sim_free(cut);
    cd_sim_free(full);
}

static void test_conversation_limit_is_exact(void **state)
{
    (void)state;
    cd_sim_t *cut = new_sim(9, 37, 0);
    cd_sim_t *more = new_sim(9, 50, 0);
    cd_sim_event_t a, b;
    size_t n = 0;
    cJSON *last = NULL;

    while (cd_sim_next(cut, &a)) {
        assert_true(a.conversation < 37);
        assert_int_equal(cd_sim_next(more, &b), 1);
        assert_memory_equal(a.json, b.json, a.json_len);
        cJSON_Delete(last);
        last = parse_event(&a);
        n++;
    }
    assert_non_null(last);
    assert_int_equal(a.conversation, 36);
    /* It stopped at the end of conversation 36, not within it. */
    assert_string_equal(str_field(last, "scenario"), "ConversationClosed");
    assert_string_equal(str_field(last, "status"), "Completed");
    assert_int_equal(cd_sim_next(more, &b), 1);
    assert_int_equal(b.conversation, 37);

    assert_int_equal(cd_sim_next(cut, &a), 0);
    assert_int_equal(cd_sim_conversations_started(cut), 37);
    assert_int_equal(cd_sim_events_emitted(cut), n);
    cJSON_Delete(last);
    cd_sim_free(cut);
    cd_sim_free(more);
}

/* Whichever limit comes first wins. */
static void test_first_limit_wins(void **state)
{
    (void)state;
    cd_sim_event_t ev;
    size_t n = 0;

    cd_sim_t *sim = new_sim(4, 10, 5);
    while (cd_sim_next(sim, &ev))
        n++;
    assert_int_equal(n, 5);
    assert_int_equal(cd_sim_conversations_started(sim), 1);
    cd_sim_free(sim);

    n = 0;
    sim = new_sim(4, 2, 100000);
    while (cd_sim_next(sim, &ev))
        n++;
    assert_true(n < 100000);
    assert_int_equal(ev.conversation, 1);
    assert_int_equal(cd_sim_conversations_started(sim), 2);
    assert_int_equal(cd_sim_events_emitted(sim), n);
    cd_sim_free(sim);
}

static void test_conf_defaults(void **state)
{
    (void)state;
    cd_sim_conf_t conf;
    int64_t before = cd_now_us();

    memset(&conf, 0xff, sizeof(conf));
    cd_sim_conf_init(&conf);
    int64_t after = cd_now_us();
    assert_int_equal(conf.seed, 1);
    assert_in_range(conf.start_us, before, after);
    assert_int_equal(conf.conversations, 100);
    assert_int_equal(conf.max_events, 0);
    assert_true(conf.conv_per_sec == 5.0);
    assert_true(conf.p_reorder == 0);
    assert_true(conf.p_duplicate == 0);
    assert_true(conf.p_late == 0);
    assert_true(conf.p_alias == 0);
    assert_true(conf.p_malformed == 0);

    /* The defaults make a finite run of exactly 100 conversations. */
    cd_sim_t *sim = cd_sim_new(&conf);
    cd_sim_event_t ev;
    assert_non_null(sim);
    while (cd_sim_next(sim, &ev))
        ;
    assert_int_equal(cd_sim_conversations_started(sim), 100);
    assert_int_equal(ev.conversation, 99);
    cd_sim_free(sim);
}

/* ---- Disorder ---- */

/* The brief's aliases, each with the canonical scenario it stands for. */
static const struct {
    const char *alias, *canonical;
} brief_aliases[] = {
    {"CreateConversation", "ConversationInitialized"},
    {"ConversationCreated", "ConversationInitialized"},
    {"Classification", "DemandClassification"},
    {"RTQ", "QueueAssignment"},
    {"RouteToQueue", "QueueAssignment"},
    {"AgentAccept", "AgentAccepted"},
    {"CSRAccepted", "AgentAccepted"},
    {"AgentReject", "AgentRejected"},
    {"CSRRejected", "AgentRejected"},
    {"AgentTimeout", "AgentAcceptanceTimedOut"},
    {"CSRNotificationTimeout", "AgentAcceptanceTimedOut"},
    {"CSRRejoined", "AgentRejoined"},
    {"AgentPickAssignment", "AgentSelfAssignment"},
    {"CSRPickedConversation", "AgentSelfAssignment"},
    {"CopilotAgentAssignedToConversation", "VirtualAgentAssigned"},
    {"BotChatEnd", "ConversationEndedByVirtualAgent"},
    {"BotEscalationToHuman", "VirtualAgentEscalatedToHumanAgent"},
    {"CopilotAgentEscalationToCSR", "VirtualAgentEscalatedToHumanAgent"},
    {"CustomerEndConversation", "ConversationEndedByCustomer"},
    {"CustomerEndedConversation", "ConversationEndedByCustomer"},
    {"AgentEndConversation", "ConversationEndedByAgent"},
    {"CSREndedConversation", "ConversationEndedByAgent"},
    {"AgentCloseSession", "AgentSessionClosed"},
    {"CSRClosedSession", "AgentSessionClosed"},
    {"CustomerDisconnect", "ConversationAbandonedByCustomer"},
    {"CustomerDisconnected", "ConversationAbandonedByCustomer"},
    {"SupervisorForceCloseConversation", "ConversationForceClosedBySupervisor"},
    {"SupervisorForceClosedConversation", "ConversationForceClosedBySupervisor"},
    {"ConversationClose", "ConversationClosed"},
};

#define N_ALIASES CD_ARRAY_LEN(brief_aliases)

static int alias_index(const char *alias, const char *canonical)
{
    for (size_t i = 0; i < N_ALIASES; i++) {
        if (strcmp(brief_aliases[i].alias, alias) == 0 &&
            strcmp(brief_aliases[i].canonical, canonical) == 0)
            return (int)i;
    }
    return -1;
}

static bool has_alias(const char *canonical)
{
    for (size_t i = 0; i < N_ALIASES; i++) {
        if (strcmp(brief_aliases[i].canonical, canonical) == 0)
            return true;
    }
    return false;
}

typedef struct disorder {
    double reorder, duplicate, late, alias, malformed;
} disorder_t;

static cd_sim_t *new_disordered(uint64_t seed, uint64_t conversations, disorder_t d)
{
    cd_sim_conf_t conf;

    cd_sim_conf_init(&conf);
    conf.seed = seed;
    conf.start_us = START_US;
    conf.conversations = conversations;
    conf.p_reorder = d.reorder;
    conf.p_duplicate = d.duplicate;
    conf.p_late = d.late;
    conf.p_alias = d.alias;
    conf.p_malformed = d.malformed;
    cd_sim_t *sim = cd_sim_new(&conf);
    assert_non_null(sim);
    return sim;
}

/* About 20,000 events: the runs below compare shares over this many. */
#define DISORDER_SEED          21
#define DISORDER_CONVERSATIONS 1400

static const disorder_t all_kinds = {0.1, 0.05, 0.03, 0.2, 0.05};

static const unsigned flag_bits[] = {
    CD_SIM_REORDERED, CD_SIM_DUPLICATE, CD_SIM_LATE, CD_SIM_ALIAS, CD_SIM_MALFORMED,
};

static size_t flag_index(unsigned flag)
{
    for (size_t i = 0; i < CD_ARRAY_LEN(flag_bits); i++) {
        if (flag_bits[i] == flag)
            return i;
    }
    fail_msg("not a flag: %u", flag);
    return 0;
}

/* The run of the same seed without disorder: every planned event, by eventId. */
typedef struct planned {
    char id[40], key[40];
    uint64_t conversation;
    uint32_t pos; /* in its conversation, as planned */
    char *json;
    size_t len;
    unsigned sent;   /* times sent valid, duplicates aside */
    unsigned broken; /* times sent malformed */
} planned_t;

typedef struct plan_index {
    planned_t *v;
    size_t n;
    size_t *slots; /* open addressing: index + 1, 0 for empty */
    size_t mask;
} plan_index_t;

static size_t hash_id(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return (size_t)h;
}

static void plan_index_build(plan_index_t *p, uint64_t seed, uint64_t conversations)
{
    cd_sim_t *sim = new_sim(seed, conversations, 0);
    size_t cap = 4096;
    uint64_t conv = UINT64_MAX;
    uint32_t pos = 0;
    cd_sim_event_t ev;

    memset(p, 0, sizeof(*p));
    p->v = malloc(cap * sizeof(*p->v));
    assert_non_null(p->v);
    while (cd_sim_next(sim, &ev)) {
        if (p->n == cap) {
            cap *= 2;
            p->v = realloc(p->v, cap * sizeof(*p->v));
            assert_non_null(p->v);
        }
        planned_t *e = &p->v[p->n++];
        memset(e, 0, sizeof(*e));
        snprintf(e->id, sizeof(e->id), "%s", ev.event_id);
        snprintf(e->key, sizeof(e->key), "%s", ev.key);
        if (ev.conversation != conv) {
            conv = ev.conversation;
            pos = 0;
        }
        e->conversation = ev.conversation;
        e->pos = pos++;
        e->json = malloc(ev.json_len + 1);
        assert_non_null(e->json);
        memcpy(e->json, ev.json, ev.json_len + 1);
        e->len = ev.json_len;
    }
    cd_sim_free(sim);

    size_t size = 1;
    while (size < 2 * p->n)
        size *= 2;
    p->mask = size - 1;
    p->slots = calloc(size, sizeof(*p->slots));
    assert_non_null(p->slots);
    for (size_t i = 0; i < p->n; i++) {
        size_t h = hash_id(p->v[i].id) & p->mask;
        while (p->slots[h]) {
            /* Planned eventIds are unique. */
            assert_string_not_equal(p->v[p->slots[h] - 1].id, p->v[i].id);
            h = (h + 1) & p->mask;
        }
        p->slots[h] = i + 1;
    }
}

static planned_t *plan_find(const plan_index_t *p, const char *id)
{
    for (size_t h = hash_id(id) & p->mask; p->slots[h]; h = (h + 1) & p->mask) {
        if (strcmp(p->v[p->slots[h] - 1].id, id) == 0)
            return &p->v[p->slots[h] - 1];
    }
    return NULL;
}

static void plan_index_free(plan_index_t *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i].json);
    free(p->v);
    free(p->slots);
}

/* `json` with its scenario value replaced by `name`. */
static char *with_scenario(const char *json, const char *name)
{
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    const char *old = str_field(o, "scenario");
    char pat[128];
    snprintf(pat, sizeof(pat), "\"scenario\":\"%s\"", old);
    const char *at = strstr(json, pat);
    assert_non_null(at);
    size_t n = strlen(json) + strlen(name) + 16;
    char *out = malloc(n);
    assert_non_null(out);
    snprintf(out, n, "%.*s\"scenario\":\"%s\"%s", (int)(at - json), json, name, at + strlen(pat));
    cJSON_Delete(o);
    return out;
}

/* What a run produced, counted. */
typedef struct tally {
    size_t messages, originals; /* originals: all but duplicates */
    size_t aliasable;           /* originals, not malformed, whose scenario has an alias */
    size_t flagged[CD_ARRAY_LEN(flag_bits)];
    size_t kinds[CD_SIM_BAD_KINDS];
} tally_t;

static tally_t run_tally(disorder_t d)
{
    cd_sim_t *sim = new_disordered(DISORDER_SEED, DISORDER_CONVERSATIONS, d);
    tally_t t;
    cd_sim_event_t ev;

    memset(&t, 0, sizeof(t));
    while (cd_sim_next(sim, &ev)) {
        t.messages++;
        for (size_t i = 0; i < CD_ARRAY_LEN(flag_bits); i++)
            t.flagged[i] += (ev.flags & flag_bits[i]) != 0;
        assert_int_equal(ev.malformed != CD_SIM_WELL_FORMED, (ev.flags & CD_SIM_MALFORMED) != 0);
        assert_true(ev.malformed < CD_SIM_BAD_KINDS);
        t.kinds[ev.malformed]++;
        if (ev.flags & CD_SIM_DUPLICATE)
            continue;
        t.originals++;
        if (ev.flags & CD_SIM_ALIAS) {
            t.aliasable++;
        } else if (!(ev.flags & CD_SIM_MALFORMED)) {
            cJSON *o = parse_event(&ev);
            t.aliasable += has_alias(str_field(o, "scenario"));
            cJSON_Delete(o);
        }
    }
    /* The run's own counters agree. */
    assert_int_equal(cd_sim_events_emitted(sim), t.messages);
    for (size_t i = 0; i < CD_ARRAY_LEN(flag_bits); i++)
        assert_int_equal(cd_sim_messages_flagged(sim, flag_bits[i]), t.flagged[i]);
    assert_int_equal(cd_sim_conversations_started(sim), DISORDER_CONVERSATIONS);
    cd_sim_free(sim);
    return t;
}

/* share is p, give or take 15% of p. */
static void assert_share(size_t count, size_t of, double p)
{
    double share = (double)count / (double)of;

    if (share < p * 0.85 || share > p * 1.15)
        fail_msg("share %.4f (%zu of %zu), expected %.4f", share, count, of, p);
}

/* Each kind alone: about its share, and nothing of the other kinds. */
static void test_disorder_shares(void **state)
{
    (void)state;
    tally_t t;

    t = run_tally((disorder_t){0});
    assert_true(t.messages >= 19000);
    for (size_t i = 0; i < CD_ARRAY_LEN(flag_bits); i++)
        assert_int_equal(t.flagged[i], 0);
    size_t orderly = t.messages;

    /* Reordered, out of the events that have a successor in their conversation. */
    t = run_tally((disorder_t){.reorder = 0.1});
    assert_int_equal(t.messages, orderly);
    assert_share(t.flagged[flag_index(CD_SIM_REORDERED)], t.messages - DISORDER_CONVERSATIONS,
                 0.1);
    for (size_t i = 0; i < CD_ARRAY_LEN(flag_bits); i++) {
        if (flag_bits[i] != CD_SIM_REORDERED)
            assert_int_equal(t.flagged[i], 0);
    }

    t = run_tally((disorder_t){.duplicate = 0.05});
    assert_share(t.flagged[flag_index(CD_SIM_DUPLICATE)], t.originals, 0.05);
    assert_int_equal(t.originals, orderly);
    assert_int_equal(t.messages, orderly + t.flagged[flag_index(CD_SIM_DUPLICATE)]);
    for (size_t i = 0; i < CD_ARRAY_LEN(flag_bits); i++) {
        if (flag_bits[i] != CD_SIM_DUPLICATE)
            assert_int_equal(t.flagged[i], 0);
    }

    t = run_tally((disorder_t){.late = 0.05});
    assert_int_equal(t.messages, orderly);
    assert_share(t.flagged[flag_index(CD_SIM_LATE)], t.messages, 0.05);
    for (size_t i = 0; i < CD_ARRAY_LEN(flag_bits); i++) {
        if (flag_bits[i] != CD_SIM_LATE)
            assert_int_equal(t.flagged[i], 0);
    }

    /* Aliased, out of the events whose scenario has an alias. */
    t = run_tally((disorder_t){.alias = 0.1});
    assert_int_equal(t.messages, orderly);
    assert_true(t.aliasable > t.messages / 2);
    assert_share(t.flagged[flag_index(CD_SIM_ALIAS)], t.aliasable, 0.1);
    for (size_t i = 0; i < CD_ARRAY_LEN(flag_bits); i++) {
        if (flag_bits[i] != CD_SIM_ALIAS)
            assert_int_equal(t.flagged[i], 0);
    }

    /* Malformed, each kind about as often as the others. */
    t = run_tally((disorder_t){.malformed = 0.05});
    assert_int_equal(t.messages, orderly);
    size_t bad = t.flagged[flag_index(CD_SIM_MALFORMED)];
    assert_share(bad, t.messages, 0.05);
    for (int k = CD_SIM_BAD_TRUNCATED; k < CD_SIM_BAD_KINDS; k++) {
        double expected = (double)bad / (CD_SIM_BAD_KINDS - 1);
        if (t.kinds[k] < expected * 0.6 || t.kinds[k] > expected * 1.4)
            fail_msg("malformed kind %d: %zu of %zu", k, t.kinds[k], bad);
    }
    for (size_t i = 0; i < CD_ARRAY_LEN(flag_bits); i++) {
        if (flag_bits[i] != CD_SIM_MALFORMED)
            assert_int_equal(t.flagged[i], 0);
    }

    /* All at once: each still about its share. */
    t = run_tally(all_kinds);
    assert_share(t.flagged[flag_index(CD_SIM_DUPLICATE)], t.originals, all_kinds.duplicate);
    assert_share(t.flagged[flag_index(CD_SIM_MALFORMED)], t.messages, all_kinds.malformed);
    assert_true(t.flagged[flag_index(CD_SIM_LATE)] > 0);
    assert_true(t.flagged[flag_index(CD_SIM_REORDERED)] > 0);
    assert_true(t.flagged[flag_index(CD_SIM_ALIAS)] > 0);
}

/* The same seed and options give the same messages; another seed others. */
static void test_disorder_is_deterministic(void **state)
{
    (void)state;
    cd_sim_t *a = new_disordered(8, 700, all_kinds);
    cd_sim_t *b = new_disordered(8, 700, all_kinds);
    cd_sim_t *c = new_disordered(9, 700, all_kinds);
    cd_sim_event_t ea, eb, ec;
    size_t n = 0, same_as_c = 0;

    while (cd_sim_next(a, &ea)) {
        assert_int_equal(cd_sim_next(b, &eb), 1);
        assert_int_equal(ea.json_len, eb.json_len);
        assert_memory_equal(ea.json, eb.json, ea.json_len);
        assert_string_equal(ea.key, eb.key);
        assert_string_equal(ea.event_id, eb.event_id);
        assert_int_equal(ea.conversation, eb.conversation);
        assert_int_equal(ea.flags, eb.flags);
        assert_int_equal(ea.malformed, eb.malformed);
        if (cd_sim_next(c, &ec) && strcmp(ea.event_id, ec.event_id) == 0)
            same_as_c++;
        n++;
    }
    assert_int_equal(cd_sim_next(b, &eb), 0);
    assert_true(n > 5000);
    assert_int_equal(same_as_c, 0);
    cd_sim_free(a);
    cd_sim_free(b);
    cd_sim_free(c);

    /* The shorthand mix. */
    cd_sim_conf_t conf;
    cd_sim_conf_init(&conf);
    cd_sim_conf_disorder(&conf);
    assert_true(conf.p_reorder == 0.05);
    assert_true(conf.p_duplicate == 0.02);
    assert_true(conf.p_late == 0.01);
    assert_true(conf.p_alias == 0.1);
    assert_true(conf.p_malformed == 0.005);
}

/*
 * Against the same seed without disorder: every planned event goes out
 * exactly once, valid or malformed, nothing else goes out but repeats of
 * valid ones, and the flags say truly what happened.
 */
static void test_disorder_loses_nothing(void **state)
{
    (void)state;
    plan_index_t base;
    plan_index_build(&base, DISORDER_SEED, DISORDER_CONVERSATIONS);
    cd_sim_t *sim = new_disordered(DISORDER_SEED, DISORDER_CONVERSATIONS, all_kinds);
    int64_t *highest = malloc(DISORDER_CONVERSATIONS * sizeof(*highest));
    uint64_t newest = 0; /* latest conversation with a message that was not late */
    size_t n = 0, duplicates = 0, valid = 0, broken = 0, late = 0, reordered = 0;
    cd_sim_event_t ev;

    assert_non_null(highest);
    for (size_t i = 0; i < DISORDER_CONVERSATIONS; i++)
        highest[i] = -1;

    while (cd_sim_next(sim, &ev)) {
        n++;
        planned_t *p = plan_find(&base, ev.event_id);
        if (!p)
            fail_msg("message %zu stands for no planned event: %s", n, ev.event_id);
        assert_string_equal(ev.key, p->key);
        assert_int_equal(ev.conversation, p->conversation);

        if (ev.flags & CD_SIM_DUPLICATE) {
            /* A repeat of a valid event already sent. */
            assert_false(ev.flags & CD_SIM_MALFORMED);
            assert_int_equal(p->sent, 1);
            duplicates++;
            continue;
        }

        if (ev.flags & CD_SIM_MALFORMED) {
            p->broken++;
            broken++;
        } else {
            p->sent++;
            valid++;
            /* The planned bytes, but for the scenario's name when aliased. */
            if (ev.flags & CD_SIM_ALIAS) {
                cJSON *o = parse_event(&ev);
                char *want = with_scenario(p->json, str_field(o, "scenario"));
                assert_string_equal(ev.json, want);
                free(want);
                cJSON_Delete(o);
            } else {
                assert_int_equal(ev.json_len, p->len);
                assert_memory_equal(ev.json, p->json, p->len);
            }
        }

        uint64_t c = p->conversation;
        if (ev.flags & CD_SIM_LATE) {
            /* After 1 to 3 later conversations (fewer at the end of the run). */
            assert_false(ev.flags & CD_SIM_REORDERED);
            uint64_t at_least = c + 1 < DISORDER_CONVERSATIONS ? c + 1 : c;
            assert_in_range(newest, at_least, c + 3);
            late++;
        } else {
            /* Reordered exactly when behind an event planned after it. */
            bool behind = (int64_t)p->pos < highest[c];
            assert_int_equal(behind, (ev.flags & CD_SIM_REORDERED) != 0);
            reordered += behind;
            if (c > newest)
                newest = c;
        }
        if ((int64_t)p->pos > highest[c])
            highest[c] = p->pos;
    }

    /* The multiset of valid eventIds is the planned one less the malformed. */
    for (size_t i = 0; i < base.n; i++) {
        if (base.v[i].sent + base.v[i].broken != 1)
            fail_msg("%s sent %u times valid, %u malformed", base.v[i].id, base.v[i].sent,
                     base.v[i].broken);
    }
    assert_int_equal(valid + broken, base.n);
    assert_int_equal(n, base.n + duplicates);
    assert_true(duplicates > 0 && broken > 0 && late > 0 && reordered > 0);
    free(highest);
    cd_sim_free(sim);
    plan_index_free(&base);
}

/* A duplicate is the same bytes as its original, a few messages later. */
static void test_duplicates_repeat_bytes(void **state)
{
    (void)state;
    enum { WINDOW = 8 };
    cd_sim_t *sim = new_disordered(13, 1000, (disorder_t){.reorder = 0.1, .duplicate = 0.2,
                                                          .alias = 0.3, .malformed = 0.05});
    struct {
        char id[40];
        char *json;
        size_t len;
        unsigned flags;
    } recent[WINDOW] = {0};
    size_t n = 0, duplicates = 0;
    cd_sim_event_t ev;

    while (cd_sim_next(sim, &ev)) {
        if (ev.flags & CD_SIM_DUPLICATE) {
            size_t i = 0;
            while (i < WINDOW && !(recent[i].json && strcmp(recent[i].id, ev.event_id) == 0 &&
                                   !(recent[i].flags & CD_SIM_DUPLICATE)))
                i++;
            if (i == WINDOW)
                fail_msg("duplicate of %s not within %d messages of it", ev.event_id, WINDOW);
            assert_int_equal(ev.json_len, recent[i].len);
            assert_memory_equal(ev.json, recent[i].json, ev.json_len);
            assert_int_equal(ev.flags, recent[i].flags | CD_SIM_DUPLICATE);
            assert_int_equal(ev.malformed, CD_SIM_WELL_FORMED);
            cJSON *o = parse_event(&ev);
            assert_string_equal(str_field(o, "eventId"), ev.event_id);
            cJSON_Delete(o);
            duplicates++;
        }
        size_t slot = n++ % WINDOW;
        free(recent[slot].json);
        recent[slot].json = malloc(ev.json_len + 1);
        assert_non_null(recent[slot].json);
        memcpy(recent[slot].json, ev.json, ev.json_len + 1);
        recent[slot].len = ev.json_len;
        recent[slot].flags = ev.flags;
        snprintf(recent[slot].id, sizeof(recent[slot].id), "%s", ev.event_id);
    }
    assert_share(duplicates, n - duplicates, 0.2);
    for (size_t i = 0; i < WINDOW; i++)
        free(recent[i].json);
    cd_sim_free(sim);
}

/* An aliased scenario is one of the brief's aliases of the canonical name,
 * and all of them occur. */
static void test_aliases_are_the_briefs(void **state)
{
    (void)state;
    cd_sim_t *plain = new_sim(17, 3000, 0);
    cd_sim_t *sim = new_disordered(17, 3000, (disorder_t){.alias = 1});
    bool seen[N_ALIASES] = {0};
    cd_sim_event_t a, b;

    /* Aliases alone change no order: the two runs go in step. */
    while (cd_sim_next(plain, &a)) {
        assert_int_equal(cd_sim_next(sim, &b), 1);
        assert_string_equal(a.event_id, b.event_id);
        cJSON *o = parse_event(&a);
        const char *canonical = str_field(o, "scenario");
        if (b.flags & CD_SIM_ALIAS) {
            assert_int_equal(b.flags, CD_SIM_ALIAS);
            cJSON *ob = parse_event(&b);
            int i = alias_index(str_field(ob, "scenario"), canonical);
            if (i < 0)
                fail_msg("%s is no alias of %s", str_field(ob, "scenario"), canonical);
            seen[i] = true;
            char *want = with_scenario(a.json, brief_aliases[i].alias);
            assert_string_equal(b.json, want);
            free(want);
            cJSON_Delete(ob);
        } else {
            /* With p = 1, only a scenario without an alias keeps its name. */
            assert_int_equal(b.flags, 0);
            assert_false(has_alias(canonical));
            assert_memory_equal(a.json, b.json, a.json_len + 1);
        }
        cJSON_Delete(o);
    }
    assert_int_equal(cd_sim_next(sim, &b), 0);
    for (size_t i = 0; i < N_ALIASES; i++) {
        if (!seen[i])
            fail_msg("alias %s never sent", brief_aliases[i].alias);
    }
    cd_sim_free(plain);
    cd_sim_free(sim);
}

/* The validator rejects every malformed message, for the reason its kind
 * says, and accepts every other one, aliases included. */
static void test_malformed_rejected_valid_accepted(void **state)
{
    (void)state;
    static const char *const reason[CD_SIM_BAD_KINDS] = {
        [CD_SIM_BAD_TYPE] = "expected",       [CD_SIM_BAD_MISSING] = "missing",
        [CD_SIM_BAD_STATUS] = "'Done'",       [CD_SIM_BAD_UTF8] = "UTF-8",
        [CD_SIM_BAD_UNKNOWN_FIELD] = "unknown field",
    };
    cd_sim_t *sim = new_disordered(DISORDER_SEED, DISORDER_CONVERSATIONS, all_kinds);
    cd_event_limits_t limits;
    size_t kinds[CD_SIM_BAD_KINDS] = {0}, accepted = 0;
    cd_sim_event_t ev;

    cd_event_limits_init(&limits);
    limits.strict_scenarios = true; /* aliases are known names */
    while (cd_sim_next(sim, &ev)) {
        /* One line of dry-run output each, whatever is in it. */
        assert_null(memchr(ev.json, '\n', ev.json_len));
        assert_int_equal(strlen(ev.json), ev.json_len);
        assert_true(is_uuid_v4(ev.key));

        cd_event_t e;
        cd_err_t err = {0};
        cd_status_t st = cd_event_parse(&e, ev.json, ev.json_len, &limits, &err);
        if (ev.flags & CD_SIM_MALFORMED) {
            if (st == CD_OK) {
                cd_event_fini(&e);
                fail_msg("malformed (kind %d) accepted: %s", ev.malformed, ev.json);
            }
            kinds[ev.malformed]++;
            if (ev.malformed == CD_SIM_BAD_TRUNCATED) {
                /* Cut inside a two-byte character, it is bad UTF-8 first. */
                assert_true(strstr(err.msg, "JSON") || strstr(err.msg, "UTF-8"));
            } else if (!strstr(err.msg, reason[ev.malformed])) {
                fail_msg("kind %d rejected for: %s", ev.malformed, err.msg);
            }
        } else {
            if (st != CD_OK)
                fail_msg("rejected: %s: %s", err.msg, ev.json);
            assert_string_equal(e.event_id, ev.event_id);
            assert_string_equal(e.live_work_item_id, ev.key);
            assert_true(e.scenario_known);
            assert_int_equal(strcmp(e.scenario, e.scenario_received) != 0,
                             (ev.flags & CD_SIM_ALIAS) != 0);
            if (ev.flags & CD_SIM_ALIAS)
                assert_true(alias_index(e.scenario_received, e.scenario) >= 0);
            cd_event_fini(&e);
            accepted++;
        }
    }
    for (int k = CD_SIM_BAD_TRUNCATED; k < CD_SIM_BAD_KINDS; k++) {
        if (kinds[k] == 0)
            fail_msg("malformed kind %d never sent", k);
    }
    assert_true(accepted > 15000);
    cd_sim_free(sim);
}

/* A run cut by conversations still sends what its last conversations held
 * back; a run cut by events stops at exactly that many messages. */
static void test_disorder_limits(void **state)
{
    (void)state;
    cd_sim_t *sim = new_disordered(5, 50, (disorder_t){.late = 0.3});
    cd_sim_event_t ev;
    size_t n = 0, late = 0;

    while (cd_sim_next(sim, &ev)) {
        assert_true(ev.conversation < 50);
        late += (ev.flags & CD_SIM_LATE) != 0;
        n++;
    }
    cd_sim_t *plain = new_sim(5, 50, 0);
    size_t orderly = 0;
    while (cd_sim_next(plain, &ev))
        orderly++;
    assert_int_equal(n, orderly);
    assert_true(late > 0);
    assert_int_equal(cd_sim_next(sim, &ev), 0);
    cd_sim_free(sim);
    cd_sim_free(plain);

    cd_sim_conf_t conf;
    cd_sim_conf_init(&conf);
    conf.seed = 5;
    conf.conversations = 0;
    conf.max_events = 999;
    cd_sim_conf_disorder(&conf);
    sim = cd_sim_new(&conf);
    assert_non_null(sim);
    n = 0;
    while (cd_sim_next(sim, &ev))
        n++;
    assert_int_equal(n, 999);
    assert_int_equal(cd_sim_events_emitted(sim), 999);
    cd_sim_free(sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_seed_same_stream),
        cmocka_unit_test(test_different_seed_different_stream),
        cmocka_unit_test(test_events_follow_contract),
        cmocka_unit_test(test_timestamp_form),
        cmocka_unit_test(test_conversations_are_whole_and_ordered),
        cmocka_unit_test(test_catalogue_is_covered),
        cmocka_unit_test(test_users_belong_to_one_org),
        cmocka_unit_test(test_arrival_rate),
        cmocka_unit_test(test_max_events_is_exact),
        cmocka_unit_test(test_conversation_limit_is_exact),
        cmocka_unit_test(test_first_limit_wins),
        cmocka_unit_test(test_conf_defaults),
        cmocka_unit_test(test_disorder_shares),
        cmocka_unit_test(test_disorder_is_deterministic),
        cmocka_unit_test(test_disorder_loses_nothing),
        cmocka_unit_test(test_duplicates_repeat_bytes),
        cmocka_unit_test(test_aliases_are_the_briefs),
        cmocka_unit_test(test_malformed_rejected_valid_accepted),
        cmocka_unit_test(test_disorder_limits),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
