#!/usr/bin/python3
"""schema2c.py SCHEMA.sql OUT.c - writes the schema as the C string
store_schema_sql (db/store.h), so the binaries need no data file. Run by
the Makefile whenever db/schema.sql changes."""
import sys

if len(sys.argv) != 3:
    sys.exit("usage: schema2c.py SCHEMA.sql OUT.c")
src, dst = sys.argv[1], sys.argv[2]
sql = open(src, encoding="utf-8").read()
out = ["/* Generated from %s by tools/schema2c.py; do not edit. */" % src,
       '#include "db/store.h"', "", "const char store_schema_sql[] ="]
for line in sql.splitlines(keepends=True):
    esc = line.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t").replace("\n", "\\n")
    out.append('\t"%s"' % esc)
out[-1] += ";"
with open(dst + ".tmp", "w") as f:
    f.write("\n".join(out) + "\n")
import os  # noqa: E402
os.replace(dst + ".tmp", dst)
