#!/usr/bin/env python3
"""The include graph of vidfeat's rooms, and the house rule that it points downwards.

  tools/ci/include_graph.py [SOURCE_DIR] [--dot FILE]

Reads every #include "..." (and #include <vidfeat/...>) of the files under src/ and include/vidfeat/,
gives each file and each included file its room (src/<room>/... and include/vidfeat/<room>/...),
prints the room -> room edges with their include counts, and exits 1 when a room includes one that
sits higher on the data path (README "Layout of the code", docs/DESIGN.md):

  common, config                           level 0, 1
  decode, clip, model, mpi                 level 2  (the stages; mpi is the MPI plumbing)
  store, zoo                               level 3  (store is written through mpi; zoo names and fetches
                                                     the published models built by model/)
  pipeline                                 level 4  (decode -> clip -> model -> store, per rank)
  run                                      level 5  (the distributed run: manifest, waves, signals)
  cli                                      level 6  (the commands)

An include may go to its own room, to another room of its level or to a lower one. A folder that is
not in the table (a room added later) is reported with its edges and does not fail the check; add
it to LEVELS. The upward includes listed in KNOWN (file and include, each with its reason) are
printed as known and do not fail; any other upward include does, also between the same two rooms.
--dot FILE writes the graph for Graphviz (upward edges in red).
"""
import collections
import os
import re
import sys

LEVELS = {
    "common": 0,
    "config": 1,
    "decode": 2, "clip": 2, "model": 2, "mpi": 2,
    "store": 3, "zoo": 3,
    "pipeline": 4,
    "run": 5,
    "cli": 6,
}
# (file, include) -> why it is there for now. Keep this short: each entry is a debt.
KNOWN = {}  # none today
SOURCES = (".h", ".hpp", ".cpp", ".cc", ".c", ".inc")
INCLUDE = re.compile(r'^\s*#\s*include\s*(?:"([^"]+)"|<(vidfeat/[^>]+)>)', re.M)


def room_of(path, root):
    """The room of a file given by its path relative to the source root, or None (not ours)."""
    parts = os.path.relpath(path, root).split(os.sep)
    if len(parts) >= 3 and parts[0] == "src":
        return parts[1]
    if len(parts) >= 4 and parts[0] == "include" and parts[1] == "vidfeat":
        return parts[2]
    return None


def resolve(name, including, root):
    """The file an #include names: the including file's folder first (quotes), then include/ and
    src/ (the include paths of src/CMakeLists.txt's targets). None when it is none of ours (a
    generated header such as vidfeat/version.h resolves to its room by name)."""
    for base in (os.path.dirname(including), os.path.join(root, "include"), os.path.join(root, "src")):
        p = os.path.normpath(os.path.join(base, name))
        if os.path.isfile(p):
            return p
    if name.startswith("vidfeat/") and name.count("/") >= 2:
        return os.path.join(root, "include", name)  # generated into the build tree: room by name
    return None


def edges_of(root):
    """(room, included room) -> [(file, line, include)], for every include between rooms and within."""
    edges = collections.defaultdict(list)
    for top in ("src", os.path.join("include", "vidfeat")):
        for d, _, files in os.walk(os.path.join(root, top)):
            for f in sorted(files):
                if not f.endswith(SOURCES):
                    continue
                path = os.path.join(d, f)
                src = room_of(path, root)
                if src is None:
                    continue
                with open(path, encoding="utf-8", errors="replace") as fh:
                    text = fh.read()
                for m in INCLUDE.finditer(text):
                    name = m.group(1) or m.group(2)
                    target = resolve(name, path, root)
                    dst = room_of(target, root) if target else None
                    if dst is None:
                        continue
                    line = text.count("\n", 0, m.start()) + 1
                    edges[(src, dst)].append((os.path.relpath(path, root), line, name))
    return edges


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    dot = argv[argv.index("--dot") + 1] if "--dot" in argv else None
    if dot in args:
        args.remove(dot)
    root = os.path.abspath(args[0] if args else os.path.join(os.path.dirname(__file__), "..", ".."))
    if not os.path.isdir(os.path.join(root, "src")):
        sys.exit(f"include_graph: {root} has no src/ folder")
    edges = edges_of(root)
    rooms = sorted({r for e in edges for r in e} | {
        r for r in os.listdir(os.path.join(root, "src")) if os.path.isdir(os.path.join(root, "src", r))},
        key=lambda r: (LEVELS.get(r, 99), r))
    unknown = [r for r in rooms if r not in LEVELS]
    upward, known = [], []
    print("rooms (level): " + ", ".join(f"{r} ({LEVELS.get(r, '?')})" for r in rooms))
    print("edges (room -> room: includes):")
    for src in rooms:
        for dst in rooms:
            if src == dst or (src, dst) not in edges:
                continue
            n = len(edges[(src, dst)])
            bad = src in LEVELS and dst in LEVELS and LEVELS[dst] > LEVELS[src]
            all_known = all((e[0], e[2]) in KNOWN for e in edges[(src, dst)])
            note = ("  UPWARD (known)" if all_known else "  UPWARD") if bad else ("  (room not in LEVELS)" if src in unknown or dst in unknown else "")
            print(f"  {src} -> {dst}: {n}{note}")
            if bad:
                for e in edges[(src, dst)]:
                    (known if (e[0], e[2]) in KNOWN else upward).append(e)
    within = sum(len(v) for (s, d), v in edges.items() if s == d)
    print(f"  (plus {within} includes within a room)")
    if dot:
        with open(dot, "w") as f:
            f.write("digraph rooms {\n  rankdir=BT;\n")
            for (s, d), v in sorted(edges.items()):
                if s != d:
                    red = s in LEVELS and d in LEVELS and LEVELS[d] > LEVELS[s]
                    f.write(f'  "{s}" -> "{d}" [label={len(v)}{", color=red" if red else ""}];\n')
            f.write("}\n")
    for r in unknown:
        print(f"include_graph: room '{r}' has no level in tools/ci/include_graph.py LEVELS: "
              "its edges are listed, not checked")
    for path, line, name in known:
        print(f"include_graph: known upward include {path}:{line}: \"{name}\": {KNOWN[(path, name)]}")
    seen = {(p, n) for p, _, n in known}
    for path, name in KNOWN:
        if (path, name) not in seen:
            print(f"include_graph: KNOWN entry {path} -> {name} is gone from the tree: remove it from KNOWN")
    if upward:
        print(f"include_graph: {len(upward)} include(s) from a lower room to a higher one:")
        for path, line, name in upward:
            print(f"  {path}:{line}: #include \"{name}\"")
        return 1
    print("include_graph: no include goes from a lower room to a higher one"
          + (f" (but for the {len(known)} known above)" if known else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
