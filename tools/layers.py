#!/usr/bin/python3
"""layers.py [--self-test] - checks the source tree's layering (README, "How
it fits together"): which folder may include which, which system headers
belong to one folder only, and no include cycle between modules (a module
is x.c + x.h). Prints every violation as FILE:LINE: why, and exits 1 if
there is any. Run by `make layers` (and so by `make test`).

--self-test runs the checker on small made-up trees, one per rule, and
fails unless each bad tree is caught and the good one passes."""
import os
import re
import sys
import tempfile

# Folder -> the folders its files may include (besides its own).
# One way: dnsd -> policy -> geo; dnsd -> db; ctl -> db, policy; db loads
# into policy's types; cluster (etcd) -> db; dnsd, ctl -> cluster; health (the probe agent and the health state
# machine) uses nothing of dnsd's; everything may use common/.
ALLOWED = {
    "common": set(),
    "geo": {"common"},
    "health": {"common", "geo"},
    "policy": {"common", "geo", "health"},
    "db": {"common", "geo", "health", "policy"},
    "cluster": {"common", "geo", "health", "policy", "db"},
    "dnsd": {"common", "geo", "health", "policy", "db", "cluster"},
    "ctl": {"common", "geo", "health", "policy", "db", "cluster"},
}
# System headers that only one folder may include.
OWNED = {
    "sqlite3.h": "db",          # only the store knows SQLite
    "maxminddb.h": "geo",       # only geo/ reads MMDB files
}
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def sources(root):
    for folder in sorted(ALLOWED):
        d = os.path.join(root, folder)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if name.endswith((".c", ".h")) and not name.endswith(".bpf.c"):
                yield folder, os.path.join(folder, name)


def module(path):
    return os.path.splitext(path)[0]


def check(root):
    problems = []
    edges = {}                  # module -> {module: (file, line)}
    for folder, rel in sources(root):
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                kind, inc = m.groups()
                where = "%s:%d" % (rel, n)
                if kind == "<":
                    owner = OWNED.get(inc)
                    if owner and owner != folder:
                        problems.append("%s: <%s> outside %s/" % (where, inc, owner))
                    continue
                top = inc.split("/", 1)[0]
                if "/" not in inc or top not in ALLOWED:
                    continue
                if top != folder and top not in ALLOWED[folder]:
                    problems.append("%s: %s/ may not include %s (allowed: %s)"
                                    % (where, folder, inc,
                                       ", ".join(sorted(ALLOWED[folder])) or "nothing"))
                a, b = module(rel), module(inc)
                if a != b:
                    edges.setdefault(a, {}).setdefault(b, where)
    problems += cycles(edges)
    return problems


def cycles(edges):
    """One message per include cycle between modules."""
    out, state, stack = [], {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(edges.get(m, {})):
            if state.get(n) == 1:
                loop = stack[stack.index(n):] + [n]
                out.append("%s: include cycle %s" % (edges[m][n], " -> ".join(loop)))
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)
    return out


def self_test():
    cases = [
        ("good", {"dnsd/a.c": '#include "policy/p.h"\n#include "db/d.h"\n',
                  "policy/p.h": '#include "geo/g.h"\n', "db/d.c": "#include <sqlite3.h>\n"},
         0),
        ("sqlite outside db", {"dnsd/a.c": "#include <sqlite3.h>\n"}, 1),
        ("policy includes dnsd", {"policy/p.c": '#include "dnsd/a.h"\n'}, 1),
        ("policy includes db", {"policy/p.c": '#include "db/d.h"\n'}, 1),
        ("health includes dnsd", {"health/h.c": '#include "dnsd/snap.h"\n'}, 1),
        ("ctl includes dnsd", {"ctl/c.c": '#include "dnsd/net.h"\n'}, 1),
        ("cycle", {"dnsd/a.c": '#include "dnsd/b.h"\n', "dnsd/b.c": '#include "dnsd/a.h"\n'},
         1),
    ]
    bad = 0
    for name, files, want in cases:
        with tempfile.TemporaryDirectory() as root:
            for rel, text in files.items():
                os.makedirs(os.path.join(root, os.path.dirname(rel)), exist_ok=True)
                with open(os.path.join(root, rel), "w") as f:
                    f.write(text)
            got = len(check(root))
        if got != want:
            print("layers self-test %s: %d problem(s), expected %d" % (name, got, want))
            bad += 1
    return bad


def main(argv):
    if "--self-test" in argv:
        return 1 if self_test() else 0
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    problems = check(root)
    for p in problems:
        print("layers: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
