/* page.h -- the page at GET /, generated from page.html by embed_page.py. */
#ifndef EMU_PAGE_H
#define EMU_PAGE_H

#include <stddef.h>

extern const unsigned char emu_page_html[];
extern const size_t emu_page_html_len;

#endif
