/* operation_id.c -- an event's operation_Id and effective trace context; see tagging.h. */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "convdiag/tagging.h"
#include "convdiag/tracecontext.h"

static bool is_uuid(const char *s)
{
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        char c = s[i];
        if (dash ? c != '-' : !((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')))
            return false;
    }
    return s[36] == '\0';
}

void cd_operation_id_from_lwi(const char *lwi, char out[33])
{
    static const char hex[] = "0123456789abcdef";

    if (is_uuid(lwi)) {
        int o = 0;
        for (const char *p = lwi; *p; p++)
            if (*p != '-')
                out[o++] = (char)(*p | 0x20); /* lower case; digits are unaffected */
        out[o] = '\0';
        return;
    }
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(lwi, strlen(lwi), md, &mdlen, EVP_sha256(), NULL);
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[32] = '\0';
}

/* Picks a valid traceparent, header first, and the tracestate of the same origin. */
static bool pick_trace_context(cd_record_t *rec, cd_traceparent_t *tp)
{
    const char *hdr = rec->header_traceparent, *body = rec->event.traceparent;

    if (hdr && cd_traceparent_parse(hdr, strlen(hdr), tp)) {
        rec->tags.source = CD_OPID_TRACEPARENT_HEADER;
        rec->tags.traceparent = hdr;
        rec->tags.tracestate = rec->header_tracestate;
    } else if (body && cd_traceparent_parse(body, strlen(body), tp)) {
        rec->tags.source = CD_OPID_TRACEPARENT_BODY;
        rec->tags.traceparent = body;
        rec->tags.tracestate = rec->event.tracestate;
    } else {
        return false;
    }
    const char *ts = rec->tags.tracestate;
    if (ts && !cd_tracestate_valid(ts, strlen(ts)))
        rec->tags.tracestate = NULL;
    return true;
}

void cd_tag_event(cd_record_t *rec, const char *inherited_operation_id)
{
    cd_tags_t *t = &rec->tags;
    cd_traceparent_t tp;

    memset(t, 0, sizeof(*t));
    if (pick_trace_context(rec, &tp)) {
        memcpy(t->hex, tp.trace_id, sizeof(tp.trace_id));
        t->operation_id = t->hex;
    } else if (inherited_operation_id) {
        t->source = CD_OPID_INHERITED;
        t->operation_id = inherited_operation_id;
    } else if (rec->event.transaction_id) {
        t->source = CD_OPID_TRANSACTION_ID;
        t->operation_id = rec->event.transaction_id;
    } else {
        t->source = CD_OPID_LIVE_WORK_ITEM;
        cd_operation_id_from_lwi(rec->event.live_work_item_id, t->hex);
        t->operation_id = t->hex;
    }
}
