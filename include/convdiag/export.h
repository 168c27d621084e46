/*
 * export.h -- Application Insights export: the connection string, and the
 * envelope written for each stored event (one entry of the Traces table).
 *
 * The envelope is what the official SDKs POST to <IngestionEndpoint>v2.1/track,
 * one per line of an application/x-json-stream body:
 *
 *   {"ver":1,"name":"Microsoft.ApplicationInsights.<ikey>.Message","time":...,
 *    "iKey":...,"tags":{...},"data":{"baseType":"MessageData","baseData":{"ver":2,
 *    "message":"ScenarioStarted","severityLevel":0,"properties":{...}}}}
 *
 * Lengths are limited the way the SDKs limit them, in UTF-16 code units (what
 * a .NET or JavaScript string's Length counts): a character outside the Basic
 * Multilingual Plane counts two.  Truncation never splits a character: one
 * that would not fit whole is left out.
 */
#ifndef CONVDIAG_EXPORT_H
#define CONVDIAG_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "convdiag/buf.h"
#include "convdiag/common.h"
#include "convdiag/event.h"

/* ---- connection string (APPLICATIONINSIGHTS_CONNECTION_STRING) ---- */

/* The longest connection string accepted, in bytes; the .NET and Java SDKs
 * refuse longer ones too. */
#define CD_EXPORT_CONN_MAX 4096

/* An instrumentation key is a GUID: 36 characters with its dashes. */
#define CD_EXPORT_IKEY_LEN 36

/* Where telemetry goes when the connection string names no endpoint. */
#define CD_EXPORT_DEFAULT_ENDPOINT "https://dc.services.visualstudio.com/"

/* Appended to the ingestion endpoint to make the track URL. */
#define CD_EXPORT_TRACK_PATH "v2.1/track"

typedef struct cd_export_conn {
    char ikey[CD_EXPORT_IKEY_LEN + 1];   /* InstrumentationKey, as given */
    char endpoint[CD_EXPORT_CONN_MAX + 1]; /* ingestion endpoint, ending in one '/' */
    char track_url[CD_EXPORT_CONN_MAX + sizeof(CD_EXPORT_TRACK_PATH)];
    char aad_audience[CD_EXPORT_CONN_MAX + 1]; /* AADAudience, or "" when absent */
} cd_export_conn_t;

/*
 * Parses a connection string: "key=value" segments separated by ';'.  Keys
 * are case-insensitive; keys and values are trimmed of white space; empty
 * segments are skipped; a key may appear once.  Keys other than
 * InstrumentationKey, IngestionEndpoint, EndpointSuffix, Location and
 * AADAudience are accepted and ignored (LiveEndpoint, ApplicationId, ...).
 *
 * InstrumentationKey is required and must be a GUID.  The endpoint is
 * IngestionEndpoint when given (http:// or https:// only); else
 * https://[<Location>.]dc.<EndpointSuffix>/ when EndpointSuffix is given;
 * else CD_EXPORT_DEFAULT_ENDPOINT.
 *
 * On CD_ERROR conn is cleared and err names the problem and the segment or
 * key; it never contains a value, so the instrumentation key cannot leak
 * into a log through it.
 */
cd_status_t cd_export_conn_parse(cd_export_conn_t *conn, const char *s, cd_err_t *err);

/* Room for a masked key and its NUL: 8 characters and "****". */
#define CD_EXPORT_MASKED_SIZE 13

/*
 * The key as logs may show it: its first 8 characters and "****"
 * ("1b2c3d4e****").  A key of 16 characters or fewer would give away too
 * much of itself that way and becomes "****" (or as many '*' as it has
 * characters, when fewer than 4).  Returns buf, which should have room for
 * CD_EXPORT_MASKED_SIZE bytes.
 */
const char *cd_export_mask_ikey(const char *ikey, char *buf, size_t size);

/*
 * Masks, in place, every occurrence of ikey in text, with or without its
 * dashes (the envelope name carries it without), in either case.  For a
 * message about to be logged, e.g. an error that quotes a request.  Returns
 * the number of occurrences masked.
 */
size_t cd_export_mask_ikey_in(char *text, const char *ikey);

/* ---- envelope ---- */

/* The sdkVersion tag of this build. */
#define CD_EXPORT_SDK_VERSION "convdiag:" CD_VERSION

/* The most bytes one envelope may take, with its newline: 64 KiB. */
#define CD_EXPORT_ITEM_MAX_BYTES 65536

/* Where the envelope comes from.  Strings are borrowed; NULL or "" leaves an
 * optional tag out. */
typedef struct cd_export_config {
    const char *ikey;                /* required: the connection string's key */
    const char *cloud_role;          /* ai.cloud.role */
    const char *cloud_role_instance; /* ai.cloud.roleInstance: the host name */
    const char *sdk_version;         /* ai.internal.sdkVersion: CD_EXPORT_SDK_VERSION */
} cd_export_config_t;

/*
 * A stored event, as the exporter reads it from PostgreSQL.  Strings are
 * borrowed, NUL-terminated UTF-8 (PostgreSQL text); optional ones are NULL
 * when absent.
 */
typedef struct cd_export_item {
    const char *event_id;          /* convdiag.eventId, and in error messages */
    int64_t time_us;               /* event time, µs since the epoch */
    const char *organization_id;
    const char *live_work_item_id; /* operation_ParentId */
    const char *scenario;          /* canonical name: operation_Name */
    const char *category;          /* catalogue category, or "Other" */
    cd_event_status_t status;
    const char *channel_type;
    const char *participant_type;
    const char *user_id;           /* user_Id is "0" when NULL */
    const char *session_id;
    const char *operation_id;
    /* The event's own durationMs or, for a Completed or Failed event without
     * one, the duration of the scenario run it closed; -1 when neither is
     * known.  Never exported for a Started event. */
    int64_t duration_ms;
    const char *failure_reason;
    const char *attributes_json;   /* flat JSON object of strings, numbers, booleans */
} cd_export_item_t;

/*
 * Appends the envelope of item to out, without a newline.
 *
 * Property values are strings: numbers in their shortest form, booleans
 * "true"/"false".  Attributes follow the standard properties in name
 * order (bytewise), whatever their order in attributes_json: the stored
 * jsonb does not keep the order received, and an event must give the same
 * envelope from `convdiag check` as from the outbox.  An attribute named like a standard property
 * (organizationId, Duration, failureReason, ... even one this event does
 * not carry) is exported as "attributes.<name>", so that no attribute can
 * pass for or hide a standard one; a name still taken after that, or after
 * truncation, gets a number appended as the .NET SDK does ("<name>1", ...).
 *
 * When the envelope would exceed CD_EXPORT_ITEM_MAX_BYTES, attributes are
 * left out, the last first, until it fits, and the property
 * "convdiag.truncated" = "attributes" says so.
 *
 * On failure out is as it was: CD_ERROR when the item cannot be exported
 * (attributes_json is not a flat object; too large even without
 * attributes), CD_RETRY when memory ran out.
 */
cd_status_t cd_export_envelope_write(cd_buf_t *out, const cd_export_config_t *cfg,
                                     const cd_export_item_t *item, cd_err_t *err);

#endif
