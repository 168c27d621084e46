/*
 * test_tagger.c -- the tagger against the brief's "Tagging" rules:
 *   - scenario runs paired in every arrival order (one scenario, two
 *     interleaved scenarios, two conversations), duplicates ignored,
 *     durations from the source or from the pair;
 *   - a batch split in two, with the state carried over as is or reloaded
 *     the way the store reloads it, gives the runs and conversation rows one
 *     batch gives, for every permutation of a few four-event sequences;
 *   - stale runs, with the default and per-scenario stale times;
 *   - operation_Id precedence (header, body, inherited, transactionId,
 *     liveWorkItemId), the trace context kept with it, and its derivation
 *     from the liveWorkItemId (SHA-256 values computed independently);
 *   - the conversation row: counts, first and last times, outcome and
 *     closed time independent of arrival order.
 * Every record is built from JSON through the real parser.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convdiag/batch.h"
#include "convdiag/common.h"
#include "convdiag/event.h"
#include "convdiag/tagging.h"
#include "convdiag/timeutil.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define ORG "8a6d5c2e-1f3b-4c7d-9e0a-2b4c6d8e0f12"
#define ORG2 "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
#define LWI "conv-1"
#define LWI2 "conv-2"

#define SEC 1000LL
#define MIN (60 * SEC)

#define QA "QueueAssignment"
#define AA "AgentAccepted"
#define CI "CustomerIdentified"

/* W3C values: two valid traceparents, invalid ones, tracestates. */
#define TID1 "4bf92f3577b34da6a3ce929d0e0e4736"
#define TID2 "0af7651916cd43dd8448eb211c80319c"
#define TP1 "00-" TID1 "-00f067aa0ba902b7-01"
#define TP2 "00-" TID2 "-b7ad6b7169203331-01"
#define TP2_FUTURE "cc-" TID2 "-b7ad6b7169203331-01-what-the-future-will-be-like"
#define TP_UPPER "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"
#define TP_ZERO_TID "00-00000000000000000000000000000000-00f067aa0ba902b7-01"
#define TP_ZERO_PID "00-" TID1 "-0000000000000000-01"
#define TP_FF "ff-" TID1 "-00f067aa0ba902b7-01"
#define TP_LONG "00-" TID1 "-00f067aa0ba902b7-01-"
#define TS1 "congo=t61rcWkgMzE"
#define TS2 "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
#define TS_BAD_KEY "Congo=t61rcWkgMzE"
#define TS_DUP_KEY "rojo=1,rojo=2"

/* String literals of n copies of s. */
#define X2(s) s s
#define X4(s) X2(X2(s))
#define X8(s) X2(X4(s))
#define X16(s) X2(X8(s))
#define X32(s) X2(X16(s))
#define X64(s) X2(X32(s))
#define X128(s) X2(X64(s))

/* liveWorkItemIds and the operation_Ids they give.  The SHA-256 prefixes
 * were computed with Python's hashlib, not with the code under test. */
#define UUID_UPPER "3F2504E0-4F89-11D3-9A0C-0305E82C3301"
#define UUID_LOWER "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
#define UUID_MIXED "3f2504E0-4f89-11D3-9a0C-0305e82C3301"
#define UUID_HEX "3f2504e04f8911d39a0c0305e82c3301"
static const char lwi_128[] = "lwi-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
                              "0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab";
#define LWI_NON_ASCII "conversaci\xc3\xb3n-\xc3\xb1-\xe4\xbc\x9a\xe8\xa9\xb1-\xf0\x9f\x98\x80"

/* 2026-11-22T10:00:00.000Z; event times are milliseconds after it. */
static int64_t base_us;
static cd_event_limits_t limits;

/* ------------------------------------------------------------------------ */
/* Events */

typedef struct ev {
    const char *id;
    const char *scenario; /* as sent */
    const char *status;   /* Started, Completed, Failed */
    int64_t t_ms;
    const char *dur;     /* durationMs as JSON text, or NULL */
    const char *lwi;     /* NULL: LWI */
    const char *org;     /* NULL: ORG */
    const char *channel; /* NULL: livechat */
    const char *extra;   /* more members, each preceded by ',' */
    const char *hdr_tp, *hdr_ts;
    bool dup;     /* already stored: rec->duplicate */
    bool invalid; /* a rejected message, not an event */
} ev_t;

#define S(i, sc, t) {.id = i, .scenario = sc, .status = "Started", .t_ms = t}
#define C(i, sc, t) {.id = i, .scenario = sc, .status = "Completed", .t_ms = t}
#define F(i, sc, t) {.id = i, .scenario = sc, .status = "Failed", .t_ms = t}
#define CD(i, sc, t, d) {.id = i, .scenario = sc, .status = "Completed", .t_ms = t, .dur = d}
#define FD(i, sc, t, d) {.id = i, .scenario = sc, .status = "Failed", .t_ms = t, .dur = d}
#define SL(l, i, sc, t) {.id = i, .scenario = sc, .status = "Started", .t_ms = t, .lwi = l}
#define CL(l, i, sc, t) {.id = i, .scenario = sc, .status = "Completed", .t_ms = t, .lwi = l}
#define SDUP(i, sc, t) {.id = i, .scenario = sc, .status = "Started", .t_ms = t, .dup = true}
#define CDUP(i, sc, t) {.id = i, .scenario = sc, .status = "Completed", .t_ms = t, .dup = true}
#define BAD(i) {.id = i, .invalid = true}

static size_t count_events(const ev_t *ev, size_t cap)
{
    size_t n = 0;
    while (n < cap && ev[n].id)
        n++;
    return n;
}

static const char *ev_lwi(const ev_t *e) { return e->lwi ? e->lwi : LWI; }

static char *event_json(const ev_t *e)
{
    char ts[40];
    cd_time_format_utc(base_us + e->t_ms * 1000, 3, ts, sizeof(ts));
    char *s = NULL;
    int n = asprintf(&s,
                     "{\"eventId\":\"%s\",\"timestamp\":\"%s\",\"organizationId\":\"%s\","
                     "\"liveWorkItemId\":\"%s\",\"scenario\":\"%s\",\"status\":\"%s\","
                     "\"channelType\":\"%s\"%s%s%s}",
                     e->id, ts, e->org ? e->org : ORG, ev_lwi(e), e->scenario, e->status,
                     e->channel ? e->channel : "livechat", e->dur ? ",\"durationMs\":" : "",
                     e->dur ? e->dur : "", e->extra ? e->extra : "");
    assert_true(n > 0);
    return s;
}

/* Appends e to the batch as the ingest loop would: parsed, with its headers. */
static cd_record_t *push_ev(cd_batch_t *b, const ev_t *e)
{
    cd_record_t *rec = cd_batch_push(b);
    assert_non_null(rec);
    rec->topic = "conversation-events";
    rec->offset = (int64_t)b->count - 1;
    if (e->invalid) {
        rec->reason = strdup("eventId: required field is missing");
        assert_non_null(rec->reason);
        return rec;
    }
    char *json = event_json(e);
    cd_err_t err = {{0}};
    if (cd_event_parse(&rec->event, json, strlen(json), &limits, &err) != CD_OK)
        fail_msg("test event does not parse: %s: %s", json, err.msg);
    free(json);
    rec->valid = true;
    rec->duplicate = e->dup;
    if (e->hdr_tp)
        assert_non_null(rec->header_traceparent = cd_batch_copy(b, e->hdr_tp, strlen(e->hdr_tp)));
    if (e->hdr_ts)
        assert_non_null(rec->header_tracestate = cd_batch_copy(b, e->hdr_ts, strlen(e->hdr_ts)));
    return rec;
}

static void build_batch(cd_batch_t *b, const ev_t *const *evs, size_t n)
{
    assert_int_equal(cd_batch_init(b, 2), CD_OK);
    for (size_t i = 0; i < n; i++)
        push_ev(b, evs[i]);
}

static void add_tag_lines(void *lines, const cd_batch_t *b);

/* Applies the events, in this order, as one batch; checks what every record
 * got: tags for the valid new ones, nothing for duplicates and rejects.
 * With tag_lines, adds each record's tags to it as text. */
static void apply_ptrs_tags(const char *row, const cd_tagger_conf_t *tc, cd_tag_state_t *st,
                            const ev_t *const *evs, size_t n, void *tag_lines)
{
    cd_batch_t b;
    cd_err_t err = {{0}};
    build_batch(&b, evs, n);
    if (cd_tagger_apply(tc, &b, st, &err) != CD_OK)
        fail_msg("%s: cd_tagger_apply: %s", row, err.msg);
    for (size_t i = 0; i < n; i++) {
        const cd_record_t *rec = &b.records[i];
        if (evs[i]->dup || evs[i]->invalid) {
            if (rec->tags.source != CD_OPID_NONE || rec->tags.operation_id)
                fail_msg("%s: record %s (duplicate or rejected) was tagged", row, evs[i]->id);
        } else if (rec->tags.source == CD_OPID_NONE || !rec->tags.operation_id ||
                   !rec->tags.operation_id[0]) {
            fail_msg("%s: record %s was not tagged", row, evs[i]->id);
        }
    }
    if (tag_lines)
        add_tag_lines(tag_lines, &b);
    cd_batch_fini(&b);
}

static void apply_ptrs(const char *row, const cd_tagger_conf_t *tc, cd_tag_state_t *st,
                       const ev_t *const *evs, size_t n)
{
    apply_ptrs_tags(row, tc, st, evs, n, NULL);
}

static void apply_events(const char *row, const cd_tagger_conf_t *tc, cd_tag_state_t *st,
                         const ev_t *ev, size_t n)
{
    const ev_t *p[64];
    assert_true(n <= ARRAY_LEN(p));
    for (size_t i = 0; i < n; i++)
        p[i] = &ev[i];
    apply_ptrs(row, tc, st, p, n);
}

/* ------------------------------------------------------------------------ */
/* Runs and conversations as text, to compare whole sets at once */

typedef struct lines {
    char **v;
    size_t n, cap;
} lines_t;

static void lines_add(lines_t *l, char *s)
{
    assert_non_null(s);
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
        assert_non_null(l->v);
    }
    l->v[l->n++] = s;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted, one per line; frees the lines. */
static char *lines_join(lines_t *l)
{
    size_t len = 1;
    if (l->n)
        qsort(l->v, l->n, sizeof(*l->v), cmp_str);
    for (size_t i = 0; i < l->n; i++)
        len += strlen(l->v[i]) + 1;
    char *out = malloc(len), *p = out;
    assert_non_null(out);
    for (size_t i = 0; i < l->n; i++) {
        size_t k = strlen(l->v[i]);
        memcpy(p, l->v[i], k);
        p[k] = '\n';
        p += k + 1;
        free(l->v[i]);
    }
    *p = '\0';
    free(l->v);
    memset(l, 0, sizeof(*l));
    return out;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, f);
    int n = vasprintf(&s, f, ap);
    va_end(ap);
    assert_true(n >= 0);
    return s;
}

/* Time relative to the base, in ms, or "-" when there is none. */
static void rel(char *buf, size_t size, bool have, int64_t us)
{
    if (!have || us == CD_NO_TIME)
        snprintf(buf, size, "-");
    else
        snprintf(buf, size, "%lld", (long long)((us - base_us) / 1000));
}

static char *run_text(const char *lwi, const char *scenario, cd_run_state_t state,
                      const char *start_id, int64_t start_us, const char *end_id,
                      int64_t end_us, bool end_failed, int64_t duration_ms, bool stale)
{
    char st[32], et[32];
    rel(st, sizeof(st), start_id != NULL, start_us);
    rel(et, sizeof(et), end_id != NULL, end_us);
    return fmt("%s %s %s start=%s@%s end=%s%s@%s duration=%lld stale=%d", lwi, scenario,
               cd_run_state_name(state), start_id ? start_id : "-", st,
               end_id ? (end_failed ? "F:" : "C:") : "", end_id ? end_id : "-", et,
               (long long)duration_ms, (int)stale);
}

static char *run_line(const cd_conversation_t *c, const cd_run_t *r)
{
    return run_text(c->live_work_item_id, r->scenario, r->state, r->start_event_id, r->start_us,
                    r->end_event_id, r->end_us, r->end_failed, r->duration_ms, r->stale);
}

static char *conv_line(const cd_conversation_t *c)
{
    char first[32], last[32], out[32], closed[32];
    rel(first, sizeof(first), c->first_us != INT64_MAX, c->first_us);
    rel(last, sizeof(last), c->last_us != INT64_MIN, c->last_us);
    rel(out, sizeof(out), c->outcome != NULL, c->outcome_us);
    rel(closed, sizeof(closed), true, c->closed_us);
    return fmt("conversation %s org=%s channel=%s op=%s events=%lld started=%lld "
               "completed=%lld failed=%lld unknown=%lld first=%s last=%s outcome=%s@%s "
               "closed=%s",
               c->live_work_item_id, c->organization_id ? c->organization_id : "-",
               c->channel_type ? c->channel_type : "-", c->operation_id ? c->operation_id : "-",
               (long long)c->events, (long long)c->started, (long long)c->completed,
               (long long)c->failed, (long long)c->unknown_scenarios, first, last,
               c->outcome ? c->outcome : "-", out, closed);
}

static void add_tag_lines(void *lines, const cd_batch_t *b)
{
    for (size_t i = 0; i < b->count; i++) {
        const cd_record_t *rec = &b->records[i];
        if (rec->valid && !rec->duplicate)
            lines_add(lines, fmt("tags %s op=%s source=%s traceparent=%s tracestate=%s",
                                 rec->event.event_id, rec->tags.operation_id,
                                 cd_opid_source_name(rec->tags.source),
                                 rec->tags.traceparent ? rec->tags.traceparent : "-",
                                 rec->tags.tracestate ? rec->tags.tracestate : "-"));
    }
}

static void add_runs(lines_t *l, const cd_tag_state_t *st)
{
    for (const cd_conversation_t *c = cd_tag_state_first(st); c; c = c->older)
        for (size_t j = 0; j < c->runs_count; j++)
            lines_add(l, run_line(c, &c->runs[j]));
}

static void add_convs(lines_t *l, const cd_tag_state_t *st)
{
    for (const cd_conversation_t *c = cd_tag_state_first(st); c; c = c->older)
        lines_add(l, conv_line(c));
}

/* The category the catalogue gives each scenario these tests use. */
static const char *category_of(const char *scenario)
{
    static const char *const map[][2] = {
        {QA, "Routing"},
        {AA, "HumanAgentInteraction"},
        {CI, "ConversationInitiation"},
        {"ConversationInitialized", "ConversationInitiation"},
        {"ConversationEndedByCustomer", "ConversationCompletion"},
        {"ConversationEndedByAgent", "ConversationCompletion"},
        {"ConversationEndedByVirtualAgent", "VirtualAgentInteraction"},
        {"ConversationAbandonedByCustomer", "ConversationCompletion"},
        {"ConversationForceClosedBySupervisor", "ConversationCompletion"},
        {"ConversationClosed", "ConversationCompletion"},
        {"AgentSessionClosed", "ConversationCompletion"},
    };
    for (size_t i = 0; i < ARRAY_LEN(map); i++)
        if (strcmp(map[i][0], scenario) == 0)
            return map[i][1];
    return "Other";
}

static void check_run_categories(const char *row, const cd_tag_state_t *st)
{
    for (const cd_conversation_t *c = cd_tag_state_first(st); c; c = c->older)
        for (size_t j = 0; j < c->runs_count; j++) {
            const cd_run_t *r = &c->runs[j];
            if (!r->category || strcmp(r->category, category_of(r->scenario)) != 0)
                fail_msg("%s: run %s has category %s, want %s", row, r->scenario,
                         r->category ? r->category : "(null)", category_of(r->scenario));
        }
}

#define CHECK_STR(want, got)                                                                    \
    do {                                                                                        \
        const char *w_ = (want), *g_ = (got);                                                   \
        if ((w_ == NULL) != (g_ == NULL) || (w_ && strcmp(w_, g_) != 0))                        \
            fail_msg("%s: %s:\nwant: %s\ngot:  %s", row, #got, w_ ? w_ : "(null)",              \
                     g_ ? g_ : "(null)");                                                       \
    } while (0)

#define CHECK_INT(want, got)                                                                    \
    do {                                                                                        \
        long long w_ = (want), g_ = (got);                                                      \
        if (w_ != g_)                                                                           \
            fail_msg("%s: %s: want %lld, got %lld", row, #got, w_, g_);                        \
    } while (0)

/* ------------------------------------------------------------------------ */
/* 1. Pairing in every order */

typedef struct xrun {
    const char *scenario;
    cd_run_state_t state;
    const char *start_id;
    int64_t start_ms;
    const char *end_id;
    int64_t end_ms;
    bool end_failed;
    int64_t duration_ms;
    bool stale;
    const char *lwi; /* NULL: LWI */
} xrun_t;

#define OPEN(sc, s, st, stl)                                                                    \
    {.scenario = sc, .state = CD_RUN_OPEN, .start_id = s, .start_ms = st, .duration_ms = -1,    \
     .stale = stl}
#define DONE(sc, s, st, e, et, d)                                                               \
    {.scenario = sc, .state = CD_RUN_COMPLETED, .start_id = s, .start_ms = st, .end_id = e,     \
     .end_ms = et, .duration_ms = d}
#define FAILED(sc, s, st, e, et, d)                                                             \
    {.scenario = sc, .state = CD_RUN_FAILED, .start_id = s, .start_ms = st, .end_id = e,        \
     .end_ms = et, .end_failed = true, .duration_ms = d}
#define UNPAIRED(sc, e, et, d)                                                                  \
    {.scenario = sc, .state = CD_RUN_UNPAIRED, .end_id = e, .end_ms = et, .duration_ms = d}
#define UNPAIRED_F(sc, e, et, d)                                                                \
    {.scenario = sc, .state = CD_RUN_UNPAIRED, .end_id = e, .end_ms = et, .end_failed = true,   \
     .duration_ms = d}

typedef struct pair_case {
    const char *name;
    ev_t ev[12];
    xrun_t runs[8];
    const cd_tagger_conf_t *conf; /* NULL: defaults */
} pair_case_t;

static char *expected_runs(const xrun_t *x, size_t cap)
{
    lines_t l = {0};
    for (size_t i = 0; i < cap && x[i].scenario; i++)
        lines_add(&l, run_text(x[i].lwi ? x[i].lwi : LWI, x[i].scenario, x[i].state,
                               x[i].start_id, base_us + x[i].start_ms * 1000, x[i].end_id,
                               base_us + x[i].end_ms * 1000, x[i].end_failed, x[i].duration_ms,
                               x[i].stale));
    return lines_join(&l);
}

/* Counts each conversation must show: those of the valid, new events. */
static void check_counts(const char *row, const cd_tag_state_t *st, const ev_t *ev, size_t n)
{
    size_t convs = 0;
    for (size_t i = 0; i < n; i++) {
        if (ev[i].dup || ev[i].invalid)
            continue;
        bool seen = false;
        for (size_t j = 0; j < i; j++)
            seen |= !ev[j].dup && !ev[j].invalid && strcmp(ev_lwi(&ev[j]), ev_lwi(&ev[i])) == 0;
        if (seen)
            continue;
        convs++;
        long long events = 0, started = 0, completed = 0, failed = 0;
        for (size_t j = i; j < n; j++) {
            if (ev[j].dup || ev[j].invalid || strcmp(ev_lwi(&ev[j]), ev_lwi(&ev[i])) != 0)
                continue;
            events++;
            started += strcmp(ev[j].status, "Started") == 0;
            completed += strcmp(ev[j].status, "Completed") == 0;
            failed += strcmp(ev[j].status, "Failed") == 0;
        }
        const cd_conversation_t *c = cd_tag_state_find(st, ev_lwi(&ev[i]));
        if (!c)
            fail_msg("%s: no conversation %s", row, ev_lwi(&ev[i]));
        CHECK_INT(events, c->events);
        CHECK_INT(started, c->started);
        CHECK_INT(completed, c->completed);
        CHECK_INT(failed, c->failed);
    }
    CHECK_INT(convs, st->count); /* duplicates and rejects add no conversation */
}

static void run_pair_cases(const pair_case_t *cases, size_t ncases)
{
    static const cd_tagger_conf_t defaults = {0};
    for (size_t k = 0; k < ncases; k++) {
        const pair_case_t *pc = &cases[k];
        const char *row = pc->name;
        size_t n = count_events(pc->ev, ARRAY_LEN(pc->ev));
        cd_tag_state_t st;
        cd_tag_state_init(&st, SIZE_MAX);
        apply_events(row, pc->conf ? pc->conf : &defaults, &st, pc->ev, n);

        lines_t l = {0};
        add_runs(&l, &st);
        char *got = lines_join(&l), *want = expected_runs(pc->runs, ARRAY_LEN(pc->runs));
        CHECK_STR(want, got);
        free(got);
        free(want);
        check_counts(row, &st, pc->ev, n);
        check_run_categories(row, &st);
        cd_tag_state_fini(&st);
    }
}

static const pair_case_t pairing_cases[] = {
    /* One scenario */
    {.name = "S E", {S("s", QA, 0), C("e", QA, 1500)}, {DONE(QA, "s", 0, "e", 1500, 1500)}},
    {.name = "S F", {S("s", QA, 0), F("e", QA, 2000)}, {FAILED(QA, "s", 0, "e", 2000, 2000)}},
    {.name = "E S, start earlier in time",
     {C("e", QA, 5000), S("s", QA, 1000)},
     {DONE(QA, "s", 1000, "e", 5000, 4000)}},
    {.name = "F S, start earlier in time",
     {F("e", QA, 5000), S("s", QA, 1000)},
     {FAILED(QA, "s", 1000, "e", 5000, 4000)}},
    {.name = "E S, start at the end's instant",
     {C("e", QA, 1000), S("s", QA, 1000)},
     {DONE(QA, "s", 1000, "e", 1000, 0)}},
    {.name = "E S, start 1 ms later than the end",
     {C("e", QA, 1000), S("s", QA, 1001)},
     {UNPAIRED(QA, "e", 1000, -1), OPEN(QA, "s", 1001, false)}},
    {.name = "F S, start later, source duration kept",
     {FD("e", QA, 1000, "750"), S("s", QA, 5000)},
     {UNPAIRED_F(QA, "e", 1000, 750), OPEN(QA, "s", 5000, false)}},
    {.name = "S E, end earlier in time: duration 0, not negative",
     {S("s", QA, 5000), C("e", QA, 1000)},
     {DONE(QA, "s", 5000, "e", 1000, 0)}},
    {.name = "S E, durationMs given", {S("s", QA, 0), CD("e", QA, 1000, "250")},
     {DONE(QA, "s", 0, "e", 1000, 250)}},
    {.name = "S E, durationMs 0 given", {S("s", QA, 0), CD("e", QA, 9000, "0")},
     {DONE(QA, "s", 0, "e", 9000, 0)}},
    {.name = "S F, durationMs longer than the gap",
     {S("s", QA, 0), FD("e", QA, 1000, "86400000")},
     {FAILED(QA, "s", 0, "e", 1000, 86400000)}},
    {.name = "S E, end earlier in time, durationMs given",
     {S("s", QA, 5000), CD("e", QA, 1000, "300")},
     {DONE(QA, "s", 5000, "e", 1000, 300)}},
    {.name = "E S, durationMs given", {CD("e", QA, 3000, "7000"), S("s", QA, 1000)},
     {DONE(QA, "s", 1000, "e", 3000, 7000)}},
    {.name = "S alone", {S("s", QA, 0)}, {OPEN(QA, "s", 0, false)}},
    {.name = "E alone", {C("e", QA, 0)}, {UNPAIRED(QA, "e", 0, -1)}},
    {.name = "F alone", {F("e", QA, 0)}, {UNPAIRED_F(QA, "e", 0, -1)}},
    {.name = "E alone, durationMs given", {CD("e", QA, 0, "1234")}, {UNPAIRED(QA, "e", 0, 1234)}},
    {.name = "S S E E: the oldest open closes first",
     {S("s1", QA, 0), S("s2", QA, 1000), C("e1", QA, 2000), C("e2", QA, 3000)},
     {DONE(QA, "s1", 0, "e1", 2000, 2000), DONE(QA, "s2", 1000, "e2", 3000, 2000)}},
    {.name = "S S E E, the newer start arriving first",
     {S("s2", QA, 1000), S("s1", QA, 0), C("e1", QA, 2000), F("e2", QA, 3500)},
     {DONE(QA, "s1", 0, "e1", 2000, 2000), FAILED(QA, "s2", 1000, "e2", 3500, 2500)}},
    {.name = "S S E", {S("s1", QA, 0), S("s2", QA, 1000), C("e", QA, 5000)},
     {DONE(QA, "s1", 0, "e", 5000, 5000), OPEN(QA, "s2", 1000, false)}},
    {.name = "S E E: the second end stays unpaired",
     {S("s", QA, 0), C("e1", QA, 1000), C("e2", QA, 2000)},
     {DONE(QA, "s", 0, "e1", 1000, 1000), UNPAIRED(QA, "e2", 2000, -1)}},
    {.name = "S E F", {S("s", QA, 0), C("e1", QA, 1000), FD("e2", QA, 2000, "40")},
     {DONE(QA, "s", 0, "e1", 1000, 1000), UNPAIRED_F(QA, "e2", 2000, 40)}},
    {.name = "E E S: the start pairs with the oldest end",
     {C("e1", QA, 1000), C("e2", QA, 2000), S("s", QA, 0)},
     {DONE(QA, "s", 0, "e1", 1000, 1000), UNPAIRED(QA, "e2", 2000, -1)}},
    {.name = "E E S, the newer end arriving first",
     {C("e2", QA, 2000), C("e1", QA, 1000), S("s", QA, 0)},
     {DONE(QA, "s", 0, "e1", 1000, 1000), UNPAIRED(QA, "e2", 2000, -1)}},
    {.name = "E E S, start between the ends",
     {C("e1", QA, 1000), C("e2", QA, 3000), S("s", QA, 2000)},
     {UNPAIRED(QA, "e1", 1000, -1), DONE(QA, "s", 2000, "e2", 3000, 1000)}},
    {.name = "E E S, start after both ends",
     {C("e1", QA, 1000), C("e2", QA, 2000), S("s", QA, 2500)},
     {UNPAIRED(QA, "e1", 1000, -1), UNPAIRED(QA, "e2", 2000, -1), OPEN(QA, "s", 2500, false)}},
    {.name = "E E S S",
     {C("e1", QA, 1000), F("e2", QA, 2000), S("s1", QA, 0), S("s2", QA, 500)},
     {DONE(QA, "s1", 0, "e1", 1000, 1000), FAILED(QA, "s2", 500, "e2", 2000, 1500)}},
    {.name = "E S E", {C("e1", QA, 1000), S("s", QA, 0), C("e2", QA, 2000)},
     {DONE(QA, "s", 0, "e1", 1000, 1000), UNPAIRED(QA, "e2", 2000, -1)}},
    {.name = "E S E, the start later than the first end",
     {C("e1", QA, 1000), S("s", QA, 1500), C("e2", QA, 2000)},
     {UNPAIRED(QA, "e1", 1000, -1), DONE(QA, "s", 1500, "e2", 2000, 500)}},
    {.name = "S E S E",
     {S("s1", QA, 0), C("e1", QA, 1000), S("s2", QA, 2000), FD("e2", QA, 3000, "10")},
     {DONE(QA, "s1", 0, "e1", 1000, 1000), FAILED(QA, "s2", 2000, "e2", 3000, 10)}},
    {.name = "S E S", {S("s1", QA, 0), C("e1", QA, 1000), S("s2", QA, 2000)},
     {DONE(QA, "s1", 0, "e1", 1000, 1000), OPEN(QA, "s2", 2000, false)}},
    {.name = "aliases pair with their canonical name",
     {S("s", "RTQ", 0), C("e", QA, 1000), S("s2", "CSRAccepted", 100), C("e2", "AgentAccept", 400)},
     {DONE(QA, "s", 0, "e", 1000, 1000), DONE(AA, "s2", 100, "e2", 400, 300)}},
    {.name = "an unknown scenario pairs by its name as sent",
     {S("u1", "CustomStep", 0), C("u2", "CustomStep", 800), S("u3", "customstep", 0)},
     {DONE("CustomStep", "u1", 0, "u2", 800, 800), OPEN("customstep", "u3", 0, false)}},

    /* Duplicates and rejects change nothing */
    {.name = "S S(dup) E", {S("s", QA, 0), SDUP("s", QA, 0), C("e", QA, 1000)},
     {DONE(QA, "s", 0, "e", 1000, 1000)}},
    {.name = "S S(dup, older) E: the duplicate is not the oldest open",
     {S("s", QA, 0), SDUP("s-old", QA, -1000), C("e", QA, 1000)},
     {DONE(QA, "s", 0, "e", 1000, 1000)}},
    {.name = "S E E(dup)", {S("s", QA, 0), C("e", QA, 1000), CDUP("e", QA, 1000)},
     {DONE(QA, "s", 0, "e", 1000, 1000)}},
    {.name = "E(dup) S", {CDUP("e", QA, 1000), S("s", QA, 0)}, {OPEN(QA, "s", 0, false)}},
    {.name = "E(dup) E S", {CDUP("e0", QA, 500), C("e", QA, 1000), S("s", QA, 0)},
     {DONE(QA, "s", 0, "e", 1000, 1000)}},
    {.name = "duplicates only", {SDUP("s", QA, 0), CDUP("e", QA, 1000)}, {{0}}},
    {.name = "a rejected message between S and E", {S("s", QA, 0), BAD("x"), C("e", QA, 1000)},
     {DONE(QA, "s", 0, "e", 1000, 1000)}},

    /* Two scenarios interleaved */
    {.name = "A:S B:S A:E B:E",
     {S("qs", QA, 0), S("as", AA, 100), C("qe", QA, 1000), C("ae", AA, 2000)},
     {DONE(QA, "qs", 0, "qe", 1000, 1000), DONE(AA, "as", 100, "ae", 2000, 1900)}},
    {.name = "A:S B:E: an end does not close another scenario's start",
     {S("qs", QA, 0), C("ae", AA, 1000)},
     {OPEN(QA, "qs", 0, false), UNPAIRED(AA, "ae", 1000, -1)}},
    {.name = "A:E B:S: a start does not pair with another scenario's end",
     {C("qe", QA, 1000), S("as", AA, 0)},
     {UNPAIRED(QA, "qe", 1000, -1), OPEN(AA, "as", 0, false)}},
    {.name = "B:E A:S A:E B:S",
     {C("ae", AA, 3000), S("qs", QA, 0), C("qe", QA, 1000), S("as", AA, 2000)},
     {DONE(QA, "qs", 0, "qe", 1000, 1000), DONE(AA, "as", 2000, "ae", 3000, 1000)}},
    {.name = "A:S B:S A:S B:E A:E A:E B:E",
     {S("qs1", QA, 0), S("as1", AA, 100), S("qs2", QA, 200), C("ae1", AA, 300),
      C("qe1", QA, 400), F("qe2", QA, 500), C("ae2", AA, 600)},
     {DONE(QA, "qs1", 0, "qe1", 400, 400), FAILED(QA, "qs2", 200, "qe2", 500, 300),
      DONE(AA, "as1", 100, "ae1", 300, 200), UNPAIRED(AA, "ae2", 600, -1)}},
    {.name = "A:E B:E B:S A:S",
     {C("qe", QA, 1000), C("ae", AA, 2000), S("as", AA, 0), S("qs", QA, 500)},
     {DONE(QA, "qs", 500, "qe", 1000, 500), DONE(AA, "as", 0, "ae", 2000, 2000)}},
    {.name = "A:S A:S(dup) B:E(dup) B:S A:E B:E",
     {S("qs", QA, 0), SDUP("qs", QA, 0), CDUP("ae0", AA, 50), S("as", AA, 100),
      C("qe", QA, 1000), C("ae", AA, 2000)},
     {DONE(QA, "qs", 0, "qe", 1000, 1000), DONE(AA, "as", 100, "ae", 2000, 1900)}},

    /* Two conversations interleaved */
    {.name = "the same scenario in two conversations",
     {SL(LWI, "a1", QA, 0), SL(LWI2, "b1", QA, -5000), CL(LWI, "a2", QA, 1000),
      CL(LWI2, "b2", QA, 2000)},
     {DONE(QA, "a1", 0, "a2", 1000, 1000),
      {.scenario = QA, .state = CD_RUN_COMPLETED, .start_id = "b1", .start_ms = -5000,
       .end_id = "b2", .end_ms = 2000, .duration_ms = 7000, .lwi = LWI2}}},
    {.name = "an end in one conversation, a start in the other",
     {CL(LWI, "a2", QA, 1000), SL(LWI2, "b1", QA, 0)},
     {UNPAIRED(QA, "a2", 1000, -1),
      {.scenario = QA, .state = CD_RUN_OPEN, .start_id = "b1", .start_ms = 0,
       .duration_ms = -1, .lwi = LWI2}}},
};

static void test_pairing(void **state)
{
    (void)state;
    run_pair_cases(pairing_cases, ARRAY_LEN(pairing_cases));
}

/* ------------------------------------------------------------------------ */
/* 1b. A batch split in two gives the runs one batch gives */

static const cd_stale_override_t q5_override[] = {{.scenario = (char *)QA, .after_ms = 5 * MIN}};
static const cd_tagger_conf_t conf_q5 = {.overrides = q5_override, .overrides_count = 1};

typedef struct seq4 {
    const char *name;
    ev_t ev[4];
} seq4_t;

static const seq4_t sequences[] = {
    {"one scenario, two runs",
     {S("s1", QA, 0), C("e1", QA, 1 * SEC), S("s2", QA, 2 * SEC),
      FD("e2", QA, 3500, "1200")}},
    {"one scenario, all at the same instant",
     {S("s1", QA, 0), S("s2", QA, 0), C("e1", QA, 0), FD("e2", QA, 0, "5")}},
    {"ends earlier and later than starts",
     {C("e1", QA, 2 * SEC), C("e2", QA, 4 * SEC), S("s1", QA, 3 * SEC), S("s2", QA, 1 * SEC)}},
    {"two scenarios interleaved",
     {S("qs", QA, 0), S("as", AA, 500), C("qe", QA, 1500), FD("ae", AA, 2500, "100")}},
    {"two conversations",
     {SL(LWI, "a1", QA, 0), SL(LWI2, "b1", QA, 0), CL(LWI, "a2", QA, 1 * SEC),
      CL(LWI2, "b2", QA, 2 * SEC)}},
    {"stale, then closed",
     {S("qs", QA, 0), C("ci", CI, 10 * MIN), C("qe", QA, 12 * MIN), S("as", AA, 1 * MIN)}},
    {"stale by the default and by the override",
     {S("qs", QA, 0), S("as", AA, 0), C("ci", CI, 6 * MIN), C("ci2", CI, 31 * MIN)}},
    {"conversation row and operation_Id",
     {{.id = "o1", .scenario = "ConversationEndedByAgent", .status = "Completed", .t_ms = 5000,
       .extra = ",\"transactionId\":\"tx-a\""},
      {.id = "o2", .scenario = "ConversationAbandonedByCustomer", .status = "Failed",
       .t_ms = 4000, .extra = ",\"traceparent\":\"" TP1 "\""},
      {.id = "o3", .scenario = "ConversationClosed", .status = "Completed", .t_ms = 9000,
       .org = ORG2, .channel = "voice"},
      {.id = "o4", .scenario = "ConversationClosed", .status = "Completed", .t_ms = 7000,
       .hdr_tp = TP2}}},
};

static bool next_permutation(size_t *a, size_t n)
{
    size_t i = n - 1;
    while (i > 0 && a[i - 1] >= a[i])
        i--;
    if (i == 0)
        return false;
    size_t j = n - 1;
    while (a[j] <= a[i - 1])
        j--;
    size_t t = a[i - 1];
    a[i - 1] = a[j];
    a[j] = t;
    for (size_t l = i, r = n - 1; l < r; l++, r--) {
        t = a[l];
        a[l] = a[r];
        a[r] = t;
    }
    return true;
}

static char *dup_or_null(const char *s)
{
    char *d = s ? strdup(s) : NULL;
    if (s)
        assert_non_null(d);
    return d;
}

/* What the store does between two batches: the ended runs are written away;
 * the conversation rows and the open and unpaired runs are loaded back,
 * stored and clean. */
static void reload(const cd_tag_state_t *from, cd_tag_state_t *to, lines_t *written)
{
    cd_tag_state_init(to, SIZE_MAX);
    for (const cd_conversation_t *c = cd_tag_state_first(from); c; c = c->older) {
        cd_conversation_t *n = cd_tag_state_add(to, c->live_work_item_id);
        assert_non_null(n);
        n->stored = true;
        n->organization_id = dup_or_null(c->organization_id);
        n->channel_type = dup_or_null(c->channel_type);
        n->operation_id = dup_or_null(c->operation_id);
        n->first_us = c->first_us;
        n->last_us = c->last_us;
        n->outcome = dup_or_null(c->outcome);
        n->outcome_us = c->outcome_us;
        n->closed_us = c->closed_us;
        n->events = c->events;
        n->started = c->started;
        n->completed = c->completed;
        n->failed = c->failed;
        n->unknown_scenarios = c->unknown_scenarios;
        for (size_t j = 0; j < c->runs_count; j++) {
            const cd_run_t *r = &c->runs[j];
            if (r->state == CD_RUN_COMPLETED || r->state == CD_RUN_FAILED) {
                lines_add(written, run_line(c, r));
                continue;
            }
            cd_run_t *nr = cd_conversation_add_run(n);
            assert_non_null(nr);
            nr->run_id = (int64_t)j + 1;
            nr->scenario = dup_or_null(r->scenario);
            nr->category = dup_or_null(r->category);
            nr->state = r->state;
            nr->start_event_id = dup_or_null(r->start_event_id);
            nr->start_us = r->start_us;
            nr->end_event_id = dup_or_null(r->end_event_id);
            nr->end_us = r->end_us;
            nr->end_failed = r->end_failed;
            nr->source_duration_ms = r->source_duration_ms;
            nr->duration_ms = r->duration_ms;
            nr->stale = r->stale;
        }
    }
}

/* Every start and every end appears in exactly one run. */
static void check_each_event_in_one_run(const char *row, const cd_tag_state_t *st,
                                        const ev_t *const *evs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const cd_conversation_t *c = cd_tag_state_find(st, ev_lwi(evs[i]));
        if (!c)
            fail_msg("%s: no conversation for %s", row, evs[i]->id);
        int found = 0;
        bool start = strcmp(evs[i]->status, "Started") == 0;
        for (size_t j = 0; j < c->runs_count; j++) {
            const char *id = start ? c->runs[j].start_event_id : c->runs[j].end_event_id;
            found += id && strcmp(id, evs[i]->id) == 0;
        }
        if (found != 1)
            fail_msg("%s: event %s is in %d runs", row, evs[i]->id, found);
    }
}

static void test_split_batch_same_runs(void **state)
{
    (void)state;
    size_t compared = 0;
    for (size_t q = 0; q < ARRAY_LEN(sequences); q++) {
        const seq4_t *sq = &sequences[q];
        size_t perm[4] = {0, 1, 2, 3};
        do {
            const ev_t *p[4];
            char row[256];
            int off = snprintf(row, sizeof(row), "%s, order", sq->name);
            for (size_t i = 0; i < 4; i++) {
                p[i] = &sq->ev[perm[i]];
                off += snprintf(row + off, sizeof(row) - (size_t)off, " %s", p[i]->id);
            }

            /* One batch */
            cd_tag_state_t one;
            cd_tag_state_init(&one, SIZE_MAX);
            lines_t l = {0};
            apply_ptrs_tags(row, &conf_q5, &one, p, 4, &l);
            check_each_event_in_one_run(row, &one, p, 4);
            add_runs(&l, &one);
            add_convs(&l, &one);
            char *want = lines_join(&l);
            cd_tag_state_fini(&one);

            for (size_t k = 1; k < 4; k++) {
                char srow[300];
                /* The same state carried over */
                snprintf(srow, sizeof(srow), "%s, split after %zu", row, k);
                cd_tag_state_t st;
                cd_tag_state_init(&st, SIZE_MAX);
                apply_ptrs_tags(srow, &conf_q5, &st, p, k, &l);
                apply_ptrs_tags(srow, &conf_q5, &st, p + k, 4 - k, &l);
                add_runs(&l, &st);
                add_convs(&l, &st);
                char *got = lines_join(&l);
                {
                    const char *row = srow;
                    CHECK_STR(want, got);
                }
                free(got);
                cd_tag_state_fini(&st);
                compared++;

                /* Reloaded as the store reloads it (a restart in between) */
                snprintf(srow, sizeof(srow), "%s, split after %zu, reloaded", row, k);
                cd_tag_state_t first, second;
                cd_tag_state_init(&first, SIZE_MAX);
                apply_ptrs_tags(srow, &conf_q5, &first, p, k, &l);
                reload(&first, &second, &l);
                cd_tag_state_fini(&first);
                apply_ptrs_tags(srow, &conf_q5, &second, p + k, 4 - k, &l);
                add_runs(&l, &second);
                add_convs(&l, &second);
                got = lines_join(&l);
                {
                    const char *row = srow;
                    CHECK_STR(want, got);
                }
                free(got);
                cd_tag_state_fini(&second);
                compared++;
            }
            free(want);
        } while (next_permutation(perm, 4));
    }
    assert_int_equal(compared, ARRAY_LEN(sequences) * 24 * 3 * 2);
}

/* ------------------------------------------------------------------------ */
/* 2. Stale runs */

static const cd_tagger_conf_t conf_30 = {.stale_after_ms = 30 * MIN};
static const cd_tagger_conf_t conf_10 = {.stale_after_ms = 10 * MIN};
static const cd_stale_override_t aa60_override[] = {
    {.scenario = (char *)AA, .after_ms = 60 * MIN}};
static const cd_tagger_conf_t conf_aa60 = {.overrides = aa60_override, .overrides_count = 1};

static const pair_case_t stale_cases[] = {
    {.name = "a start alone is not stale", {S("s", AA, 0)}, {OPEN(AA, "s", 0, false)}},
    {.name = "default: exactly 30 min is not stale",
     {S("s", AA, 0), C("x", CI, 30 * MIN)},
     {OPEN(AA, "s", 0, false), UNPAIRED(CI, "x", 30 * MIN, -1)}},
    {.name = "default: 30 min + 1 ms is stale",
     {S("s", AA, 0), C("x", CI, 30 * MIN + 1)},
     {OPEN(AA, "s", 0, true), UNPAIRED(CI, "x", 30 * MIN + 1, -1)}},
    {.name = "explicit 30 min: 30 min + 1 ms is stale",
     {S("s", AA, 0), C("x", CI, 30 * MIN + 1)},
     {OPEN(AA, "s", 0, true), UNPAIRED(CI, "x", 30 * MIN + 1, -1)},
     &conf_30},
    {.name = "10 min configured: 10 min + 1 ms is stale",
     {S("s", AA, 0), C("x", CI, 10 * MIN + 1)},
     {OPEN(AA, "s", 0, true), UNPAIRED(CI, "x", 10 * MIN + 1, -1)},
     &conf_10},
    {.name = "a later event of the same scenario makes it stale",
     {S("s1", AA, 0), S("s2", AA, 31 * MIN)},
     {OPEN(AA, "s1", 0, true), OPEN(AA, "s2", 31 * MIN, false)}},
    {.name = "the latest event counts, whatever arrives after it",
     {S("s", AA, 0), C("x", CI, 40 * MIN), C("y", CI, 10 * MIN)},
     {OPEN(AA, "s", 0, true), UNPAIRED(CI, "x", 40 * MIN, -1), UNPAIRED(CI, "y", 10 * MIN, -1)}},
    {.name = "an event before the start does not make it stale",
     {S("s", AA, 40 * MIN), C("x", CI, 0)},
     {OPEN(AA, "s", 40 * MIN, false), UNPAIRED(CI, "x", 0, -1)}},
    {.name = "closing clears it",
     {S("s", AA, 0), C("x", CI, 40 * MIN), C("e", AA, 45 * MIN)},
     {DONE(AA, "s", 0, "e", 45 * MIN, 45 * MIN), UNPAIRED(CI, "x", 40 * MIN, -1)}},
    {.name = "another conversation's events do not count",
     {SL(LWI, "s", AA, 0), CL(LWI2, "x", CI, 40 * MIN)},
     {OPEN(AA, "s", 0, false),
      {.scenario = CI, .state = CD_RUN_UNPAIRED, .end_id = "x", .end_ms = 40 * MIN,
       .duration_ms = -1, .lwi = LWI2}}},
    {.name = "override 5 min for QueueAssignment: exactly 5 min is not stale",
     {S("q", QA, 0), S("a", AA, 0), C("x", CI, 5 * MIN)},
     {OPEN(QA, "q", 0, false), OPEN(AA, "a", 0, false), UNPAIRED(CI, "x", 5 * MIN, -1)},
     &conf_q5},
    {.name = "override 5 min for QueueAssignment: 5 min + 1 ms is stale, others use the default",
     {S("q", QA, 0), S("a", AA, 0), C("x", CI, 5 * MIN + 1)},
     {OPEN(QA, "q", 0, true), OPEN(AA, "a", 0, false), UNPAIRED(CI, "x", 5 * MIN + 1, -1)},
     &conf_q5},
    {.name = "override 5 min, the alias of the scenario",
     {S("q", "RTQ", 0), C("x", CI, 6 * MIN)},
     {OPEN(QA, "q", 0, true), UNPAIRED(CI, "x", 6 * MIN, -1)},
     &conf_q5},
    {.name = "override 5 min, 31 min for the default",
     {S("q", QA, 0), S("a", AA, 0), C("x", CI, 31 * MIN)},
     {OPEN(QA, "q", 0, true), OPEN(AA, "a", 0, true), UNPAIRED(CI, "x", 31 * MIN, -1)},
     &conf_q5},
    {.name = "an override longer than the default",
     {S("q", QA, 0), S("a", AA, 0), C("x", CI, 45 * MIN)},
     {OPEN(QA, "q", 0, true), OPEN(AA, "a", 0, false), UNPAIRED(CI, "x", 45 * MIN, -1)},
     &conf_aa60},
    {.name = "each open run from its own start",
     {S("s1", AA, 0), S("s2", AA, 20 * MIN), C("x", CI, 40 * MIN)},
     {OPEN(AA, "s1", 0, true), OPEN(AA, "s2", 20 * MIN, false), UNPAIRED(CI, "x", 40 * MIN, -1)}},
    {.name = "the run's start counts, not the conversation's first event",
     {C("x", CI, 0), S("s", AA, 20 * MIN), C("y", CI, 50 * MIN)},
     {UNPAIRED(CI, "x", 0, -1), OPEN(AA, "s", 20 * MIN, false), UNPAIRED(CI, "y", 50 * MIN, -1)}},
    {.name = "the oldest closes, the newer stays open and fresh",
     {S("s1", QA, 0), S("s2", QA, 10 * MIN), C("e", QA, 12 * MIN)},
     {DONE(QA, "s1", 0, "e", 12 * MIN, 12 * MIN), OPEN(QA, "s2", 10 * MIN, false)},
     &conf_q5},
    {.name = "an unpaired end is never stale",
     {C("e", AA, 0), C("x", CI, 40 * MIN)},
     {UNPAIRED(AA, "e", 0, -1), UNPAIRED(CI, "x", 40 * MIN, -1)}},
    {.name = "a start paired with an earlier-arrived end is not stale",
     {C("e", AA, 40 * MIN), S("s", AA, 0)},
     {DONE(AA, "s", 0, "e", 40 * MIN, 40 * MIN)}},
    {.name = "duplicates do not make a run stale",
     {S("s", AA, 0), CDUP("x", CI, 40 * MIN)},
     {OPEN(AA, "s", 0, false)}},
};

static void test_stale(void **state)
{
    (void)state;
    run_pair_cases(stale_cases, ARRAY_LEN(stale_cases));
}

static void test_stale_after_ms(void **state)
{
    (void)state;
    static const cd_tagger_conf_t zero = {0};
    static const cd_tagger_conf_t negative = {.stale_after_ms = -1};
    assert_int_equal(cd_tagger_stale_after_ms(&zero, AA), 30 * MIN);
    assert_int_equal(cd_tagger_stale_after_ms(&negative, AA), 30 * MIN);
    assert_int_equal(cd_tagger_stale_after_ms(&conf_10, AA), 10 * MIN);
    assert_int_equal(cd_tagger_stale_after_ms(&conf_q5, QA), 5 * MIN);
    assert_int_equal(cd_tagger_stale_after_ms(&conf_q5, AA), 30 * MIN);
    assert_int_equal(cd_tagger_stale_after_ms(&conf_aa60, AA), 60 * MIN);
    assert_int_equal(cd_tagger_stale_after_ms(&conf_aa60, QA), 30 * MIN);

    cd_config_t cfg;
    cd_config_init(&cfg);
    cfg.stale_after_ms = 7 * MIN;
    cfg.stale_overrides = (cd_stale_override_t *)q5_override;
    cfg.stale_overrides_count = 1;
    cd_tagger_conf_t tc;
    cd_tagger_conf_from_config(&tc, &cfg);
    assert_int_equal(cd_tagger_stale_after_ms(&tc, AA), 7 * MIN);
    assert_int_equal(cd_tagger_stale_after_ms(&tc, QA), 5 * MIN);
    cfg.stale_overrides = NULL;
    cfg.stale_overrides_count = 0;
    cd_config_fini(&cfg);
}

static const cd_run_t *find_run(const cd_conversation_t *c, const char *start_id)
{
    for (size_t i = 0; i < c->runs_count; i++)
        if (c->runs[i].start_event_id && strcmp(c->runs[i].start_event_id, start_id) == 0)
            return &c->runs[i];
    fail_msg("no run started by %s", start_id);
    return NULL;
}

/* Stale across batches: set by one, cleared by the end in the next. */
static void test_stale_across_batches(void **state)
{
    (void)state;
    static const cd_tagger_conf_t defaults = {0};
    const ev_t b1[] = {S("s", AA, 0), S("t", QA, 20 * MIN), C("x", CI, 31 * MIN)};
    const ev_t b2[] = {C("e", AA, 32 * MIN)};
    const ev_t b3[] = {C("y", CI, 49 * MIN)};
    const ev_t b4[] = {C("z", CI, 51 * MIN)};
    cd_tag_state_t st;
    cd_tag_state_init(&st, SIZE_MAX);
    const char *row = "stale across batches";

    apply_events(row, &defaults, &st, b1, ARRAY_LEN(b1));
    cd_conversation_t *c = cd_tag_state_find(&st, LWI);
    assert_non_null(c);
    assert_true(find_run(c, "s")->stale);
    assert_false(find_run(c, "t")->stale);

    apply_events(row, &defaults, &st, b2, ARRAY_LEN(b2));
    c = cd_tag_state_find(&st, LWI);
    const cd_run_t *r = find_run(c, "s");
    assert_int_equal(r->state, CD_RUN_COMPLETED);
    assert_false(r->stale);
    assert_int_equal(r->duration_ms, 32 * MIN);
    assert_false(find_run(c, "t")->stale);

    /* t started at 20 min: 49 min is 29 min later, 51 min is 31 min later */
    apply_events(row, &defaults, &st, b3, ARRAY_LEN(b3));
    c = cd_tag_state_find(&st, LWI);
    assert_false(find_run(c, "t")->stale);
    apply_events(row, &defaults, &st, b4, ARRAY_LEN(b4));
    c = cd_tag_state_find(&st, LWI);
    assert_true(find_run(c, "t")->stale);
    assert_int_equal(find_run(c, "t")->state, CD_RUN_OPEN);
    CHECK_INT(6, c->events);
    cd_tag_state_fini(&st);
}

/* A stored open run: flagged (and marked changed) once a new event makes it
 * stale; left unchanged when nothing changes. */
static void test_stale_loaded_run(void **state)
{
    (void)state;
    static const cd_tagger_conf_t defaults = {0};
    const char *row = "stale, loaded run";
    cd_tag_state_t st;
    cd_tag_state_init(&st, SIZE_MAX);
    cd_conversation_t *c = cd_tag_state_add(&st, LWI);
    assert_non_null(c);
    c->stored = true;
    c->organization_id = strdup(ORG);
    c->channel_type = strdup("livechat");
    c->operation_id = strdup("op-stored");
    c->first_us = c->last_us = base_us;
    c->events = c->started = 2;
    for (int i = 0; i < 2; i++) {
        cd_run_t *r = cd_conversation_add_run(c);
        assert_non_null(r);
        r->run_id = i + 1;
        r->scenario = strdup(i ? QA : AA);
        r->category = strdup(i ? "Routing" : "HumanAgentInteraction");
        r->state = CD_RUN_OPEN;
        r->start_event_id = strdup(i ? "q" : "a");
        r->start_us = base_us;
        r->stale = i == 1; /* the QueueAssignment run was already stale */
    }

    const ev_t ev[] = {C("x", CI, 31 * MIN)};
    apply_events(row, &defaults, &st, ev, 1);
    c = cd_tag_state_find(&st, LWI);
    const cd_run_t *a = find_run(c, "a"), *q = find_run(c, "q");
    assert_true(a->stale);
    assert_true(a->dirty);
    assert_true(q->stale);
    assert_false(q->dirty); /* unchanged: nothing to write */
    CHECK_INT(3, c->events);
    CHECK_STR("op-stored", c->operation_id);
    cd_tag_state_fini(&st);
}

/* ------------------------------------------------------------------------ */
/* 3. operation_Id */

static void test_operation_id_from_lwi(void **state)
{
    (void)state;
    static const struct {
        const char *lwi, *want;
    } rows[] = {
        {UUID_LOWER, UUID_HEX},
        {UUID_UPPER, UUID_HEX},
        {UUID_MIXED, UUID_HEX},
        {"00000000-0000-0000-0000-000000000000", "00000000000000000000000000000000"},
        {"LWI-12345", "651388525709c40529383bf893119836"},
        {"chat:abc", "2106a100a540a3c8855336b04f6127f3"},
        {lwi_128, "f0193d10cc61744cda1e7cbe8dd37474"},
        {LWI_NON_ASCII, "912594a27ad53918d96a28494f7f3be2"},
        {"3F2504E04F8911D39A0C0305E82C3301", "25d35fcefad4325b4b1fa82375166b61"}, /* no dashes */
        {"{" UUID_LOWER "}", "2ddd70035a8580f7d6b2ed81278b220f"},
        {UUID_LOWER "1", "c37dbe7196d760228f79b374b627d47b"}, /* 37 characters */
        {"3f2504e0-4f89-11d3-9a0c-0305e82c330g", "26312b4e8d8ebe7b5a74873f16e0e976"},
        {"3f2504e0_4f89-11d3-9a0c-0305e82c3301", "45244684c41dd8f1422f15499340fb9e"},
        {"", "e3b0c44298fc1c149afbf4c8996fb924"},
    };
    assert_int_equal(strlen(lwi_128), 128);
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        const char *row = rows[i].lwi;
        char out[40];
        memset(out, 'Z', sizeof(out));
        cd_operation_id_from_lwi(rows[i].lwi, out);
        CHECK_STR(rows[i].want, out);
        /* deterministic */
        char again[33];
        cd_operation_id_from_lwi(rows[i].lwi, again);
        CHECK_STR(out, again);
    }
}

typedef struct opid_case {
    const char *name;
    const char *lwi;
    const char *hdr_tp, *hdr_ts;
    const char *body_tp, *body_ts;
    const char *tx;
    const char *inherited;
    const char *want_id;
    cd_opid_source_t want_source;
    const char *want_ts;
} opid_case_t;

#define TX128 X128("\xf0\x9f\x98\x80")

static const opid_case_t opid_cases[] = {
    /* The header first, then the body */
    {"valid header and body: the header", NULL, TP1, TS1, TP2, TS2, "tx", NULL, TID1,
     CD_OPID_TRACEPARENT_HEADER, TS1},
    {"valid header, its tracestate absent: the body's is not used", NULL, TP1, NULL, TP2, TS2,
     NULL, NULL, TID1, CD_OPID_TRACEPARENT_HEADER, NULL},
    {"valid header, invalid tracestate dropped", NULL, TP1, TS_BAD_KEY, NULL, TS2, NULL, NULL,
     TID1, CD_OPID_TRACEPARENT_HEADER, NULL},
    {"valid header, tracestate with a duplicate key dropped", NULL, TP1, TS_DUP_KEY, NULL, NULL,
     NULL, NULL, TID1, CD_OPID_TRACEPARENT_HEADER, NULL},
    {"valid header of a higher version", NULL, TP2_FUTURE, TS2, TP1, TS1, NULL, NULL, TID2,
     CD_OPID_TRACEPARENT_HEADER, TS2},
    {"valid header wins over an inherited one", NULL, TP2, NULL, NULL, NULL, NULL, "inh", TID2,
     CD_OPID_TRACEPARENT_HEADER, NULL},
    {"upper-case header: the body, with the body's tracestate", NULL, TP_UPPER, TS1, TP2, TS2,
     "tx", NULL, TID2, CD_OPID_TRACEPARENT_BODY, TS2},
    {"all-zero trace-id in the header: the body", NULL, TP_ZERO_TID, TS1, TP2, NULL, NULL, NULL,
     TID2, CD_OPID_TRACEPARENT_BODY, NULL},
    {"all-zero parent-id in the header: the body", NULL, TP_ZERO_PID, NULL, TP2, TS1, NULL,
     NULL, TID2, CD_OPID_TRACEPARENT_BODY, TS1},
    {"version ff in the header: the body", NULL, TP_FF, NULL, TP1, NULL, NULL, NULL, TID1,
     CD_OPID_TRACEPARENT_BODY, NULL},
    {"version 00 too long in the header: the body", NULL, TP_LONG, NULL, TP1, NULL, NULL, NULL,
     TID1, CD_OPID_TRACEPARENT_BODY, NULL},
    {"body only", NULL, NULL, NULL, TP1, TS1, "tx", "inh", TID1, CD_OPID_TRACEPARENT_BODY, TS1},
    {"body with an invalid tracestate", NULL, NULL, NULL, TP1, TS_BAD_KEY, NULL, NULL, TID1,
     CD_OPID_TRACEPARENT_BODY, NULL},
    {"header tracestate without a header traceparent is not used", NULL, NULL, TS1, TP1, NULL,
     NULL, NULL, TID1, CD_OPID_TRACEPARENT_BODY, NULL},

    /* Neither valid: inherited, then transactionId, then derived */
    {"invalid both, inherited", NULL, TP_UPPER, TS1, TP_FF, TS2, "tx", "inh-op", "inh-op",
     CD_OPID_INHERITED, NULL},
    {"none, inherited despite a transactionId", NULL, NULL, NULL, NULL, NULL, "tx", "inh-op",
     "inh-op", CD_OPID_INHERITED, NULL},
    {"invalid both, transactionId", NULL, TP_ZERO_TID, TS1, TP_UPPER, TS2, "tx-42", NULL,
     "tx-42", CD_OPID_TRANSACTION_ID, NULL},
    {"transactionId of 128 four-byte characters", NULL, NULL, NULL, NULL, NULL, TX128, NULL,
     TX128, CD_OPID_TRANSACTION_ID, NULL},
    {"invalid both, UUID liveWorkItemId", UUID_UPPER, TP_UPPER, TS1, TP_LONG, NULL, NULL, NULL,
     UUID_HEX, CD_OPID_LIVE_WORK_ITEM, NULL},
    {"lower-case UUID", UUID_LOWER, NULL, NULL, NULL, NULL, NULL, NULL, UUID_HEX,
     CD_OPID_LIVE_WORK_ITEM, NULL},
    {"LWI-12345", "LWI-12345", NULL, NULL, NULL, NULL, NULL, NULL,
     "651388525709c40529383bf893119836", CD_OPID_LIVE_WORK_ITEM, NULL},
    {"chat:abc", "chat:abc", NULL, NULL, NULL, NULL, NULL, NULL,
     "2106a100a540a3c8855336b04f6127f3", CD_OPID_LIVE_WORK_ITEM, NULL},
    {"128 characters", lwi_128, NULL, NULL, NULL, NULL, NULL, NULL,
     "f0193d10cc61744cda1e7cbe8dd37474", CD_OPID_LIVE_WORK_ITEM, NULL},
    {"non-ASCII", LWI_NON_ASCII, NULL, NULL, NULL, NULL, NULL, NULL,
     "912594a27ad53918d96a28494f7f3be2", CD_OPID_LIVE_WORK_ITEM, NULL},
};

static void test_tag_event(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(opid_cases); i++) {
        const opid_case_t *oc = &opid_cases[i];
        const char *row = oc->name;
        char *extra = fmt("%s%s%s%s%s%s%s%s%s", oc->body_tp ? ",\"traceparent\":\"" : "",
                          oc->body_tp ? oc->body_tp : "", oc->body_tp ? "\"" : "",
                          oc->body_ts ? ",\"tracestate\":\"" : "",
                          oc->body_ts ? oc->body_ts : "", oc->body_ts ? "\"" : "",
                          oc->tx ? ",\"transactionId\":\"" : "", oc->tx ? oc->tx : "",
                          oc->tx ? "\"" : "");
        const ev_t e = {.id = "e1", .scenario = QA, .status = "Started", .lwi = oc->lwi,
                        .extra = extra, .hdr_tp = oc->hdr_tp, .hdr_ts = oc->hdr_ts};
        cd_batch_t b;
        assert_int_equal(cd_batch_init(&b, 1), CD_OK);
        cd_record_t *rec = push_ev(&b, &e);
        free(extra);

        /* stale tags from an earlier use of the record are replaced */
        memset(&rec->tags, 0x5a, sizeof(rec->tags));
        rec->tags.hex[sizeof(rec->tags.hex) - 1] = '\0';
        cd_tag_event(rec, oc->inherited);

        CHECK_STR(oc->want_id, rec->tags.operation_id);
        CHECK_STR(cd_opid_source_name(oc->want_source), cd_opid_source_name(rec->tags.source));
        CHECK_STR(oc->want_ts, rec->tags.tracestate);
        switch (oc->want_source) {
        case CD_OPID_TRACEPARENT_HEADER:
            assert_ptr_equal(rec->tags.traceparent, rec->header_traceparent);
            if (oc->want_ts)
                assert_ptr_equal(rec->tags.tracestate, rec->header_tracestate);
            break;
        case CD_OPID_TRACEPARENT_BODY:
            assert_ptr_equal(rec->tags.traceparent, rec->event.traceparent);
            if (oc->want_ts)
                assert_ptr_equal(rec->tags.tracestate, rec->event.tracestate);
            break;
        default:
            CHECK_STR(NULL, rec->tags.traceparent);
            CHECK_STR(NULL, rec->tags.tracestate);
        }
        cd_batch_fini(&b);
    }
}

/* Through cd_tagger_apply: what each event gets, what the conversation keeps. */
typedef struct want_tag {
    const char *id; /* "" for a duplicate: not tagged */
    cd_opid_source_t source;
    const char *tracestate;
} want_tag_t;

typedef struct opseq_case {
    const char *name;
    const char *preset; /* a stored conversation LWI with this operation_Id */
    ev_t ev[6];
    want_tag_t want[6];
    const char *conv_op[2][2]; /* {liveWorkItemId, its operation_Id at the end} */
    size_t split;           /* > 0: the first `split` events in one batch, the rest in another */
} opseq_case_t;

#define TXE(i, sc, t, tx) {.id = i, .scenario = sc, .status = "Started", .t_ms = t, \
                           .extra = ",\"transactionId\":\"" tx "\""}
#define BODYTP(i, t, tp) {.id = i, .scenario = QA, .status = "Started", .t_ms = t, \
                          .extra = ",\"traceparent\":\"" tp "\",\"tracestate\":\"" TS2 "\""}

static const opseq_case_t opseq_cases[] = {
    {.name = "the first transactionId is kept; later ones inherit it",
     NULL,
     {TXE("e1", QA, 0, "tx-1"), TXE("e2", AA, 1000, "tx-2"), S("e3", CI, 2000)},
     {{.id = "tx-1", CD_OPID_TRANSACTION_ID},
      {.id = "tx-1", CD_OPID_INHERITED},
      {.id = "tx-1", CD_OPID_INHERITED}},
     {{LWI, "tx-1"}}},
    {.name = "derived first; a later transactionId inherits it",
     NULL,
     {{.id = "e1", .scenario = QA, .status = "Started", .lwi = "LWI-12345"},
      {.id = "e2", .scenario = QA, .status = "Completed", .t_ms = 10, .lwi = "LWI-12345",
       .extra = ",\"transactionId\":\"tx-9\""}},
     {{.id = "651388525709c40529383bf893119836", CD_OPID_LIVE_WORK_ITEM},
      {.id = "651388525709c40529383bf893119836", CD_OPID_INHERITED}},
     {{"LWI-12345", "651388525709c40529383bf893119836"}}},
    {.name = "a body traceparent first; a later event's own does not change the conversation's",
     NULL,
     {BODYTP("e1", 0, TP1), TXE("e2", AA, 1000, "tx-2"),
      {.id = "e3", .scenario = AA, .status = "Completed", .t_ms = 2000, .hdr_tp = TP2,
       .hdr_ts = TS1},
      S("e4", CI, 3000)},
     {{.id = TID1, CD_OPID_TRACEPARENT_BODY, TS2},
      {.id = TID1, CD_OPID_INHERITED},
      {.id = TID2, CD_OPID_TRACEPARENT_HEADER, TS1},
      {.id = TID1, CD_OPID_INHERITED}},
     {{LWI, TID1}}},
    {.name = "an invalid traceparent with a transactionId first, a valid one later",
     NULL,
     {{.id = "e1", .scenario = QA, .status = "Started", .hdr_tp = TP_UPPER, .hdr_ts = TS1,
       .extra = ",\"traceparent\":\"" TP_FF "\",\"transactionId\":\"tx-1\""},
      BODYTP("e2", 1000, TP2),
      {.id = "e3", .scenario = QA, .status = "Completed", .t_ms = 2000, .hdr_tp = TP_ZERO_TID}},
     {{.id = "tx-1", CD_OPID_TRANSACTION_ID},
      {.id = TID2, CD_OPID_TRACEPARENT_BODY, TS2},
      {.id = "tx-1", CD_OPID_INHERITED}},
     {{LWI, "tx-1"}}},
    {.name = "a duplicate does not give the conversation its operation_Id",
     NULL,
     {{.id = "e1", .scenario = QA, .status = "Started", .hdr_tp = TP1, .dup = true},
      TXE("e2", QA, 1000, "tx-2")},
     {{.id = ""}, {.id = "tx-2", CD_OPID_TRANSACTION_ID}},
     {{LWI, "tx-2"}}},
    {.name = "inheritance stays within the conversation",
     NULL,
     {TXE("a1", QA, 0, "tx-a"),
      {.id = "b1", .scenario = QA, .status = "Started", .lwi = LWI2},
      {.id = "b2", .scenario = QA, .status = "Completed", .t_ms = 5, .lwi = LWI2,
       .extra = ",\"transactionId\":\"tx-b\""},
      S("a2", AA, 10)},
     {{.id = "tx-a", CD_OPID_TRANSACTION_ID},
      {.id = "1eef1854fea7188bde49ca0ec811fb0c", CD_OPID_LIVE_WORK_ITEM},
      {.id = "1eef1854fea7188bde49ca0ec811fb0c", CD_OPID_INHERITED},
      {.id = "tx-a", CD_OPID_INHERITED}},
     {{LWI, "tx-a"}, {LWI2, "1eef1854fea7188bde49ca0ec811fb0c"}}},
    {.name = "the first event to arrive gives it, not the earliest in time",
     NULL,
     {TXE("late", QA, 9000, "tx-late"), TXE("early", AA, 0, "tx-early")},
     {{.id = "tx-late", CD_OPID_TRANSACTION_ID}, {.id = "tx-late", CD_OPID_INHERITED}},
     {{LWI, "tx-late"}}},
    {.name = "across batches",
     NULL,
     {TXE("e1", QA, 0, "tx-1"), TXE("e2", QA, 1000, "tx-2"), S("e3", AA, 2000)},
     {{.id = "tx-1", CD_OPID_TRANSACTION_ID},
      {.id = "tx-1", CD_OPID_INHERITED},
      {.id = "tx-1", CD_OPID_INHERITED}},
     {{LWI, "tx-1"}},
     1},
    {.name = "a stored conversation's operation_Id is inherited",
     "op-stored",
     {TXE("e1", QA, 0, "tx-1"), BODYTP("e2", 1000, TP1), S("e3", AA, 2000)},
     {{.id = "op-stored", CD_OPID_INHERITED},
      {.id = TID1, CD_OPID_TRACEPARENT_BODY, TS2},
      {.id = "op-stored", CD_OPID_INHERITED}},
     {{LWI, "op-stored"}}},
};

static void test_operation_id_in_conversation(void **state)
{
    (void)state;
    static const cd_tagger_conf_t defaults = {0};
    for (size_t k = 0; k < ARRAY_LEN(opseq_cases); k++) {
        const opseq_case_t *oc = &opseq_cases[k];
        const char *row = oc->name;
        size_t n = count_events(oc->ev, ARRAY_LEN(oc->ev));
        cd_tag_state_t st;
        cd_tag_state_init(&st, SIZE_MAX);
        if (oc->preset) {
            cd_conversation_t *c = cd_tag_state_add(&st, LWI);
            assert_non_null(c);
            c->stored = true;
            c->operation_id = strdup(oc->preset);
            c->organization_id = strdup(ORG);
            c->channel_type = strdup("livechat");
            c->first_us = c->last_us = base_us;
            c->events = 1;
        }
        size_t split = oc->split ? oc->split : n;
        for (size_t part = 0; part < 2; part++) {
            size_t from = part ? split : 0, to = part ? n : split;
            if (from == to)
                continue;
            const ev_t *p[6];
            for (size_t i = from; i < to; i++)
                p[i - from] = &oc->ev[i];
            cd_batch_t b;
            cd_err_t err = {{0}};
            build_batch(&b, p, to - from);
            assert_int_equal(cd_tagger_apply(&defaults, &b, &st, &err), CD_OK);
            for (size_t i = from; i < to; i++) {
                const cd_tags_t *t = &b.records[i - from].tags;
                const want_tag_t *w = &oc->want[i];
                char what[256];
                snprintf(what, sizeof(what), "%s, event %s", row, oc->ev[i].id);
                const char *row = what;
                CHECK_STR(w->id, t->operation_id ? t->operation_id : ""); /* "": untagged */
                CHECK_STR(cd_opid_source_name(w->source), cd_opid_source_name(t->source));
                CHECK_STR(w->tracestate, t->tracestate);
            }
            cd_batch_fini(&b);
        }
        size_t convs = 0;
        for (size_t j = 0; j < 2 && oc->conv_op[j][0]; j++, convs++) {
            const cd_conversation_t *c = cd_tag_state_find(&st, oc->conv_op[j][0]);
            if (!c)
                fail_msg("%s: no conversation %s", row, oc->conv_op[j][0]);
            CHECK_STR(oc->conv_op[j][1], c->operation_id);
        }
        CHECK_INT(convs, st.count);
        cd_tag_state_fini(&st);
    }
}

/* ------------------------------------------------------------------------ */
/* 4. The conversation row */

#define NOT INT64_MIN

typedef struct conv_case {
    const char *name;
    ev_t ev[8];
    long long events, started, completed, failed, unknown;
    int64_t first_ms, last_ms;
    const char *outcome;
    int64_t outcome_ms;
    int64_t closed_ms; /* NOT: none */
    const char *org, *channel;
} conv_case_t;

#define EBC "ConversationEndedByCustomer"
#define EBA "ConversationEndedByAgent"
#define EBV "ConversationEndedByVirtualAgent"
#define ABC "ConversationAbandonedByCustomer"
#define FCS "ConversationForceClosedBySupervisor"
#define CC "ConversationClosed"

static const conv_case_t conv_cases[] = {
    {"a whole conversation",
     {S("i1", "ConversationInitialized", 0), C("i2", "ConversationInitialized", 1000),
      S("q1", QA, 2000), C("q2", QA, 3000), C("end", EBC, 5000), C("cl", CC, 6000)},
     6, 2, 4, 0, 0, 0, 6000, EBC, 5000, 6000, ORG, "livechat"},
    {"the earliest ending wins",
     {C("a", EBA, 5000), C("b", EBC, 4000), C("c", FCS, 4500)},
     3, 0, 3, 0, 0, 4000, 5000, EBC, 4000, NOT, ORG, "livechat"},
    {"a failed ending counts",
     {F("a", ABC, 3000), C("b", EBA, 3500)},
     2, 0, 1, 1, 0, 3000, 3500, ABC, 3000, NOT, ORG, "livechat"},
    {"a started ending does not count",
     {S("a", EBV, 1000), S("b", EBA, 500)},
     2, 2, 0, 0, 0, 500, 1000, NULL, 0, NOT, ORG, "livechat"},
    {"a started ending earlier than the completed one",
     {S("a", EBV, 1000), C("b", EBA, 9000), S("c", EBC, 2000)},
     3, 2, 1, 0, 0, 1000, 9000, EBA, 9000, NOT, ORG, "livechat"},
    {"closing scenarios are not outcomes",
     {C("a", "AgentSessionClosed", 1000), C("b", CC, 2000)},
     2, 0, 2, 0, 0, 1000, 2000, NULL, 0, 2000, ORG, "livechat"},
    {"the earliest ConversationClosed end",
     {C("a", CC, 9000), F("b", CC, 7000), S("c", CC, 1000), C("d", CC, 8000)},
     4, 1, 2, 1, 0, 1000, 9000, NULL, 0, 7000, ORG, "livechat"},
    {"aliases",
     {C("a", "BotChatEnd", 3000), C("b", "SupervisorForceCloseConversation", 4000),
      C("c", "ConversationClose", 5000), C("d", "CustomerDisconnect", 6000)},
     4, 0, 4, 0, 0, 3000, 6000, EBV, 3000, 5000, ORG, "livechat"},
    {"aliases, the force close first",
     {C("a", "BotChatEnd", 3000), F("b", "SupervisorForceClosedConversation", 2999),
      C("c", "ConversationClose", 5000), C("d", "CSREndedConversation", 1000)},
     4, 0, 3, 1, 0, 1000, 5000, EBA, 1000, 5000, ORG, "livechat"},
    {"unknown scenarios are counted",
     {S("a", "MyStep", 100), C("b", "MyStep", 200), C("c", EBC, 300),
      F("d", "conversationclosed", 400)},
     4, 1, 2, 1, 3, 100, 400, EBC, 300, NOT, ORG, "livechat"},
    {"first and last, whatever the order",
     {S("a", QA, 5000), S("b", AA, 1000), C("c", CI, 9000), C("d", QA, 3000),
      C("e", AA, -2000)},
     5, 2, 3, 0, 0, -2000, 9000, NULL, 0, NOT, ORG, "livechat"},
    {"organization and channel of the first event",
     {{.id = "a", .scenario = QA, .status = "Started", .t_ms = 0},
      {.id = "b", .scenario = QA, .status = "Completed", .t_ms = 1000, .org = ORG2,
       .channel = "voice"}},
     2, 1, 1, 0, 0, 0, 1000, NULL, 0, NOT, ORG, "livechat"},
    {"two endings at the same instant",
     {C("a", EBC, 5000), C("b", EBA, 5000), C("c", CC, 6000), F("d", CC, 6000), S("e", QA, 0)},
     5, 1, 3, 1, 0, 0, 6000, EBA "|" EBC, 5000, 6000, ORG, "livechat"},
    {"three endings at the same instant, one earlier started",
     {C("a", ABC, 5000), F("b", FCS, 5000), C("c", EBV, 5000), S("d", EBC, 4000)},
     4, 1, 2, 1, 0, 4000, 5000, ABC "|" FCS "|" EBV, 5000, NOT, ORG, "livechat"},
    {"duplicates and rejects are not counted",
     {C("a", EBA, 5000), CDUP("b", EBC, 1000), BAD("x"), CDUP("c", CC, 500), S("d", QA, 7000)},
     2, 1, 1, 0, 0, 5000, 7000, EBA, 5000, NOT, ORG, "livechat"},
};

static void check_conv(const char *row, const conv_case_t *cc, const cd_tag_state_t *st,
                       bool first_event_fields, char tie[64])
{
    const cd_conversation_t *c = cd_tag_state_find(st, LWI);
    if (!c)
        fail_msg("%s: no conversation", row);
    CHECK_INT(1, st->count);
    CHECK_INT(cc->events, c->events);
    CHECK_INT(cc->started, c->started);
    CHECK_INT(cc->completed, c->completed);
    CHECK_INT(cc->failed, c->failed);
    CHECK_INT(cc->unknown, c->unknown_scenarios);
    CHECK_INT(base_us + cc->first_ms * 1000, c->first_us);
    CHECK_INT(base_us + cc->last_ms * 1000, c->last_us);
    if (cc->outcome && strchr(cc->outcome, '|')) {
        /* A tie: either name, as long as every order gives the same one. */
        size_t k = c->outcome ? strlen(c->outcome) : 0;
        const char *at = c->outcome ? strstr(cc->outcome, c->outcome) : NULL;
        if (!at || (at != cc->outcome && at[-1] != '|') || (at[k] != '|' && at[k] != '\0'))
            fail_msg("%s: outcome %s is not one of %s", row, c->outcome ? c->outcome : "(null)",
                     cc->outcome);
        if (!tie[0])
            snprintf(tie, 64, "%s", c->outcome);
        else if (strcmp(tie, c->outcome) != 0)
            fail_msg("%s: outcome %s, another order gave %s", row, c->outcome, tie);
    } else {
        CHECK_STR(cc->outcome, c->outcome);
    }
    if (cc->outcome)
        CHECK_INT(base_us + cc->outcome_ms * 1000, c->outcome_us);
    CHECK_INT(cc->closed_ms == NOT ? CD_NO_TIME : base_us + cc->closed_ms * 1000, c->closed_us);
    if (first_event_fields) {
        CHECK_STR(cc->org, c->organization_id);
        CHECK_STR(cc->channel, c->channel_type);
    }
}

static void test_conversation_row(void **state)
{
    (void)state;
    static const cd_tagger_conf_t defaults = {0};
    size_t orders = 0;
    for (size_t k = 0; k < ARRAY_LEN(conv_cases); k++) {
        const conv_case_t *cc = &conv_cases[k];
        size_t n = count_events(cc->ev, ARRAY_LEN(cc->ev));
        size_t perm[8];
        for (size_t i = 0; i < n; i++)
            perm[i] = i;
        bool given_order = true;
        char tie[64] = "";
        /* Every arrival order gives the same counts, times and outcome. */
        do {
            const ev_t *p[8];
            char row[200];
            int off = snprintf(row, sizeof(row), "%s, order", cc->name);
            for (size_t i = 0; i < n; i++) {
                p[i] = &cc->ev[perm[i]];
                off += snprintf(row + off, sizeof(row) - (size_t)off, " %s", p[i]->id);
            }
            cd_tag_state_t st;
            cd_tag_state_init(&st, SIZE_MAX);
            apply_ptrs(row, &defaults, &st, p, n);
            check_conv(row, cc, &st, given_order, tie);
            cd_tag_state_fini(&st);
            given_order = false;
            orders++;
        } while (next_permutation(perm, n));
    }
    assert_true(orders > 1000);
}

/* A stored conversation: the new events update its row as if it had all
 * arrived in one batch. */
static void test_conversation_row_stored(void **state)
{
    (void)state;
    static const cd_tagger_conf_t defaults = {0};
    static const struct {
        const char *name;
        const char *outcome;
        int64_t outcome_ms, closed_ms;
        ev_t ev[3];
        const char *want_outcome;
        int64_t want_outcome_ms, want_closed_ms, want_first_ms, want_last_ms;
    } rows[] = {
        {"an earlier ending replaces the stored one", EBA, 9000, NOT,
         {C("a", EBC, 4000)}, EBC, 4000, NOT, 0, 9000},
        {"a later ending does not", EBA, 1000, NOT, {C("a", EBC, 4000)}, EBA, 1000, NOT, 0, 9000},
        {"a first ending", NULL, 0, NOT, {F("a", ABC, 4000)}, ABC, 4000, NOT, 0, 9000},
        {"an event after the last", NULL, 0, NOT, {S("a", QA, 9500)}, NULL, 0, NOT, 0, 9500},
        {"an earlier close replaces the stored one", NULL, 0, 8000,
         {C("a", CC, 6000), S("b", CC, 100)}, NULL, 0, 6000, 0, 9000},
        {"a later close does not", NULL, 0, 8000, {C("a", CC, 8500)}, NULL, 0, 8000, 0, 9000},
        {"an event before the first", NULL, 0, NOT, {S("a", QA, -500)}, NULL, 0, NOT, -500, 9000},
    };
    for (size_t k = 0; k < ARRAY_LEN(rows); k++) {
        const char *row = rows[k].name;
        cd_tag_state_t st;
        cd_tag_state_init(&st, SIZE_MAX);
        cd_conversation_t *c = cd_tag_state_add(&st, LWI);
        assert_non_null(c);
        c->stored = true;
        c->organization_id = strdup(ORG2);
        c->channel_type = strdup("voice");
        c->operation_id = strdup("op");
        c->first_us = base_us;
        c->last_us = base_us + 9000 * 1000;
        c->outcome = rows[k].outcome ? strdup(rows[k].outcome) : NULL;
        c->outcome_us = rows[k].outcome ? base_us + rows[k].outcome_ms * 1000 : CD_NO_TIME;
        c->closed_us = rows[k].closed_ms == NOT ? CD_NO_TIME : base_us + rows[k].closed_ms * 1000;
        c->events = 10;
        c->completed = 7;
        c->started = 3;
        size_t n = count_events(rows[k].ev, ARRAY_LEN(rows[k].ev));
        apply_events(row, &defaults, &st, rows[k].ev, n);
        c = cd_tag_state_find(&st, LWI);
        CHECK_INT(10 + (long long)n, c->events);
        CHECK_STR(rows[k].want_outcome, c->outcome);
        if (rows[k].want_outcome)
            CHECK_INT(base_us + rows[k].want_outcome_ms * 1000, c->outcome_us);
        CHECK_INT(rows[k].want_closed_ms == NOT ? CD_NO_TIME
                                                : base_us + rows[k].want_closed_ms * 1000,
                  c->closed_us);
        CHECK_INT(base_us + rows[k].want_first_ms * 1000, c->first_us);
        CHECK_INT(base_us + rows[k].want_last_ms * 1000, c->last_us);
        CHECK_STR(ORG2, c->organization_id); /* the stored row's, from its first event */
        CHECK_STR("voice", c->channel_type);
        CHECK_STR("op", c->operation_id);
        assert_true(c->dirty);
        cd_tag_state_fini(&st);
    }
}

/* ------------------------------------------------------------------------ */

static void test_run_state_names(void **state)
{
    (void)state;
    for (int s = CD_RUN_OPEN; s <= CD_RUN_UNPAIRED; s++)
        assert_int_equal(cd_run_state_parse(cd_run_state_name((cd_run_state_t)s)), s);
    assert_int_equal(cd_run_state_parse("stale"), -1);
}

static int group_setup(void **state)
{
    (void)state;
    cd_err_t err;
    cd_event_limits_init(&limits);
    return cd_time_parse_rfc3339("2026-11-22T10:00:00.000Z", 3, &base_us, &err) == CD_OK ? 0
                                                                                          : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pairing),
        cmocka_unit_test(test_split_batch_same_runs),
        cmocka_unit_test(test_stale),
        cmocka_unit_test(test_stale_after_ms),
        cmocka_unit_test(test_stale_across_batches),
        cmocka_unit_test(test_stale_loaded_run),
        cmocka_unit_test(test_operation_id_from_lwi),
        cmocka_unit_test(test_tag_event),
        cmocka_unit_test(test_operation_id_in_conversation),
        cmocka_unit_test(test_conversation_row),
        cmocka_unit_test(test_conversation_row_stored),
        cmocka_unit_test(test_run_state_names),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
