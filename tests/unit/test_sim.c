/*
 * test_sim.c -- the conversation generator: reproducibility, the event
 * contract v1, the shape of each conversation, the flow catalogue, limits.
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
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
