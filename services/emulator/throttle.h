/*
 * throttle.h -- the service's throttle of a resource: at most a rate of
 * items per second, measured over a window of seconds (the service's is
 * 32,000 items/s over a minute).  Items are counted per second in a ring;
 * a request that would take the window past rate x window is refused whole
 * and told how long until there is room for it.
 */
#ifndef EMU_THROTTLE_H
#define EMU_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EMU_THROTTLE_WINDOW_MAX 600

typedef struct emu_throttle {
    int64_t second[EMU_THROTTLE_WINDOW_MAX]; /* the epoch second each slot counts */
    uint64_t items[EMU_THROTTLE_WINDOW_MAX];
} emu_throttle_t;

void emu_throttle_reset(emu_throttle_t *t);

/*
 * Whether count items may be taken at now_s (epoch seconds) under rate
 * items/s over window seconds; if so they are counted.  If not,
 * *retry_after_s is how long until the window has room for them (at least
 * 1, at most window).
 */
bool emu_throttle_admit(emu_throttle_t *t, int64_t now_s, unsigned rate, unsigned window,
                        size_t count, unsigned *retry_after_s);

#endif
