#!/usr/bin/env python3
"""Embeds page.html into a C array, so the emulator serves its page on its own."""
import pathlib
import sys

out, page = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
data = page.read_bytes()
rows = [', '.join(str(b) for b in data[i:i + 24]) for i in range(0, len(data), 24)]
out.write_text('/* Generated from page.html by embed_page.py; do not edit. */\n'
               '#include "page.h"\n\n'
               'const unsigned char emu_page_html[] = {\n    ' + ',\n    '.join(rows) + ', 0};\n'
               f'const size_t emu_page_html_len = {len(data)};\n')
