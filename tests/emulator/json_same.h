/*
 * json_same.h -- whether two cJSON trees are the same tree, member order,
 * valueint and the links cJSON relies on included (cJSON_Compare looks
 * members up by name and ignores valueint and the prev links).  For the
 * checks of the emulator's plain JSON parser against cJSON.
 */
#ifndef TEST_JSON_SAME_H
#define TEST_JSON_SAME_H

#include <cjson/cJSON.h>
#include <stdbool.h>

/* true when a and b are the same tree; otherwise false with why[] saying
 * where they part (a path of keys and what differs). */
bool json_same(const cJSON *a, const cJSON *b, char *why, size_t why_size);

#endif
