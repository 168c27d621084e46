/*
 * sim.c -- deterministic generator of realistic conversations; see sim.h.
 *
 * A conversation is planned in full before its first event goes out: the flow
 * it follows, who takes part, every timestamp and every identifier.  All the
 * randomness is spent while planning, so rendering a planned event as JSON is
 * a pure function of that event.  Between the two, the disorder stage turns
 * the planned events into the messages that go out: it may send an event
 * late, out of order, twice, under an alias of its scenario or broken.  It
 * draws from a stream of its own, so planning and therefore the events
 * themselves are the same whatever disorder is configured, and with none
 * configured the messages are the planned events in order.
 *
 * Random numbers come from xoshiro256**, seeded through splitmix64.  Each
 * conversation has a generator of its own, seeded from the run's seed and the
 * conversation's index alone, so conversation N comes out the same whatever
 * limit cuts the run short; arrival times and the pools of organizations,
 * agents and bots come from two further streams.  Durations and arrival gaps
 * go through exp() and log(), so the output is byte for byte reproducible on
 * a given C library, though not promised across C libraries.
 */
#include "convdiag/sim.h"
#include "convdiag/buf.h"
#include "convdiag/common.h"
#include "convdiag/json.h"
#include "convdiag/timeutil.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Random numbers
 * ------------------------------------------------------------------------ */

typedef struct rng {
    uint64_t s[4];
} rng_t;

#define GOLDEN_GAMMA 0x9e3779b97f4a7c15ULL

/* Stream numbers for what is not a conversation; conversations use their
 * index, which never gets near these, and the disorder of conversation i
 * uses STREAM_DISORDER(i). */
#define STREAM_POOLS       UINT64_MAX
#define STREAM_ARRIVALS    (UINT64_MAX - 1)
#define STREAM_DISORDER(i) ((1ULL << 63) | (i))

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t splitmix64(uint64_t *state)
{
    return mix64(*state += GOLDEN_GAMMA);
}

/*
 * Seeds one stream of the run.  Hashing the stream number, rather than adding
 * it, keeps neighbouring streams from being shifted copies of each other.
 */
static void rng_seed(rng_t *r, uint64_t seed, uint64_t stream)
{
    uint64_t sm = seed ^ mix64(stream + GOLDEN_GAMMA);

    for (size_t i = 0; i < CD_ARRAY_LEN(r->s); i++)
        r->s[i] = splitmix64(&sm);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256** by Blackman and Vigna. */
static uint64_t rng_next(rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1). */
static double rng_unit(rng_t *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, n); the bias of the multiply-shift is below n / 2^32. */
static uint32_t rng_below(rng_t *r, uint32_t n)
{
    return (uint32_t)(((rng_next(r) >> 32) * n) >> 32);
}

static bool rng_chance(rng_t *r, double p)
{
    return rng_unit(r) < p;
}

/*
 * A duration in [lo, hi] milliseconds, log-uniform: waits and handling times
 * are skewed, many short ones and a few long ones, which a flat draw would
 * not show.
 */
static int64_t rng_span_ms(rng_t *r, int64_t lo, int64_t hi)
{
    double v = exp(log((double)lo) + rng_unit(r) * (log((double)hi) - log((double)lo)));
    int64_t ms = (int64_t)(v + 0.5);

    return ms < lo ? lo : ms > hi ? hi : ms;
}

/* Exponentially distributed, as the gaps between independent arrivals are. */
static double rng_exponential(rng_t *r, double mean)
{
    return -mean * log1p(-rng_unit(r));
}

/* Index of an entry of a table, drawn with probability proportional to the
 * weight each entry holds at byte offset `off`, entries `stride` bytes apart. */
static size_t pick_index(rng_t *r, const void *table, size_t n, size_t stride, size_t off)
{
    const char *base = table;
    uint32_t total = 0;

    for (size_t i = 0; i < n; i++)
        total += *(const uint32_t *)(base + i * stride + off);

    uint32_t x = rng_below(r, total);
    for (size_t i = 0; i < n; i++) {
        uint32_t w = *(const uint32_t *)(base + i * stride + off);
        if (x < w)
            return i;
        x -= w;
    }
    return n - 1; /* not reached: x < total */
}

#define PICK(r, table)                                                  \
    pick_index((r), (table), CD_ARRAY_LEN(table), sizeof((table)[0]), \
               (size_t)((const char *)&(table)[0].weight - (const char *)&(table)[0]))

/* ------------------------------------------------------------------------
 * Identifiers
 * ------------------------------------------------------------------------ */

/* A version 4 UUID is never all zero, so all zero stands for "none". */
typedef struct sim_uuid {
    uint64_t hi, lo;
} sim_uuid_t;

#define UUID_LEN 36

static sim_uuid_t rng_uuid(rng_t *r)
{
    sim_uuid_t u;

    u.hi = (rng_next(r) & ~0xf000ULL) | 0x4000ULL;       /* version 4 */
    u.lo = (rng_next(r) & ~(3ULL << 62)) | (2ULL << 62); /* RFC 4122 variant */
    return u;
}

static bool uuid_is_nil(const sim_uuid_t *u)
{
    return u->hi == 0 && u->lo == 0;
}

/* W3C trace context forbids all-zero ids. */
static uint64_t rng_nonzero(rng_t *r)
{
    uint64_t v;

    do
        v = rng_next(r);
    while (v == 0);
    return v;
}

static const char hex_digits[] = "0123456789abcdef";

/* Writes the low `digits` nibbles of v, most significant first, lower case. */
static char *put_hex(char *out, uint64_t v, int digits)
{
    for (int i = digits - 1; i >= 0; i--)
        *out++ = hex_digits[(v >> (i * 4)) & 0xf];
    return out;
}

/* The 36 characters of the canonical form; returns the end, unterminated. */
static char *uuid_text(char *out, const sim_uuid_t *u)
{
    char *o = out;

    o = put_hex(o, u->hi >> 32, 8);
    *o++ = '-';
    o = put_hex(o, u->hi >> 16, 4);
    *o++ = '-';
    o = put_hex(o, u->hi, 4);
    *o++ = '-';
    o = put_hex(o, u->lo >> 48, 4);
    *o++ = '-';
    return put_hex(o, u->lo, 12);
}

/* ------------------------------------------------------------------------
 * Catalogue: scenarios, participants, channels, queues
 * ------------------------------------------------------------------------ */

typedef enum scenario {
    SC_INITIALIZED,
    SC_IDENTIFIED,
    SC_BOT_ASSIGNED,
    SC_BOT_ENDED,
    SC_BOT_ESCALATED,
    SC_CLASSIFIED,
    SC_QUEUED,
    SC_ACCEPTED,
    SC_REJECTED,
    SC_TIMED_OUT,
    SC_REJOINED,
    SC_SELF_ASSIGNED,
    SC_ENDED_BY_CUSTOMER,
    SC_ENDED_BY_AGENT,
    SC_SESSION_CLOSED,
    SC_ABANDONED,
    SC_FORCE_CLOSED,
    SC_CLOSED,
} scenario_t;

/* Canonical names, and how long each step takes when nothing is unusual. */
static const struct {
    const char *name;
    int64_t min_ms, max_ms;
} scenarios[] = {
    [SC_INITIALIZED] = {"ConversationInitialized", 100, 800},
    [SC_IDENTIFIED] = {"CustomerIdentified", 50, 1500},
    [SC_BOT_ASSIGNED] = {"VirtualAgentAssigned", 500, 2000},
    [SC_BOT_ENDED] = {"ConversationEndedByVirtualAgent", 100, 600},
    [SC_BOT_ESCALATED] = {"VirtualAgentEscalatedToHumanAgent", 200, 1500},
    [SC_CLASSIFIED] = {"DemandClassification", 50, 800},
    [SC_QUEUED] = {"QueueAssignment", 1000, 60000},
    [SC_ACCEPTED] = {"AgentAccepted", 2000, 30000},
    [SC_REJECTED] = {"AgentRejected", 2000, 20000},
    /* The offer expires after the configured notification timeout. */
    [SC_TIMED_OUT] = {"AgentAcceptanceTimedOut", 59000, 61500},
    [SC_REJOINED] = {"AgentRejoined", 1000, 8000},
    [SC_SELF_ASSIGNED] = {"AgentSelfAssignment", 500, 3000},
    [SC_ENDED_BY_CUSTOMER] = {"ConversationEndedByCustomer", 100, 800},
    [SC_ENDED_BY_AGENT] = {"ConversationEndedByAgent", 100, 800},
    [SC_SESSION_CLOSED] = {"AgentSessionClosed", 200, 2000},
    [SC_ABANDONED] = {"ConversationAbandonedByCustomer", 100, 600},
    [SC_FORCE_CLOSED] = {"ConversationForceClosedBySupervisor", 200, 1500},
    [SC_CLOSED] = {"ConversationClosed", 50, 500},
};

/* Older names upstream systems still send, as the contract lists them: at
 * most two per scenario, and every scenario but CustomerIdentified has one. */
#define MAX_ALIASES 2

static const char *const aliases[][MAX_ALIASES] = {
    [SC_INITIALIZED] = {"CreateConversation", "ConversationCreated"},
    [SC_IDENTIFIED] = {NULL},
    [SC_BOT_ASSIGNED] = {"CopilotAgentAssignedToConversation"},
    [SC_BOT_ENDED] = {"BotChatEnd"},
    [SC_BOT_ESCALATED] = {"BotEscalationToHuman", "CopilotAgentEscalationToCSR"},
    [SC_CLASSIFIED] = {"Classification"},
    [SC_QUEUED] = {"RTQ", "RouteToQueue"},
    [SC_ACCEPTED] = {"AgentAccept", "CSRAccepted"},
    [SC_REJECTED] = {"AgentReject", "CSRRejected"},
    [SC_TIMED_OUT] = {"AgentTimeout", "CSRNotificationTimeout"},
    [SC_REJOINED] = {"CSRRejoined"},
    [SC_SELF_ASSIGNED] = {"AgentPickAssignment", "CSRPickedConversation"},
    [SC_ENDED_BY_CUSTOMER] = {"CustomerEndConversation", "CustomerEndedConversation"},
    [SC_ENDED_BY_AGENT] = {"AgentEndConversation", "CSREndedConversation"},
    [SC_SESSION_CLOSED] = {"AgentCloseSession", "CSRClosedSession"},
    [SC_ABANDONED] = {"CustomerDisconnect", "CustomerDisconnected"},
    [SC_FORCE_CLOSED] = {"SupervisorForceCloseConversation",
                         "SupervisorForceClosedConversation"},
    [SC_CLOSED] = {"ConversationClose"},
};

_Static_assert(CD_ARRAY_LEN(aliases) == CD_ARRAY_LEN(scenarios), "an alias row per scenario");

static uint32_t alias_count(scenario_t sc)
{
    uint32_t n = 0;

    while (n < MAX_ALIASES && aliases[sc][n])
        n++;
    return n;
}

typedef enum status {
    ST_STARTED,
    ST_COMPLETED,
    ST_FAILED,
} status_t;

static const char *const status_names[] = {
    [ST_STARTED] = "Started",
    [ST_COMPLETED] = "Completed",
    [ST_FAILED] = "Failed",
};

typedef enum participant {
    PT_CUSTOMER,
    PT_SYSTEM,
    PT_VIRTUAL_AGENT,
    PT_HUMAN_AGENT,
    PT_SUPERVISOR,
} participant_t;

static const char *const participant_names[] = {
    [PT_CUSTOMER] = "Customer",
    [PT_SYSTEM] = "System",
    [PT_VIRTUAL_AGENT] = "VirtualAgent",
    [PT_HUMAN_AGENT] = "HumanAgent",
    [PT_SUPERVISOR] = "Supervisor",
};

typedef struct choice {
    const char *name;
    uint32_t weight;
} choice_t;

/* Chat first, then voice and the messaging apps, custom channels last. */
static const choice_t channels[] = {
    {"livechat", 34},
    {"voice", 20},
    {"whatsapp", 12},
    {"sms", 8},
    {"facebook", 5},
    {"teams", 5},
    {"email", 4},
    {"applemessages", 3},
    {"googlebusinessmessages", 2},
    {"line", 2},
    {"wechat", 2},
    {"twitter", 2},
    {"custom", 1},
};

/* Demand classification names the queue.  One name is not ASCII, as queue
 * names in many contact centers are not; the last entry is where demand
 * that could not be classified goes. */
static const choice_t queues[] = {
    {"billing", 30},
    {"technical-support", 25},
    {"orders", 20},
    {"sales", 12},
    {"apr\xc3\xa8s-vente", 8},
    {"general", 5},
};

#define QUEUE_FALLBACK (CD_ARRAY_LEN(queues) - 1)

static const choice_t locales[] = {
    {"en-US", 40}, {"en-GB", 15}, {"de-DE", 12}, {"fr-FR", 12}, {"es-ES", 11}, {"ja-JP", 10},
};

/* A few tenants of unequal size, each with its own staff and bots. */
static const struct {
    uint32_t weight;
    const char *tracestate; /* what their tracing vendor adds, where it does */
} tenants[] = {
    {60, "contoso=region:westeurope"},
    {30, "contoso=region:eastus"},
    {10, "contoso=region:australiaeast"},
};

#define AGENTS_PER_ORG      40
#define BOTS_PER_ORG        3
#define SUPERVISORS_PER_ORG 4

typedef struct org {
    sim_uuid_t id;
    sim_uuid_t agents[AGENTS_PER_ORG];
    sim_uuid_t bots[BOTS_PER_ORG];
    sim_uuid_t supervisors[SUPERVISORS_PER_ORG];
} org_t;

_Static_assert(AGENTS_PER_ORG <= 64, "plan_t.agents_seen is a 64-bit set");

/* ------------------------------------------------------------------------
 * Planned events
 * ------------------------------------------------------------------------ */

/* What all events of one conversation share. */
typedef struct sim_conv {
    uint64_t index;
    sim_uuid_t id;               /* liveWorkItemId */
    sim_uuid_t transaction;      /* nil: the source reports none */
    uint64_t trace_hi, trace_lo; /* W3C trace-id; both zero: untraced */
    uint8_t org, channel, queue, locale;
    uint8_t priority;            /* 1 (urgent) to 3 */
    uint8_t confidence;          /* of the demand classification, percent */
    bool voice;                  /* calls run longer and exchange no messages */
    bool authenticated;
    bool tracestate;
} sim_conv_t;

/* Who performs a step. */
typedef struct actor {
    uint8_t type;       /* participant_t */
    uint8_t user;       /* index in the org's pool of agents, bots or supervisors */
    sim_uuid_t session; /* nil: no sessionId */
} actor_t;

/* Extra dimensions an event may carry, rendered from the conversation. */
typedef enum attr {
    ATTR_NONE,
    ATTR_ENTRY,    /* locale, authenticated */
    ATTR_INTENT,   /* intent, confidence */
    ATTR_QUEUE,    /* queue, priority */
    ATTR_OFFER,    /* queue, offer number */
    ATTR_MESSAGES, /* messages exchanged */
} attr_t;

typedef struct sim_ev {
    sim_conv_t conv;
    sim_uuid_t id;
    int64_t ts_us;
    actor_t who;
    uint64_t span;       /* parent-id of the traceparent; 0: none on this event */
    int64_t duration_ms; /* -1: not reported */
    const char *failure; /* on Failed */
    uint8_t scenario, status, attr;
    uint32_t attr_n;     /* the number ATTR_OFFER and ATTR_MESSAGES report */
} sim_ev_t;

/* A message to send: a planned event and what the disorder stage did to it. */
typedef struct sim_msg {
    sim_ev_t ev;
    uint64_t release;  /* late: goes out just before conversation `release` begins */
    uint32_t order;    /* position of the event in its conversation as planned */
    uint32_t rank;     /* where reordering puts it; see reorder() */
    uint32_t bad_arg;  /* random bits that pick how a malformed message is broken */
    uint8_t flags;     /* CD_SIM_* */
    uint8_t alias;     /* 0: canonical name; n: aliases[scenario][n - 1] */
    uint8_t bad;       /* cd_sim_malformed_t */
    uint8_t reorder;   /* held back behind this many later events of its conversation */
    uint8_t duplicate; /* 0: sent once; n: repeated after n - 1 further messages */
} sim_msg_t;

#define MAX_REORDER 3   /* a message is held back behind at most this many */
#define MAX_DUPLICATE 3 /* sim_msg_t.duplicate is at most this */

/* A growable array of messages. */
typedef struct msg_list {
    sim_msg_t *v;
    size_t n, cap;
} msg_list_t;

struct cd_sim {
    cd_sim_conf_t conf;
    org_t orgs[CD_ARRAY_LEN(tenants)];
    rng_t arrivals;
    double mean_gap_us;
    int64_t next_arrival_us;
    bool disorder; /* some disorder is configured */

    /* The planned events of the conversation being planned, in planned order. */
    sim_ev_t *pending;
    size_t npending, cap;

    /* Messages ready to go, in output order, the next at queue.v[next]; the
     * batch they are assembled in; late messages held back, in the order
     * they were held. */
    msg_list_t queue, batch, held;
    size_t next;

    cd_buf_t json, scratch;
    char key[UUID_LEN + 1], event_id[UUID_LEN + 1];
    uint64_t conversations, events;
    uint64_t flagged[5]; /* messages sent with each CD_SIM_* bit */
    bool failed; /* an allocation failed: the stream has ended */
};

/* ------------------------------------------------------------------------
 * Planning a conversation
 * ------------------------------------------------------------------------ */

typedef struct plan {
    cd_sim_t *sim;
    rng_t rng;
    sim_conv_t conv;
    int64_t now_us;       /* when the next step begins */
    bool sessions;        /* whether this source reports sessionId */
    actor_t customer, system;
    uint64_t agents_seen; /* bit i: agent i already had an offer */
    uint32_t offers;      /* offers made to agents so far */
    sim_ev_t spare;       /* written to instead when the list cannot grow */
} plan_t;

/* A slot for the next event.  On allocation failure the run is marked
 * failed and a scratch slot is returned, so flows need no error paths. */
static sim_ev_t *append(plan_t *p)
{
    cd_sim_t *sim = p->sim;

    if (sim->npending == sim->cap) {
        size_t cap = sim->cap * 2;
        sim_ev_t *grown = realloc(sim->pending, cap * sizeof(*grown));
        if (!grown) {
            sim->failed = true;
            return &p->spare;
        }
        sim->pending = grown;
        sim->cap = cap;
    }
    return &sim->pending[sim->npending++];
}

static sim_ev_t *emit(plan_t *p, scenario_t sc, status_t st, const actor_t *who)
{
    bool first = p->sim->npending == 0;
    sim_ev_t *e = append(p);

    memset(e, 0, sizeof(*e));
    e->conv = p->conv;
    e->id = rng_uuid(&p->rng);
    e->ts_us = p->now_us;
    e->who = *who;
    e->duration_ms = -1;
    e->scenario = (uint8_t)sc;
    e->status = (uint8_t)st;
    /* A traced source stamps its first event; later ones mostly, not always,
     * so that the pipeline's inheritance of operation ids gets exercised. */
    if (p->conv.trace_hi | p->conv.trace_lo) {
        if (first || rng_chance(&p->rng, 0.75))
            e->span = rng_nonzero(&p->rng);
    }
    return e;
}

static void wait_ms(plan_t *p, int64_t lo, int64_t hi)
{
    p->now_us += rng_span_ms(&p->rng, lo, hi) * 1000;
}

/*
 * One run of a scenario: Started now, Completed (or Failed with a reason)
 * dur_ms later.  Returns the closing event, valid until the next one is
 * planned, so that callers can add attributes to it.
 */
static sim_ev_t *run(plan_t *p, scenario_t sc, const actor_t *who, int64_t dur_ms,
                     const char *failure)
{
    emit(p, sc, ST_STARTED, who);
    p->now_us += dur_ms * 1000;

    sim_ev_t *end = emit(p, sc, failure ? ST_FAILED : ST_COMPLETED, who);
    end->failure = failure;
    /* Not every source measures; the pipeline then pairs Started with its end. */
    if (rng_chance(&p->rng, 0.85))
        end->duration_ms = dur_ms;

    /* The next step is picked up after a little processing latency. */
    wait_ms(p, 5, 200);
    return end;
}

/* A run of the usual length that goes well. */
static sim_ev_t *step(plan_t *p, scenario_t sc, const actor_t *who)
{
    int64_t dur_ms = rng_span_ms(&p->rng, scenarios[sc].min_ms, scenarios[sc].max_ms);

    return run(p, sc, who, dur_ms, NULL);
}

static sim_uuid_t new_session(plan_t *p)
{
    sim_uuid_t none = {0, 0};

    return p->sessions ? rng_uuid(&p->rng) : none;
}

/* Each offer goes to somebody not yet offered this conversation. */
static actor_t new_agent(plan_t *p)
{
    actor_t a = {.type = PT_HUMAN_AGENT};

    do
        a.user = (uint8_t)rng_below(&p->rng, AGENTS_PER_ORG);
    while (p->agents_seen & (1ULL << a.user));
    p->agents_seen |= 1ULL << a.user;
    a.session = new_session(p);
    return a;
}

static actor_t new_bot(plan_t *p)
{
    actor_t a = {.type = PT_VIRTUAL_AGENT};

    a.user = (uint8_t)rng_below(&p->rng, BOTS_PER_ORG);
    return a;
}

static actor_t new_supervisor(plan_t *p)
{
    actor_t a = {.type = PT_SUPERVISOR};

    a.user = (uint8_t)rng_below(&p->rng, SUPERVISORS_PER_ORG);
    a.session = new_session(p);
    return a;
}

/* ---- Pieces that flows are made of ---- */

static void begin(plan_t *p)
{
    sim_ev_t *e = step(p, SC_INITIALIZED, &p->customer);

    if (rng_chance(&p->rng, 0.5))
        e->attr = ATTR_ENTRY;

    /* Anonymous visitors are not looked up; a lookup can miss. */
    if (rng_chance(&p->rng, 0.85)) {
        if (rng_chance(&p->rng, 0.05))
            run(p, SC_IDENTIFIED, &p->system, rng_span_ms(&p->rng, 200, 3000),
                "CustomerNotFound");
        else
            step(p, SC_IDENTIFIED, &p->system);
    }
}

static actor_t engage_bot(plan_t *p)
{
    actor_t bot = new_bot(p);

    step(p, SC_BOT_ASSIGNED, &bot);
    return bot;
}

static void classify(plan_t *p)
{
    if (rng_chance(&p->rng, 0.03)) {
        run(p, SC_CLASSIFIED, &p->system, rng_span_ms(&p->rng, 2000, 5000),
            "ClassifierTimeout");
        p->conv.queue = QUEUE_FALLBACK;
        return;
    }

    sim_ev_t *e = step(p, SC_CLASSIFIED, &p->system);
    if (rng_chance(&p->rng, 0.9))
        e->attr = ATTR_INTENT;
}

/* A queue with nobody signed in fails fast; routing tries again after a
 * back-off, at most twice here. */
static void queue_retries(plan_t *p)
{
    for (int tries = 0; tries < 2 && rng_chance(&p->rng, 0.08); tries++) {
        sim_ev_t *e = run(p, SC_QUEUED, &p->system, rng_span_ms(&p->rng, 200, 2000),
                          "NoAgentsAvailable");
        e->attr = ATTR_QUEUE;
        wait_ms(p, 5000, 30000);
    }
}

static void route(plan_t *p)
{
    classify(p);
    queue_retries(p);
    step(p, SC_QUEUED, &p->system)->attr = ATTR_QUEUE;
}

/* An offer to an agent, which ends as the scenario says. */
static void offer(plan_t *p, scenario_t sc, const actor_t *agent)
{
    sim_ev_t *e = step(p, sc, agent);

    p->offers++;
    if (rng_chance(&p->rng, 0.6)) {
        e->attr = ATTR_OFFER;
        e->attr_n = p->offers;
    }
}

static actor_t accept(plan_t *p)
{
    actor_t agent = new_agent(p);

    offer(p, SC_ACCEPTED, &agent);
    return agent;
}

static void talk(plan_t *p)
{
    if (p->conv.voice)
        wait_ms(p, 120000, 1500000);
    else
        wait_ms(p, 60000, 1200000);
}

static void close_conversation(plan_t *p)
{
    step(p, SC_CLOSED, &p->system);
}

/* The customer gives up: the conversation ends without anybody serving it. */
static void abandon(plan_t *p)
{
    step(p, SC_ABANDONED, &p->customer);
    close_conversation(p);
}

/* An agent has the conversation: talk, somebody ends it, wrap-up, close. */
static void serve(plan_t *p, actor_t agent)
{
    talk(p);
    if (rng_chance(&p->rng, 0.06)) {
        /* The agent dropped (network, reload) and came back in a new session. */
        agent.session = new_session(p);
        step(p, SC_REJOINED, &agent);
        talk(p);
    }

    sim_ev_t *e = rng_chance(&p->rng, 0.6) ? step(p, SC_ENDED_BY_CUSTOMER, &p->customer)
                                            : step(p, SC_ENDED_BY_AGENT, &agent);
    if (!p->conv.voice && rng_chance(&p->rng, 0.4)) {
        e->attr = ATTR_MESSAGES;
        e->attr_n = 3 + rng_below(&p->rng, 80);
    }

    wait_ms(p, 5000, 180000);
    step(p, SC_SESSION_CLOSED, &agent);
    close_conversation(p);
}

/* ---- Flows ---- */

/* The bot answers the question and ends the conversation. */
static void flow_bot_resolved(plan_t *p)
{
    begin(p);
    actor_t bot = engage_bot(p);
    wait_ms(p, 30000, 480000);
    step(p, SC_BOT_ENDED, &bot);
    close_conversation(p);
}

/* The bot hands over to a person. */
static void flow_bot_escalated(plan_t *p)
{
    begin(p);
    actor_t bot = engage_bot(p);
    wait_ms(p, 20000, 300000);
    step(p, SC_BOT_ESCALATED, &bot);
    route(p);
    serve(p, accept(p));
}

/* Straight to a queue, the first agent offered accepts. */
static void flow_routed(plan_t *p)
{
    begin(p);
    route(p);
    serve(p, accept(p));
}

/* One or two agents decline before one accepts. */
static void flow_rejected(plan_t *p)
{
    begin(p);
    route(p);
    for (int n = rng_chance(&p->rng, 0.2) ? 2 : 1; n > 0; n--) {
        actor_t agent = new_agent(p);
        offer(p, SC_REJECTED, &agent);
    }
    serve(p, accept(p));
}

/* The first offer expires; another agent accepts, or the customer leaves. */
static void flow_timed_out(plan_t *p)
{
    begin(p);
    route(p);
    actor_t first = new_agent(p);
    offer(p, SC_TIMED_OUT, &first);
    if (rng_chance(&p->rng, 0.65)) {
        serve(p, accept(p));
        return;
    }
    wait_ms(p, 5000, 120000);
    abandon(p);
}

/* The customer leaves while waiting in the queue, sometimes after a bot. */
static void flow_abandoned_in_queue(plan_t *p)
{
    begin(p);
    if (rng_chance(&p->rng, 0.3)) {
        actor_t bot = engage_bot(p);
        wait_ms(p, 20000, 300000);
        step(p, SC_BOT_ESCALATED, &bot);
    }
    classify(p);
    queue_retries(p);
    run(p, SC_QUEUED, &p->system, rng_span_ms(&p->rng, 10000, 300000), "CustomerAbandoned")
        ->attr = ATTR_QUEUE;
    abandon(p);
}

/* The customer leaves in the middle of talking to the bot. */
static void flow_abandoned_with_bot(plan_t *p)
{
    begin(p);
    engage_bot(p);
    wait_ms(p, 10000, 180000);
    abandon(p);
}

/* No bot answers; routing takes over. */
static void flow_bot_unavailable(plan_t *p)
{
    begin(p);
    actor_t bot = new_bot(p);
    run(p, SC_BOT_ASSIGNED, &bot, rng_span_ms(&p->rng, 3000, 10000), "BotUnavailable");
    route(p);
    serve(p, accept(p));
}

/* An agent picks the conversation from the queue. */
static void flow_self_assigned(plan_t *p)
{
    begin(p);
    route(p);
    actor_t agent = new_agent(p);
    step(p, SC_SELF_ASSIGNED, &agent);
    serve(p, agent);
}

/* The conversation stays open far too long and a supervisor closes it. */
static void flow_force_closed(plan_t *p)
{
    begin(p);
    route(p);
    actor_t agent = accept(p);
    wait_ms(p, 900000, 7200000);
    actor_t supervisor = new_supervisor(p);
    step(p, SC_FORCE_CLOSED, &supervisor);
    step(p, SC_SESSION_CLOSED, &agent);
    close_conversation(p);
}

/* Weights in percent of conversations. */
static const struct {
    uint32_t weight;
    void (*plan)(plan_t *p);
} flows[] = {
    {24, flow_bot_resolved},
    {16, flow_bot_escalated},
    {22, flow_routed},
    {7, flow_rejected},
    {6, flow_timed_out},
    {9, flow_abandoned_in_queue},
    {4, flow_abandoned_with_bot},
    {4, flow_bot_unavailable},
    {5, flow_self_assigned},
    {3, flow_force_closed},
};

/* Plans the next conversation into sim->pending; -1 on allocation failure. */
static int plan_conversation(cd_sim_t *sim)
{
    plan_t p = {.sim = sim};
    sim_conv_t *c = &p.conv;

    rng_seed(&p.rng, sim->conf.seed, sim->conversations);
    sim->npending = 0;

    c->index = sim->conversations;
    c->id = rng_uuid(&p.rng);
    c->org = (uint8_t)PICK(&p.rng, tenants);
    c->channel = (uint8_t)PICK(&p.rng, channels);
    c->voice = strcmp(channels[c->channel].name, "voice") == 0;
    c->queue = (uint8_t)PICK(&p.rng, queues);
    c->locale = (uint8_t)PICK(&p.rng, locales);
    c->priority = (uint8_t)(1 + rng_below(&p.rng, 3));
    c->confidence = (uint8_t)(55 + rng_below(&p.rng, 45));
    c->authenticated = rng_chance(&p.rng, 0.4);
    if (rng_chance(&p.rng, 0.3))
        c->transaction = rng_uuid(&p.rng);
    if (rng_chance(&p.rng, 0.3)) {
        do {
            c->trace_hi = rng_next(&p.rng);
            c->trace_lo = rng_next(&p.rng);
        } while ((c->trace_hi | c->trace_lo) == 0);
        c->tracestate = rng_chance(&p.rng, 0.1);
    }

    p.sessions = rng_chance(&p.rng, 0.6);
    p.customer = (actor_t){.type = PT_CUSTOMER, .session = new_session(&p)};
    p.system = (actor_t){.type = PT_SYSTEM};

    p.now_us = sim->next_arrival_us;
    sim->next_arrival_us += (int64_t)(rng_exponential(&sim->arrivals, sim->mean_gap_us) + 0.5);

    flows[PICK(&p.rng, flows)].plan(&p);
    sim->conversations++;
    return sim->failed ? -1 : 0;
}

/* ------------------------------------------------------------------------
 * Rendering
 * ------------------------------------------------------------------------ */

/* A string literal, whose length the compiler knows. */
#define PUT_LIT(b, lit) cd_buf_append((b), "" lit, sizeof(lit) - 1)

/* ,"name": -- every field but the first starts so. */
#define PUT_KEY(b, name) PUT_LIT((b), ",\"" name "\":")

/*
 * Strings from the tables above go through cd_json_put_string.  Every such
 * value is ours and plain (no quote, backslash or control character), but
 * escaping keeps the output valid should a table ever hold one.
 */

/* v in decimal. */
static void put_uint(cd_buf_t *b, uint64_t v)
{
    char tmp[20];
    size_t n = sizeof(tmp);

    do {
        tmp[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    cd_buf_append(b, tmp + n, sizeof(tmp) - n);
}

/*
 * Identifiers and timestamps are digits, hex and punctuation: they need no
 * escaping and are written, quotes included, straight into the buffer.
 */
static void put_uuid(cd_buf_t *b, const sim_uuid_t *u)
{
    char *o = cd_buf_reserve(b, UUID_LEN + 2);

    if (!o)
        return;
    o[0] = '"';
    *uuid_text(o + 1, u) = '"';
    cd_buf_commit(b, UUID_LEN + 2);
}

/* RFC 3339 in UTC with milliseconds: "2026-11-22T10:00:00.123Z". */
static void put_timestamp(cd_buf_t *b, int64_t us)
{
    char *o = cd_buf_reserve(b, CD_TIME_UTC_MAX + 2);

    if (!o)
        return;
    o[0] = '"';
    size_t n = cd_time_write_utc(o + 1, us, 3);
    o[n + 1] = '"';
    cd_buf_commit(b, n + 2);
}

/* Version 00, sampled: "00-<trace-id>-<parent-id>-01". */
static void put_traceparent(cd_buf_t *b, const sim_ev_t *e)
{
    enum { LEN = 57 };
    char *o = cd_buf_reserve(b, LEN);

    if (!o)
        return;
    memcpy(o, "\"00-", 4);
    o = put_hex(o + 4, e->conv.trace_hi, 16);
    o = put_hex(o, e->conv.trace_lo, 16);
    *o++ = '-';
    o = put_hex(o, e->span, 16);
    memcpy(o, "-01\"", 4);
    cd_buf_commit(b, LEN);
}

static void put_attributes(cd_buf_t *b, const sim_ev_t *e)
{
    const sim_conv_t *c = &e->conv;

    PUT_KEY(b, "attributes");
    switch ((attr_t)e->attr) {
    case ATTR_ENTRY:
        PUT_LIT(b, "{\"locale\":");
        cd_json_put_string(b, locales[c->locale].name);
        if (c->authenticated)
            PUT_LIT(b, ",\"authenticated\":true");
        else
            PUT_LIT(b, ",\"authenticated\":false");
        break;
    case ATTR_INTENT:
        PUT_LIT(b, "{\"intent\":");
        cd_json_put_string(b, queues[c->queue].name);
        PUT_LIT(b, ",\"confidence\":0.");
        put_uint(b, c->confidence); /* a percentage from 55 to 99: two digits */
        break;
    case ATTR_QUEUE:
        PUT_LIT(b, "{\"queue\":");
        cd_json_put_string(b, queues[c->queue].name);
        PUT_LIT(b, ",\"priority\":");
        put_uint(b, c->priority);
        break;
    case ATTR_OFFER:
        PUT_LIT(b, "{\"queue\":");
        cd_json_put_string(b, queues[c->queue].name);
        PUT_LIT(b, ",\"offer\":");
        put_uint(b, e->attr_n);
        break;
    case ATTR_MESSAGES:
        PUT_LIT(b, "{\"messages\":");
        put_uint(b, e->attr_n);
        break;
    case ATTR_NONE:
        return;
    }
    PUT_LIT(b, "}");
}

static const sim_uuid_t *user_id(const cd_sim_t *sim, const sim_ev_t *e)
{
    const org_t *org = &sim->orgs[e->conv.org];

    switch ((participant_t)e->who.type) {
    case PT_HUMAN_AGENT: return &org->agents[e->who.user];
    case PT_VIRTUAL_AGENT: return &org->bots[e->who.user];
    case PT_SUPERVISOR: return &org->supervisors[e->who.user];
    case PT_CUSTOMER:
    case PT_SYSTEM: break;
    }
    return NULL;
}

/* One event of the contract v1, fields in the contract's order, its scenario
 * under the name given. */
static void render(const cd_sim_t *sim, const sim_ev_t *e, const char *scenario, cd_buf_t *b)
{
    const sim_conv_t *c = &e->conv;
    const sim_uuid_t *user = user_id(sim, e);

    cd_buf_reset(b);
    PUT_LIT(b, "{\"eventId\":");
    put_uuid(b, &e->id);
    PUT_KEY(b, "timestamp");
    put_timestamp(b, e->ts_us);
    PUT_KEY(b, "organizationId");
    put_uuid(b, &sim->orgs[c->org].id);
    PUT_KEY(b, "liveWorkItemId");
    put_uuid(b, &c->id);
    PUT_KEY(b, "scenario");
    cd_json_put_string(b, scenario);
    PUT_KEY(b, "status");
    cd_json_put_string(b, status_names[e->status]);
    PUT_KEY(b, "channelType");
    cd_json_put_string(b, channels[c->channel].name);
    PUT_KEY(b, "participantType");
    cd_json_put_string(b, participant_names[e->who.type]);
    if (user) {
        PUT_KEY(b, "userId");
        put_uuid(b, user);
    }
    if (!uuid_is_nil(&e->who.session)) {
        PUT_KEY(b, "sessionId");
        put_uuid(b, &e->who.session);
    }
    if (!uuid_is_nil(&c->transaction)) {
        PUT_KEY(b, "transactionId");
        put_uuid(b, &c->transaction);
    }
    if (e->span) {
        PUT_KEY(b, "traceparent");
        put_traceparent(b, e);
        if (c->tracestate) {
            PUT_KEY(b, "tracestate");
            cd_json_put_string(b, tenants[c->org].tracestate);
        }
    }
    if (e->duration_ms >= 0) {
        PUT_KEY(b, "durationMs");
        put_uint(b, (uint64_t)e->duration_ms);
    }
    if (e->failure) {
        PUT_KEY(b, "failureReason");
        cd_json_put_string(b, e->failure);
    }
    if (e->attr != ATTR_NONE)
        put_attributes(b, e);
    PUT_LIT(b, "}");
}

/* ------------------------------------------------------------------------
 * Malformed messages
 *
 * Each is made from the rendered event it replaces, so that it looks like
 * what a faulty producer sends: the event with one thing wrong.  All that
 * varies is drawn with the decision (sim_msg_t.bad_arg); breaking a message
 * is a pure function of the message, as rendering is.  Every kind leaves
 * the text free of NUL and newline bytes, and every kind is a rejection
 * under the contract, whatever event it is made from.
 * ------------------------------------------------------------------------ */

static const char *const required_fields[] = {
    "eventId", "timestamp", "organizationId", "liveWorkItemId", "scenario", "status",
    "channelType",
};

/* Byte sequences that are not UTF-8 whatever follows them. */
static const char *const bad_utf8[] = {
    "\xe8",         /* 'è' in Latin-1, from a producer that does not speak UTF-8 */
    "\x80",         /* a continuation byte with nothing to continue */
    "\xff",         /* never in UTF-8 */
    "\xc0\xaf",     /* '/' in an overlong form */
    "\xed\xa0\x80", /* a UTF-16 surrogate, U+D800 */
};

/* Members the contract does not have, each with its leading comma. */
static const char *const unknown_fields[] = {
    ",\"schemaVersion\":2",
    ",\"Status\":\"Completed\"", /* a known field, capitalised wrongly */
    ",\"region\":\"westeurope\"",
    ",\"retryCount\":1",
    ",\"eventType\":\"ScenarioEvent\"",
};

/* b becomes t[0..off), then ins, then t[off + del..). */
static void splice(cd_buf_t *b, const cd_buf_t *t, size_t off, size_t del, const char *ins,
                   size_t ins_len)
{
    cd_buf_reset(b);
    cd_buf_append(b, t->data, off);
    cd_buf_append(b, ins, ins_len);
    cd_buf_append(b, t->data + off + del, t->len - off - del);
}

/* Offset and length of the value of top-level member `name` in t. */
static bool member(const cd_buf_t *t, const char *name, size_t *off, size_t *len)
{
    const char *v;

    if (!cd_json_member_span(t->data, t->len, name, &v, len))
        return false;
    *off = (size_t)(v - t->data);
    return true;
}

/* A field of the wrong JSON type: what producers with a loose serializer send. */
static void bad_type(cd_buf_t *b, const cd_buf_t *t, const sim_msg_t *m)
{
    enum { TS_NUMBER, STATUS_NUMBER, DURATION_STRING, ATTRIBUTES_STRING };
    int choices[4], n = 0;
    size_t off, len;
    char tmp[256];

    choices[n++] = TS_NUMBER;
    choices[n++] = STATUS_NUMBER;
    if (m->ev.duration_ms >= 0)
        choices[n++] = DURATION_STRING;
    if (m->ev.attr != ATTR_NONE)
        choices[n++] = ATTRIBUTES_STRING;

    switch (choices[m->bad_arg % (uint32_t)n]) {
    case TS_NUMBER: /* milliseconds since the epoch instead of RFC 3339 */
        if (member(t, "timestamp", &off, &len)) {
            int64_t ms = m->ev.ts_us / 1000 - (m->ev.ts_us % 1000 < 0);
            int w = snprintf(tmp, sizeof(tmp), "%lld", (long long)ms);
            splice(b, t, off, len, tmp, (size_t)w);
        }
        break;
    case STATUS_NUMBER: /* the producer's enum value instead of its name */
        if (member(t, "status", &off, &len)) {
            int w = snprintf(tmp, sizeof(tmp), "%u", (unsigned)m->ev.status);
            splice(b, t, off, len, tmp, (size_t)w);
        }
        break;
    case DURATION_STRING: /* a number in quotes */
        if (member(t, "durationMs", &off, &len) && len + 2 < sizeof(tmp)) {
            tmp[0] = '"';
            memcpy(tmp + 1, t->data + off, len);
            tmp[len + 1] = '"';
            splice(b, t, off, len, tmp, len + 2);
        }
        break;
    case ATTRIBUTES_STRING: /* the object serialized twice, so a string */
        if (member(t, "attributes", &off, &len) && len < sizeof(tmp)) {
            memcpy(tmp, t->data + off, len);
            tmp[len] = '\0';
            cd_buf_reset(b);
            cd_buf_append(b, t->data, off);
            cd_json_put_string(b, tmp);
            cd_buf_append(b, t->data + off + len, t->len - off - len);
        }
        break;
    }
}

/* A required field left out, with the comma that went with it. */
static void bad_missing(cd_buf_t *b, const cd_buf_t *t, const sim_msg_t *m)
{
    const char *name = required_fields[m->bad_arg % CD_ARRAY_LEN(required_fields)];
    size_t off, len;

    if (!member(t, name, &off, &len))
        return;
    /* The member is "name":value, after '{' if first, else after ','. */
    size_t key = off - strlen(name) - 3;
    if (t->data[key - 1] == ',')
        splice(b, t, key - 1, off + len - (key - 1), "", 0);
    else
        splice(b, t, key, off + len + 1 - key, "", 0);
}

/* Replaces the rendered message in sim->json by a malformed one of its kind. */
static void damage(cd_sim_t *sim, const sim_msg_t *m)
{
    cd_buf_t *b = &sim->json, *t = &sim->scratch;
    uint32_t arg = m->bad_arg;
    size_t off, len;

    cd_buf_reset(t);
    cd_buf_append(t, b->data, b->len);
    if (t->oom || b->oom)
        return;

    switch ((cd_sim_malformed_t)m->bad) {
    case CD_SIM_BAD_TRUNCATED: {
        /* Cut in the latter three quarters: never empty, never whole. */
        size_t keep = t->len / 4 + arg % (t->len - t->len / 4);
        b->len = keep;
        b->data[keep] = '\0';
        break;
    }
    case CD_SIM_BAD_TYPE:
        bad_type(b, t, m);
        break;
    case CD_SIM_BAD_MISSING:
        bad_missing(b, t, m);
        break;
    case CD_SIM_BAD_STATUS:
        if (member(t, "status", &off, &len))
            splice(b, t, off, len, "\"Done\"", 6);
        break;
    case CD_SIM_BAD_UTF8:
        /* Inside the scenario name, after its first character: the name is
         * ASCII, so what follows the bytes is never what would complete them. */
        if (member(t, "scenario", &off, &len)) {
            const char *bytes = bad_utf8[(arg >> 16) % CD_ARRAY_LEN(bad_utf8)];
            splice(b, t, off + 2 + (arg & 0xffff) % (len - 2), 0, bytes, strlen(bytes));
        }
        break;
    case CD_SIM_BAD_UNKNOWN_FIELD: {
        const char *field = unknown_fields[arg % CD_ARRAY_LEN(unknown_fields)];
        splice(b, t, t->len - 1, 0, field, strlen(field));
        break;
    }
    case CD_SIM_WELL_FORMED:
    case CD_SIM_BAD_KINDS:
        break;
    }
}

/* ------------------------------------------------------------------------
 * Disorder: from planned events to messages
 * ------------------------------------------------------------------------ */

static sim_msg_t *msg_push(cd_sim_t *sim, msg_list_t *l)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        sim_msg_t *grown = realloc(l->v, cap * sizeof(*grown));
        if (!grown) {
            sim->failed = true;
            return NULL;
        }
        l->v = grown;
        l->cap = cap;
    }
    return &l->v[l->n++];
}

/* What happens to one planned event of conversation `index`.  Each draw is
 * made only when its probability is positive. */
static void decide(const cd_sim_conf_t *conf, rng_t *r, sim_msg_t *m, uint64_t index)
{
    if (conf->p_malformed > 0 && rng_chance(r, conf->p_malformed)) {
        m->flags |= CD_SIM_MALFORMED;
        m->bad = (uint8_t)(1 + rng_below(r, CD_SIM_BAD_KINDS - 1));
        m->bad_arg = (uint32_t)(rng_next(r) >> 32);
    } else if (conf->p_alias > 0) {
        uint32_t n = alias_count((scenario_t)m->ev.scenario);
        if (n && rng_chance(r, conf->p_alias)) {
            m->flags |= CD_SIM_ALIAS;
            m->alias = (uint8_t)(1 + rng_below(r, n));
        }
    }

    if (conf->p_late > 0 && rng_chance(r, conf->p_late)) {
        /* Out after 1 to 3 later conversations. */
        m->flags |= CD_SIM_LATE;
        m->release = index + 2 + rng_below(r, 3);
    } else if (conf->p_reorder > 0 && rng_chance(r, conf->p_reorder)) {
        m->reorder = (uint8_t)(1 + rng_below(r, MAX_REORDER));
    }

    /* A retry resends what went out; a malformed message is not retried. */
    if (!(m->flags & CD_SIM_MALFORMED) && conf->p_duplicate > 0 &&
        rng_chance(r, conf->p_duplicate))
        m->duplicate = (uint8_t)(1 + rng_below(r, MAX_DUPLICATE));
}

/*
 * Moves each message to be held back behind the next `reorder` messages of
 * v[0..n), which are one conversation's in planned order, and flags those
 * that end up behind an event planned after them.  The rank of a message
 * held back is 2 * (position of the one it goes behind) + 1, of the others
 * 2 * position; a stable insertion sort by rank suits a list this short and
 * nearly sorted.
 */
static void reorder(sim_msg_t *v, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        size_t behind = j + v[j].reorder;
        v[j].rank = (uint32_t)(v[j].reorder ? 2 * (behind < n ? behind : n - 1) + 1 : 2 * j);
    }
    for (size_t j = 1; j < n; j++) {
        sim_msg_t m = v[j];
        size_t i = j;
        while (i > 0 && v[i - 1].rank > m.rank) {
            v[i] = v[i - 1];
            i--;
        }
        v[i] = m;
    }

    uint32_t latest = 0;
    for (size_t j = 0; j < n; j++) {
        if (j > 0 && v[j].order < latest)
            v[j].flags |= CD_SIM_REORDERED;
        else
            latest = v[j].order;
    }
}

/* The batch becomes the queue, each duplicate inserted after its original
 * and duplicate - 1 further messages (or at the end of the batch). */
static void queue_batch(cd_sim_t *sim)
{
    msg_list_t *b = &sim->batch, *q = &sim->queue, swap;
    bool duplicates = false;

    sim->next = 0;
    for (size_t i = 0; i < b->n && !duplicates; i++)
        duplicates = b->v[i].duplicate != 0;
    if (!duplicates) {
        swap = *q;
        *q = *b;
        *b = swap;
        b->n = 0;
        return;
    }

    q->n = 0;
    for (size_t j = 0; j < b->n; j++) {
        sim_msg_t *slot = msg_push(sim, q);
        if (!slot)
            return;
        *slot = b->v[j];
        slot->duplicate = 0;
        for (size_t i = j >= MAX_DUPLICATE - 1 ? j - (MAX_DUPLICATE - 1) : 0; i <= j; i++) {
            const sim_msg_t *m = &b->v[i];
            size_t due = i + m->duplicate - 1;
            if (!m->duplicate || (due < b->n - 1 ? due : b->n - 1) != j)
                continue;
            if (!(slot = msg_push(sim, q)))
                return;
            *slot = *m;
            slot->duplicate = 0;
            slot->flags |= CD_SIM_DUPLICATE;
        }
    }
    b->n = 0;
}

/* Moves the held messages due before conversation `index` into the batch, in
 * the order they were held. */
static void release_held(cd_sim_t *sim, uint64_t index)
{
    msg_list_t *h = &sim->held;
    size_t kept = 0;

    for (size_t i = 0; i < h->n; i++) {
        if (h->v[i].release > index) {
            h->v[kept++] = h->v[i];
            continue;
        }
        sim_msg_t *slot = msg_push(sim, &sim->batch);
        if (!slot)
            return;
        *slot = h->v[i];
    }
    h->n = kept;
}

/* The messages of the conversation just planned, after the late ones due. */
static void queue_conversation(cd_sim_t *sim)
{
    const cd_sim_conf_t *conf = &sim->conf;
    uint64_t index = sim->conversations - 1;
    rng_t r = {0}; /* seeded below when used; zeroed for the optimizer's sake */

    sim->batch.n = 0;
    release_held(sim, index);
    size_t first = sim->batch.n;

    if (sim->disorder)
        rng_seed(&r, conf->seed, STREAM_DISORDER(index));
    for (size_t i = 0; i < sim->npending; i++) {
        sim_msg_t m = {.ev = sim->pending[i], .order = (uint32_t)i};
        if (sim->disorder)
            decide(conf, &r, &m, index);
        sim_msg_t *slot = msg_push(sim, m.flags & CD_SIM_LATE ? &sim->held : &sim->batch);
        if (!slot)
            return;
        *slot = m;
    }
    if (sim->disorder)
        reorder(sim->batch.v + first, sim->batch.n - first);
    queue_batch(sim);
}

/* ------------------------------------------------------------------------
 * Public interface
 * ------------------------------------------------------------------------ */

void cd_sim_conf_init(cd_sim_conf_t *conf)
{
    conf->seed = 1;
    conf->start_us = cd_now_us();
    conf->conversations = 100;
    conf->max_events = 0;
    conf->conv_per_sec = 5.0;
    conf->p_reorder = 0;
    conf->p_duplicate = 0;
    conf->p_late = 0;
    conf->p_alias = 0;
    conf->p_malformed = 0;
}

void cd_sim_conf_disorder(cd_sim_conf_t *conf)
{
    conf->p_reorder = 0.05;
    conf->p_duplicate = 0.02;
    conf->p_late = 0.01;
    conf->p_alias = 0.1;
    conf->p_malformed = 0.005;
}

/* Agents, bots and supervisors of each organization, fixed for the seed. */
static void make_orgs(cd_sim_t *sim)
{
    rng_t r;

    rng_seed(&r, sim->conf.seed, STREAM_POOLS);
    for (size_t i = 0; i < CD_ARRAY_LEN(sim->orgs); i++) {
        org_t *org = &sim->orgs[i];
        org->id = rng_uuid(&r);
        for (size_t j = 0; j < AGENTS_PER_ORG; j++)
            org->agents[j] = rng_uuid(&r);
        for (size_t j = 0; j < BOTS_PER_ORG; j++)
            org->bots[j] = rng_uuid(&r);
        for (size_t j = 0; j < SUPERVISORS_PER_ORG; j++)
            org->supervisors[j] = rng_uuid(&r);
    }
}

cd_sim_t *cd_sim_new(const cd_sim_conf_t *conf)
{
    cd_sim_t *sim = calloc(1, sizeof(*sim));

    if (!sim)
        return NULL;
    sim->conf = *conf;
    sim->disorder = conf->p_reorder > 0 || conf->p_duplicate > 0 || conf->p_late > 0 ||
                    conf->p_alias > 0 || conf->p_malformed > 0;
    cd_buf_init(&sim->json);
    cd_buf_init(&sim->scratch);
    make_orgs(sim);
    rng_seed(&sim->arrivals, conf->seed, STREAM_ARRIVALS);
    /* A rate that is not positive means no spacing: all arrive at start_us. */
    sim->mean_gap_us = conf->conv_per_sec > 0 ? 1e6 / conf->conv_per_sec : 0;
    sim->next_arrival_us = conf->start_us;

    /* Room for the longest flow and the largest event, so that neither
     * normally grows while the stream runs. */
    sim->cap = 64;
    sim->pending = malloc(sim->cap * sizeof(*sim->pending));
    if (!sim->pending || !cd_buf_reserve(&sim->json, 2048)) {
        cd_sim_free(sim);
        return NULL;
    }
    return sim;
}

void cd_sim_free(cd_sim_t *sim)
{
    if (!sim)
        return;
    free(sim->pending);
    free(sim->queue.v);
    free(sim->batch.v);
    free(sim->held.v);
    cd_buf_fini(&sim->json);
    cd_buf_fini(&sim->scratch);
    free(sim);
}

/* Returns 0 at the configured limits, and also, early, if memory runs out. */
int cd_sim_next(cd_sim_t *sim, cd_sim_event_t *out)
{
    const cd_sim_conf_t *conf = &sim->conf;

    if (sim->failed)
        return 0;
    if (conf->max_events && sim->events >= conf->max_events)
        return 0;
    while (sim->next == sim->queue.n) {
        if (conf->conversations && sim->conversations >= conf->conversations) {
            /* The last conversations are out; what they held back follows. */
            if (sim->held.n == 0)
                return 0;
            sim->batch.n = 0;
            release_held(sim, UINT64_MAX);
            queue_batch(sim);
        } else {
            if (plan_conversation(sim) != 0)
                return 0;
            queue_conversation(sim);
        }
        if (sim->failed)
            return 0;
    }

    const sim_msg_t *m = &sim->queue.v[sim->next++];
    const sim_ev_t *e = &m->ev;
    render(sim, e, m->alias ? aliases[e->scenario][m->alias - 1] : scenarios[e->scenario].name,
           &sim->json);
    if (m->bad)
        damage(sim, m);
    if (sim->json.oom || sim->scratch.oom) {
        sim->failed = true;
        return 0;
    }
    *uuid_text(sim->key, &e->conv.id) = '\0';
    *uuid_text(sim->event_id, &e->id) = '\0';

    out->key = sim->key;
    out->json = sim->json.data;
    out->json_len = sim->json.len;
    out->conversation = e->conv.index;
    out->event_id = sim->event_id;
    out->flags = m->flags;
    out->malformed = (cd_sim_malformed_t)m->bad;
    for (size_t i = 0; i < CD_ARRAY_LEN(sim->flagged); i++)
        sim->flagged[i] += (m->flags >> i) & 1;
    sim->events++;
    return 1;
}

uint64_t cd_sim_events_emitted(const cd_sim_t *sim)
{
    return sim->events;
}

uint64_t cd_sim_conversations_started(const cd_sim_t *sim)
{
    return sim->conversations;
}

uint64_t cd_sim_messages_flagged(const cd_sim_t *sim, unsigned flag)
{
    for (size_t i = 0; i < CD_ARRAY_LEN(sim->flagged); i++) {
        if (flag == 1u << i)
            return sim->flagged[i];
    }
    return 0;
}
