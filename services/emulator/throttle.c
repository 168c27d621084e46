/* throttle.c -- items per second over a window; see throttle.h. */
#include "throttle.h"

#include <string.h>

void emu_throttle_reset(emu_throttle_t *t) { memset(t, 0, sizeof(*t)); }

/* The slot of second s, emptied if it last counted an older second. */
static uint64_t *slot(emu_throttle_t *t, int64_t s)
{
    size_t i = (size_t)(s % EMU_THROTTLE_WINDOW_MAX);
    if (t->second[i] != s) {
        t->second[i] = s;
        t->items[i] = 0;
    }
    return &t->items[i];
}

bool emu_throttle_admit(emu_throttle_t *t, int64_t now_s, unsigned rate, unsigned window,
                        size_t count, unsigned *retry_after_s)
{
    if (window == 0)
        window = 1;
    if (window > EMU_THROTTLE_WINDOW_MAX)
        window = EMU_THROTTLE_WINDOW_MAX;
    uint64_t limit = (uint64_t)rate * window, used = 0;
    for (unsigned k = 0; k < window; k++)
        used += *slot(t, now_s - k);
    if (used + count <= limit) {
        *slot(t, now_s) += count;
        return true;
    }
    /* Room comes as the oldest seconds leave the window. */
    unsigned wait = 1;
    for (unsigned k = window; k-- > 0; wait++) {
        used -= *slot(t, now_s - k);
        if (used + count <= limit)
            break;
    }
    *retry_after_s = wait > window ? window : wait;
    return false;
}
