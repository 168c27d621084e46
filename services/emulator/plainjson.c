/*
 * plainjson.c -- cJSON's trees for plain JSON, faster; see plainjson.h.
 *
 * Each step mirrors cJSON 1.7's own (parse_object, parse_string,
 * parse_number), restricted to input where cJSON's
 * result is plain to see: only the four JSON blanks between tokens (cJSON
 * skips any byte up to 0x20), strings without control characters or \u,
 * integers that a double holds exactly.  Anything else makes the parse
 * decline, never fail, so cJSON has the last word on it.
 */
#include "plainjson.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "convdiag/json.h"

/* cJSON's own limit is 1000 levels; envelopes have 4. */
#define DEPTH_MAX 32
/* Integers of up to 15 digits are exact as doubles, as strtod returns them. */
#define DIGITS_MAX 15

typedef struct reader {
    const char *p, *end;
    int depth;
} reader_t;

static void skip_blanks(reader_t *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static cJSON *new_item(void)
{
    cJSON *item = cJSON_malloc(sizeof(*item));
    if (item)
        memset(item, 0, sizeof(*item));
    return item;
}

/*
 * The string whose opening quote is at r->p, decoded into a copy of its own
 * as cJSON's parse_string decodes it; NULL when declined: a \u escape (a
 * surrogate pair, \u0000), a control character, no closing quote.
 */
static char *string(reader_t *r)
{
    const char *start = r->p + 1, *q = start;
    bool escaped = false;

    for (;;) {
        q = cd_json_plain_run(q, r->end);
        if (q == r->end || (unsigned char)*q < 0x20)
            return NULL;
        if (*q == '"')
            break;
        if (r->end - q < 2 || !memchr("\"\\/bfnrt", q[1], 8))
            return NULL;
        escaped = true;
        q += 2;
    }
    char *out = cJSON_malloc((size_t)(q - start) + 1), *o = out;
    if (!out)
        return NULL;
    if (!escaped) {
        memcpy(out, start, (size_t)(q - start));
        o += q - start;
    }
    for (const char *c = start; escaped && c < q; c++) {
        if (*c != '\\') {
            *o++ = *c;
            continue;
        }
        switch (*++c) {
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        default: *o++ = *c; /* '"', '\\', '/' */
        }
    }
    *o = '\0';
    r->p = q + 1;
    return out;
}

static bool number_char(char c)
{
    return (c >= '0' && c <= '9') || c == '+' || c == '-' || c == 'e' || c == 'E' || c == '.';
}

/*
 * An integer of JSON's grammar with at most 15 digits, which cJSON would
 * copy whole (it copies every byte that can be part of a number) and strtod
 * would read exactly; anything else, a fraction or an exponent among them,
 * is declined.
 */
static bool number(reader_t *r, cJSON *item)
{
    const char *q = r->p + (*r->p == '-'), *digits = q;
    uint64_t v = 0;

    while (q < r->end && *q >= '0' && *q <= '9' && q - digits <= DIGITS_MAX)
        v = v * 10 + (uint64_t)(*q++ - '0');
    size_t n = (size_t)(q - digits);
    if (n == 0 || n > DIGITS_MAX || (n > 1 && digits[0] == '0') ||
        (q < r->end && number_char(*q)))
        return false;
    double d = *r->p == '-' ? -(double)v : (double)v; /* "-0" is -0.0, as strtod has it */
    item->type = cJSON_Number;
    item->valuedouble = d;
    /* cJSON saturates valueint. */
    item->valueint = d >= INT_MAX ? INT_MAX : d <= (double)INT_MIN ? INT_MIN : (int)d;
    r->p = q;
    return true;
}

static bool literal(reader_t *r, const char *word, size_t len)
{
    if ((size_t)(r->end - r->p) < len || memcmp(r->p, word, len) != 0)
        return false;
    r->p += len;
    return true;
}

static bool object(reader_t *r, cJSON *item);

static bool value(reader_t *r, cJSON *item)
{
    if (r->p == r->end)
        return false;
    switch (*r->p) {
    case '{':
        return object(r, item);
    case '"':
        item->type = cJSON_String;
        return (item->valuestring = string(r)) != NULL;
    case 't':
        item->type = cJSON_True;
        item->valueint = 1;
        return literal(r, "true", 4);
    case 'f':
        item->type = cJSON_False;
        return literal(r, "false", 5);
    case 'n':
        item->type = cJSON_NULL;
        return literal(r, "null", 4);
    default: /* a number, or declined: an array among them */
        return (*r->p == '-' || (*r->p >= '0' && *r->p <= '9')) && number(r, item);
    }
}

/* The object whose '{' is at r->p.  Members are linked in as they come, so
 * that cJSON_Delete frees what a decline leaves. */
static bool object(reader_t *r, cJSON *item)
{
    cJSON *last = NULL;

    if (++r->depth > DEPTH_MAX)
        return false;
    item->type = cJSON_Object;
    r->p++;
    skip_blanks(r);
    if (r->p < r->end && *r->p == '}') {
        r->p++;
        r->depth--;
        return true;
    }
    for (;;) {
        cJSON *member = new_item();
        if (!member)
            return false;
        if (last) {
            last->next = member;
            member->prev = last;
        } else {
            item->child = member;
        }
        item->child->prev = member; /* cJSON keeps the last member there */
        last = member;

        if (r->p == r->end || *r->p != '"' || !(member->string = string(r)))
            return false;
        skip_blanks(r);
        if (r->p == r->end || *r->p != ':')
            return false;
        r->p++;
        skip_blanks(r);
        if (!value(r, member))
            return false;
        skip_blanks(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            skip_blanks(r);
        } else if (r->p < r->end && *r->p == '}') {
            r->p++;
            r->depth--;
            return true;
        } else {
            return false;
        }
    }
}

cJSON *emu_plainjson_parse(const char *text, size_t len)
{
    reader_t r = {text, text + len, 0};
    cJSON *root;

    if (len == 0 || text[0] != '{' || !(root = new_item()))
        return NULL;
    if (!object(&r, root) || r.p != r.end) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}
