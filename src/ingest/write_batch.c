/*
 * write_batch.c -- one batch through the store, in one transaction: ingest
 * -> tag (with the state the store loads) -> store; see writer.h.
 */
#include <stdio.h>
#include <string.h>

#include "convdiag/log.h"
#include "convdiag/store.h"
#include "convdiag/writer.h"

/* Attempts that what the last one taught may need, before giving up. */
#define MAX_ATTEMPTS 5

static void reset_records(cd_batch_t *batch)
{
    for (size_t i = 0; i < batch->count; i++) {
        batch->records[i].duplicate = false;
        memset(&batch->records[i].tags, 0, sizeof(batch->records[i].tags));
    }
}

static void add_totals(cd_writer_totals_t *t, const cd_store_result_t *r, size_t stale)
{
    t->store.inserted += r->inserted;
    t->store.duplicates += r->duplicates;
    t->store.dead_letters += r->dead_letters;
    t->store.unknown_scenarios += r->unknown_scenarios;
    t->store.conversations += r->conversations;
    t->store.runs += r->runs;
    t->stale_runs += stale;
}

/* One transaction.  On failure it is rolled back and the state it changed
 * dropped, so that st holds only what PostgreSQL holds. */
static cd_status_t attempt(cd_store_t *store, cd_tag_state_t *st, const cd_tagger_conf_t *tc,
                           bool check_stored, bool lock, cd_batch_t *batch,
                           cd_writer_totals_t *totals, cd_err_t *err)
{
    cd_store_result_t r;
    cd_status_t rc;

    reset_records(batch);
    if ((rc = cd_store_prepare_batch(store, batch, err)) != CD_OK)
        return rc;
    if ((rc = cd_store_begin(store, err)) != CD_OK ||
        (rc = cd_store_mark_duplicates(store, batch, check_stored, err)) != CD_OK ||
        (rc = cd_store_load_state(store, batch, st, lock, err)) != CD_OK ||
        (rc = cd_tagger_apply(tc, batch, st, err)) != CD_OK ||
        (rc = cd_store_write_batch(store, batch, st, &r, err)) != CD_OK ||
        (rc = cd_store_commit(store, err)) != CD_OK) {
        cd_store_rollback(store);
        cd_tag_state_discard(st);
        return rc;
    }
    add_totals(totals, &r, st->newly_stale);
    cd_tag_state_commit(st);
    return CD_OK;
}

/* attempt(), again as long as the failure says how to do better. */
static cd_status_t write_once(cd_store_t *store, cd_tag_state_t *st, const cd_tagger_conf_t *tc,
                              bool check_stored, cd_batch_t *batch, cd_writer_totals_t *totals,
                              cd_err_t *err)
{
    bool lock = false;
    cd_status_t rc = CD_ERROR;

    for (int i = 0; i < MAX_ATTEMPTS; i++) {
        cd_writer_totals_t t = {0};
        if ((rc = attempt(store, st, tc, check_stored, lock, batch, &t, err)) == CD_OK) {
            add_totals(totals, &t.store, t.stale_runs);
            return CD_OK;
        }
        switch (cd_store_last_failure(store)) {
        case CD_STORE_DUPLICATE: /* a replay: write again knowing what is stored */
            check_stored = true;
            continue;
        case CD_STORE_PARTITION: /* one we knew of was dropped meanwhile: look again */
            cd_store_forget_partitions(store);
            continue;
        case CD_STORE_CONFLICT: /* another writer changed a conversation: theirs, locked */
            cd_log_debug("writer", "%s; loading them again", err->msg);
            lock = true;
            continue;
        default:
            return rc;
        }
    }
    return rc;
}

/* A reason PostgreSQL can store: bytes outside printable ASCII escaped. */
static void escape_reason(const char *in, char *out, size_t size)
{
    size_t o = 0;
    for (; *in && o + 5 < size; in++) {
        unsigned char ch = (unsigned char)*in;
        if (ch >= 0x20 && ch < 0x7f && ch != '\\')
            out[o++] = (char)ch;
        else
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", ch);
    }
    out[o] = '\0';
}

/* One record PostgreSQL refuses: it becomes a dead letter with the reason,
 * or, if its dead letter is what is refused, one with the reason escaped. */
static cd_status_t write_refused(cd_store_t *store, cd_tag_state_t *st,
                                 const cd_tagger_conf_t *tc, cd_batch_t *one,
                                 cd_writer_totals_t *totals, cd_err_t *err)
{
    cd_record_t *rec = &one->records[0];
    char reason[CD_ERR_MAX + 64];

    if (rec->valid) {
        snprintf(reason, sizeof(reason), "PostgreSQL refused the event: %s", err->msg);
        cd_log_warn("writer", "event %s at %s[%d]@%lld dead-lettered: %s", rec->event.event_id,
                    rec->topic, (int)rec->partition, (long long)rec->offset, err->msg);
    } else {
        escape_reason(rec->reason ? rec->reason : "", reason, sizeof(reason));
        if (rec->reason && strcmp(reason, rec->reason) == 0)
            return CD_ERROR; /* nothing left to change: err says what is refused */
        cd_log_warn("writer", "dead letter of %s[%d]@%lld kept with its reason escaped: %s",
                    rec->topic, (int)rec->partition, (long long)rec->offset, err->msg);
    }
    cd_record_reject(rec, reason);
    totals->refused++;
    return write_once(store, st, tc, true, one, totals, err);
}

/*
 * batch was refused for a row of it: writes it in halves, each in its own
 * transaction, down to the single records refused, which become dead
 * letters; everything else is stored.  Halves commit in Kafka order, so the
 * tagging is that of the whole batch, and offsets are stored only when all
 * of it is.
 */
static cd_status_t write_halves(cd_store_t *store, cd_tag_state_t *st, const cd_tagger_conf_t *tc,
                                cd_batch_t *batch, cd_writer_totals_t *totals, cd_err_t *err)
{
    if (batch->count == 1)
        return write_refused(store, st, tc, batch, totals, err);
    size_t half = batch->count / 2;
    cd_batch_t parts[2] = {cd_batch_view(batch, 0, half),
                           cd_batch_view(batch, half, batch->count - half)};
    for (int i = 0; i < 2; i++) {
        cd_status_t rc = write_once(store, st, tc, true, &parts[i], totals, err);
        if (rc == CD_ERROR && cd_store_last_failure(store) == CD_STORE_ROW)
            rc = write_halves(store, st, tc, &parts[i], totals, err);
        if (rc != CD_OK)
            return rc;
    }
    return CD_OK;
}

cd_status_t cd_writer_write_batch(cd_store_t *store, cd_tag_state_t *st,
                                  const cd_tagger_conf_t *tc, bool *check_stored,
                                  cd_batch_t *batch, cd_writer_totals_t *totals, cd_err_t *err)
{
    memset(totals, 0, sizeof(*totals));
    cd_status_t rc = write_once(store, st, tc, *check_stored, batch, totals, err);
    if (rc == CD_ERROR && cd_store_last_failure(store) == CD_STORE_ROW) {
        cd_err_t first = *err;
        cd_log_warn("writer", "batch of %zu refused, looking for the rows at fault: %s",
                    batch->count, first.msg);
        memset(totals, 0, sizeof(*totals));
        rc = write_halves(store, st, tc, batch, totals, err);
    }
    /* Replays come in runs: keep looking while they do. */
    if (rc == CD_OK)
        *check_stored = totals->store.duplicates > 0;
    return rc;
}
