/*
 * faults.h -- the failures the emulator plays on demand, so an exporter can be
 * watched handling them: whole requests answered 4xx/5xx, some items refused
 * inside a 206, slow answers, and the ingestion port going away; and the
 * bearer token a resource with Microsoft Entra authentication demands.
 *
 * Every switch has one name, used as is in the JSON of /control and with
 * dashes on the command line (request_fault_code, --request-fault-code).
 * Which requests or items are hit is drawn from a generator seeded by --seed,
 * so the same seed and the same traffic give the same answers.
 */
#ifndef EMU_FAULTS_H
#define EMU_FAULTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "convdiag/buf.h"
#include "convdiag/common.h"

/* The longest bearer token the emulator can be told to require. */
#define EMU_BEARER_MAX 8192

typedef enum emu_retry_format {
    EMU_RETRY_SECONDS, /* Retry-After: 5 */
    EMU_RETRY_DATE,    /* Retry-After: Fri, 20 Nov 2026 08:00:05 GMT */
} emu_retry_format_t;

typedef enum emu_body_fault {
    EMU_BODY_OK,   /* the service's answer */
    EMU_BODY_CUT,  /* 200 with the answer cut short (the connection dropped mid-body) */
    EMU_BODY_HTML, /* 200 with a proxy's HTML page */
} emu_body_fault_t;

/* auth_fault beyond 401 and 403: 400 "Authentication not supported", what
 * /v2/track of a resource that requires Microsoft Entra answers. */
#define EMU_AUTH_UNSUPPORTED 400

typedef struct emu_faults {
    int request_code; /* 0: off */
    double request_share;
    int item_code; /* 0: off */
    double item_share;
    unsigned retry_after; /* seconds; 0: no Retry-After header */
    emu_retry_format_t retry_after_format;
    unsigned delay_ms;
    double delay_share;
    bool down;
    int64_t down_until_us; /* cd_mono_us() time to come back; 0: until told */
    /* Track requests on the ingestion port answered 307/308 (0: off), to the
     * --redirect-listen port, or to the ingestion port itself (a loop), with
     * Cache-Control: max-age=redirect_max_age (-1: no Cache-Control). */
    int redirect_code;
    bool redirect_self;
    int redirect_max_age;
    int auth_fault; /* 0: off; 401, 403 or EMU_AUTH_UNSUPPORTED for every track request */
    emu_body_fault_t body_fault; /* whose requests' items are not kept */
    double body_fault_share;
    /* The service's throttle: past throttle_rate items/s over throttle_window
     * seconds, requests get 429 with the Retry-After that makes room.  0: off. */
    unsigned throttle_rate;
    unsigned throttle_window;
    uint64_t rng;          /* splitmix64 state */
    /* Track requests must carry "Authorization: Bearer <bearer>"; "": none
     * needed.  A setting of the resource, not a fault: reset leaves it. */
    char bearer[EMU_BEARER_MAX + 1];
} emu_faults_t;

/* All switches off, no bearer token required; the generator seeded. */
void emu_faults_init(emu_faults_t *f, uint64_t seed);

/*
 * Sets the switch `name` from its text form ("503", "0.25", "date", "true").
 * now_mono_us is the time down_for counts from.  err says what is wrong with
 * the value, without naming the switch: the caller names it as its user wrote it.
 */
cd_status_t emu_faults_set(emu_faults_t *f, const char *name, const char *value,
                           int64_t now_mono_us, cd_err_t *err);

/*
 * Applies a /control body: a JSON object of switches, plus "reset": true to
 * turn every fault off first.  All or nothing: on error f is unchanged.
 */
cd_status_t emu_faults_apply_json(emu_faults_t *f, const char *json, size_t len,
                                  int64_t now_mono_us, cd_err_t *err);

/* The switches as JSON, down_for being the seconds left (0: until told) and
 * bearer true or false: whether a token is required, never the token. */
void emu_faults_to_json(const emu_faults_t *f, int64_t now_mono_us, cd_buf_t *out);

/* One line for the log, e.g. "request_fault_code=503 request_fault_share=0.5";
 * bearer=required or bearer=off, never the token. */
void emu_faults_describe(const emu_faults_t *f, char *out, size_t size);

/* True with probability share when the switch is on; draws only then. */
bool emu_faults_hit(emu_faults_t *f, bool on, double share);

/* True for the codes that tell a client to come back later. */
bool emu_status_retryable(int status);

/* The Retry-After value to send now, or "" when none is configured. */
void emu_faults_retry_after(const emu_faults_t *f, int64_t now_us, char *out, size_t size);

/* The message that goes with a status in a per-item error, e.g. "Service Unavailable". */
const char *emu_status_message(int status);

#endif
