/* dead_letter_rows.c -- the messages of a batch that are not events; see store.h. */
#include <stdio.h>
#include <stdlib.h>

#include "store_private.h"

/* A message read twice (after a restart) is kept once. */
const cd_store_statement_t cd_store_dead_letter_statements[] = {
    {"insert_dead_letter",
     "INSERT INTO dead_letters (kafka_topic, kafka_partition, kafka_offset, message_key, "
     "payload, reason, kafka_timestamp, kafka_traceparent, kafka_tracestate) "
     "VALUES ($1, $2, $3, $4, $5, $6, to_timestamp($7::double precision / 1000), $8, $9) "
     "ON CONFLICT (kafka_topic, kafka_partition, kafka_offset) DO NOTHING",
     9},
};
const size_t cd_store_dead_letter_statements_count =
    CD_ARRAY_LEN(cd_store_dead_letter_statements);

cd_status_t cd_store_write_dead_letters(cd_store_t *s, const cd_batch_t *batch, size_t *count,
                                        cd_err_t *err)
{
    *count = 0;
    for (size_t i = 0; i < batch->count; i++) {
        const cd_record_t *rec = &batch->records[i];
        if (rec->valid)
            continue;
        char part[16], off[24], ts[24];
        cd_write_i64(part, rec->partition);
        cd_write_i64(off, rec->offset);
        cd_write_i64(ts, rec->kafka_ts_ms);
        /* The headers too, so that a replay makes the same events of it. */
        const char *vals[9] = {rec->topic,   part, off, rec->key, rec->payload,
                               rec->reason ? rec->reason : "unknown (out of memory)",
                               rec->kafka_ts_ms >= 0 ? ts : NULL, rec->header_traceparent,
                               rec->header_tracestate};
        int lens[9] = {0, 0, 0, (int)rec->key_len, (int)rec->len, 0, 0, 0, 0};
        int formats[9] = {0, 0, 0, 1, 1, 0, 0, 0, 0}; /* key and payload as raw bytes */
        PGresult *res = NULL;
        cd_status_t st = cd_store_fail(
            s, cd_pg_query(&s->pg, "INSERT INTO dead_letters", "insert_dead_letter", true, 9,
                           vals, lens, formats, &res, err));
        if (st != CD_OK)
            return st;
        *count += (size_t)strtoull(PQcmdTuples(res), NULL, 10);
        PQclear(res);
    }
    return CD_OK;
}
