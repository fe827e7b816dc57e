#!/usr/bin/python3
"""mkworld.py WORLD.L OUT.svg [TOLERANCE_DEG] - writes the world outline the
status page draws its map on (web/world.svg), from the 'world' database of
the R 'maps' package as Debian ships it (package r-cran-maps, file
/usr/lib/R/site-library/maps/mapdata/world.L). That database is Natural
Earth's 1:50m world map (public domain, naturalearthdata.com) converted by
the maps authors; this script only reads its line file, simplifies each line
(Douglas-Peucker, TOLERANCE_DEG degrees, default 0.3), drops lines shorter
than the tolerance and segments longer than 10 degrees (polygon closures
along the date line and the poles), and writes one SVG path for coasts and one for borders
between countries, in an equirectangular projection: x = longitude,
y = -latitude, viewBox -180 -90 360 180 (the page places its markers with
the same formulas).

Without installing R:  apt-get download r-cran-maps &&
  dpkg -x r-cran-maps_*.deb /tmp/maps &&
  web/mkworld.py /tmp/maps/usr/lib/R/site-library/maps/mapdata/world.L web/world.svg

world.L layout (little-endian): int32 coordinate type (2: radians), int32
number of lines, then per line a 28-byte header (int32 offset of its points,
uint16 number of points, uint16 left and right region (0: sea), 2 bytes
padding, float32 bounding box sw.x sw.y ne.x ne.y), then the points as
float32 (x, y) pairs."""
import math
import struct
import sys


def read_lines(path):
    data = open(path, "rb").read()
    ctype, n = struct.unpack_from("<ii", data, 0)
    if ctype != 2 or not 0 < n < 100000:
        raise SystemExit("%s: not a maps line file in radians (type %d, %d lines)"
                         % (path, ctype, n))
    out = []
    for i in range(n):
        off, npair, left, right = struct.unpack_from("<iHHH", data, 8 + 28 * i)
        if off + 8 * npair > len(data):
            raise SystemExit("%s: line %d points past the end of the file" % (path, i))
        pts = struct.unpack_from("<%df" % (2 * npair), data, off)
        xy = [(math.degrees(pts[k]), math.degrees(pts[k + 1]))
              for k in range(0, len(pts), 2)]
        out.append((xy, left == 0 or right == 0))
    return out


def simplify(pts, tol):
    """Douglas-Peucker, iterative."""
    if len(pts) < 3:
        return pts
    keep = [False] * len(pts)
    keep[0] = keep[-1] = True
    stack = [(0, len(pts) - 1)]
    while stack:
        a, b = stack.pop()
        (x1, y1), (x2, y2) = pts[a], pts[b]
        dx, dy = x2 - x1, y2 - y1
        norm = math.hypot(dx, dy)
        best, idx = -1.0, -1
        for k in range(a + 1, b):
            x, y = pts[k]
            d = (abs(dy * x - dx * y + x2 * y1 - y2 * x1) / norm if norm
                 else math.hypot(x - x1, y - y1))
            if d > best:
                best, idx = d, k
        if best > tol:
            keep[idx] = True
            stack.append((a, idx))
            stack.append((idx, b))
    return [p for p, k in zip(pts, keep) if k]


def split_jumps(pts, jump=10.0):
    """Pieces of a line without a segment longer than jump degrees: the
    database closes polygons along the date line and the poles, and such
    segments are no coast."""
    out, cur = [], [pts[0]]
    for p in pts[1:]:
        if math.hypot(p[0] - cur[-1][0], p[1] - cur[-1][1]) > jump:
            out.append(cur)
            cur = []
        cur.append(p)
    out.append(cur)
    return [c for c in out if len(c) > 1]


def path_of(lines):
    parts = []
    for pts in lines:
        cmd = []
        last = None
        for x, y in pts:
            p = ("%.1f" % x, "%.1f" % -y)
            if p == last:
                continue
            cmd.append(("M" if last is None else "L") + p[0] + " " + p[1])
            last = p
        if len(cmd) > 1:
            parts.append("".join(cmd).replace(" -", "-"))
    return "".join(parts)


def main():
    if len(sys.argv) not in (3, 4):
        raise SystemExit(__doc__)
    tol = float(sys.argv[3]) if len(sys.argv) == 4 else 0.3
    coast, border = [], []
    for pts, is_coast in read_lines(sys.argv[1]):
        xs = [p[0] for p in pts]
        ys = [p[1] for p in pts]
        if max(max(xs) - min(xs), max(ys) - min(ys)) < tol:
            continue
        for piece in split_jumps(pts):
            (coast if is_coast else border).append(simplify(piece, tol))
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="-180 -90 360 180">'
           '<!-- Natural Earth 1:50m (public domain) via the R maps package; '
           'simplified by web/mkworld.py -->'
           '<path fill="none" stroke="#8a9bab" stroke-width="0.2" d="%s"/>'
           '<path fill="none" stroke="#5b6e80" stroke-width="0.35" d="%s"/>'
           '</svg>\n' % (path_of(border), path_of(coast)))
    with open(sys.argv[2], "w") as f:
        f.write(svg)


if __name__ == "__main__":
    main()
