/* options.h -- the command line of convdiag-emulator. */
#ifndef EMU_OPTIONS_H
#define EMU_OPTIONS_H

#include "emulator.h"

enum {
    EMU_EXIT_OK = 0,
    EMU_EXIT_FAILURE = 1, /* could not listen, or out of memory */
    EMU_EXIT_USAGE = 2,   /* bad command line */
};

/*
 * Fills emu->conf and emu->faults from the command line.  Returns -1 when the
 * emulator is to run, else the exit code (after --help, --version or a bad
 * option, which it has reported).
 */
int emu_options_parse(int argc, char **argv, emu_t *emu);

#endif
