/* api.c -- control, read-out and page endpoints; see api.h. */
#include "api.h"

#include <errno.h>
#include <stdlib.h>

#include "convdiag/log.h"
#include "page.h"

void emu_api_control_get(emu_t *emu, emu_reply_t *reply)
{
    pthread_mutex_lock(&emu->mu);
    emu_faults_to_json(&emu->faults, cd_mono_us(), &reply->body);
    pthread_mutex_unlock(&emu->mu);
    reply->status = 200;
}

void emu_api_control_set(emu_t *emu, const char *body, size_t len, emu_reply_t *reply)
{
    int64_t now = cd_mono_us();
    char described[512];
    cd_err_t err;

    pthread_mutex_lock(&emu->mu);
    emu_faults_t next = emu->faults;
    cd_status_t st = emu_faults_apply_json(&next, body, len, now, &err);
    if (st == CD_OK && next.down && !next.down_until_us && !emu->conf.control_listen.set) {
        /* Nothing could reach the closed port to reopen it. */
        cd_err_set(&err, CD_ERROR,
                   "down without down_for needs --control-listen, to bring the port back");
        st = CD_ERROR;
    }
    if (st == CD_OK) {
        emu->faults = next;
        pthread_cond_broadcast(&emu->changed);
        emu_faults_to_json(&emu->faults, now, &reply->body);
        emu_faults_describe(&emu->faults, described, sizeof(described));
    }
    pthread_mutex_unlock(&emu->mu);

    if (st != CD_OK) {
        emu_reply_error(reply, 400, "%s", err.msg);
        return;
    }
    reply->status = 200;
    /* When this asked for "down", the port closes once this answer is out. */
    reply->close = true;
    cd_log_info("control", "faults %s", described);
}

void emu_api_stats(emu_t *emu, emu_reply_t *reply)
{
    pthread_mutex_lock(&emu->mu);
    emu_stats_to_json(&emu->stats, emu->store.count, emu->store.max, emu->store.nconvs,
                      &reply->body);
    pthread_mutex_unlock(&emu->mu);
    reply->status = 200;
}

/* A query argument that must be a whole number; def when absent. */
static bool whole_number(const char *text, size_t def, size_t *out)
{
    char *end;
    if (!text) {
        *out = def;
        return true;
    }
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (!text[0] || text[0] == '-' || *end || errno)
        return false;
    *out = (size_t)v;
    return true;
}

void emu_api_conversations(emu_t *emu, const char *filter, const char *offset, const char *limit,
                           emu_reply_t *reply)
{
    size_t from, count;

    if (!whole_number(offset, 0, &from) || !whole_number(limit, 500, &count)) {
        emu_reply_error(reply, 400, "offset and limit are whole numbers");
        return;
    }
    pthread_mutex_lock(&emu->mu);
    emu_store_conversations_json(&emu->store, filter, from, count, &reply->body);
    pthread_mutex_unlock(&emu->mu);
    reply->status = 200;
}

void emu_api_traces(emu_t *emu, const char *conversation, emu_reply_t *reply)
{
    if (!conversation || !conversation[0]) {
        emu_reply_error(reply, 400, "name the conversation: ?conversation=<LiveWorkItemID>");
        return;
    }
    pthread_mutex_lock(&emu->mu);
    emu_store_traces_json(&emu->store, conversation, &reply->body);
    pthread_mutex_unlock(&emu->mu);
    reply->status = 200;
}

void emu_api_delete_items(emu_t *emu, emu_reply_t *reply)
{
    pthread_mutex_lock(&emu->mu);
    size_t deleted = emu->store.count;
    emu_store_clear(&emu->store);
    emu_stats_reset(&emu->stats);
    emu_throttle_reset(&emu->throttle);
    pthread_mutex_unlock(&emu->mu);
    cd_buf_printf(&reply->body, "{\"deleted\":%zu}", deleted);
    reply->status = 200;
    cd_log_info("api", "deleted every item items=%zu", deleted);
}

void emu_api_page(emu_reply_t *reply)
{
    cd_buf_append(&reply->body, emu_page_html, emu_page_html_len);
    reply->content_type = "text/html; charset=utf-8";
    reply->status = 200;
}
