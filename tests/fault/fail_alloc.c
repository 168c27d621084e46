/*
 * fail_alloc.c -- an LD_PRELOAD allocator that fails on purpose, for tests
 * of what convdiag does when memory runs out at a given moment.
 *
 * CD_FAIL_ALLOC_SIZE=N makes every malloc of N to N + 64 bytes asked for by
 * the program itself (not by one of its libraries) return NULL: with N one
 * more than the size of some message, that is the copy of that message and
 * nothing else.  Everything else goes to the C library's allocator.
 */
#include <errno.h>
#include <link.h>
#include <stdint.h>
#include <stdlib.h>

extern void *__libc_malloc(size_t size);

static size_t fail_size = (size_t)-1;
static uintptr_t text_start, text_end; /* the program's executable segment */

/* The first object dl_iterate_phdr lists is the program itself. */
static int find_program(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            text_start = info->dlpi_addr + ph->p_vaddr;
            text_end = text_start + ph->p_memsz;
        }
    }
    return 1; /* only the first */
}

void *malloc(size_t size)
{
    if (fail_size == (size_t)-1) {
        const char *v = getenv("CD_FAIL_ALLOC_SIZE");
        fail_size = v ? strtoull(v, NULL, 10) : 0;
        if (fail_size)
            dl_iterate_phdr(find_program, NULL);
    }
    uintptr_t caller = (uintptr_t)__builtin_return_address(0);
    if (fail_size && size >= fail_size && size <= fail_size + 64 && caller >= text_start &&
        caller < text_end) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_malloc(size);
}
