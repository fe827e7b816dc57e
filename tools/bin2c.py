#!/usr/bin/python3
"""bin2c.py NAME IN OUT.c - writes IN's bytes as a C array, for embedding a
build product (the compiled XDP program) in the library:

    const unsigned char NAME[]; const size_t NAME_len;
"""
import sys


def main():
    name, src, dst = sys.argv[1:4]
    data = open(src, "rb").read()
    with open(dst + ".tmp", "w") as out:
        out.write("/* Generated from %s by tools/bin2c.py; do not edit. */\n"
                  % src)
        out.write("#include <stddef.h>\n\n")
        out.write("extern const unsigned char %s[];\n" % name)
        out.write("extern const size_t %s_len;\n" % name)
        out.write("const unsigned char %s[] __attribute__((aligned(8))) = {\n"
                  % name)
        for i in range(0, len(data), 12):
            out.write("\t" + ", ".join("0x%02x" % b for b in data[i:i + 12])
                      + ",\n")
        out.write("};\nconst size_t %s_len = %d;\n" % (name, len(data)))
    import os
    os.replace(dst + ".tmp", dst)


if __name__ == "__main__":
    main()
