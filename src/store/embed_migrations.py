#!/usr/bin/env python3
"""Embeds migrations/NNNN_name.sql into a C array, so the binary migrates on its own."""
import pathlib
import re
import sys

out = pathlib.Path(sys.argv[1])
files = sorted(pathlib.Path(p) for p in sys.argv[2:])
seen = set()
lines = ['/* Generated from migrations/ by embed_migrations.py; do not edit. */',
         '#include "store/migrations.h"', '', 'const cd_migration_t cd_migrations[] = {']
for f in files:
    m = re.fullmatch(r'(\d{4})_([a-z0-9_]+)\.sql', f.name)
    if not m:
        sys.exit(f'{f}: migration files are named NNNN_name.sql')
    if m.group(1) in seen:
        sys.exit(f'{f}: version {m.group(1)} is used twice')
    seen.add(m.group(1))
    sql = f.read_text(encoding='utf-8')
    literal = '\n'.join('    "' + l.replace('\\', '\\\\').replace('"', '\\"') + '\\n"'
                        for l in sql.splitlines())
    lines.append(f'  {{"{m.group(1)}", "{f.name}",\n{literal}}},')
lines += ['};', f'const size_t cd_migrations_count = {len(files)};', '']
out.write_text('\n'.join(lines))
