#!/usr/bin/env python3
"""Import cycles between the top-level modules of each crate.

A module `a` depends on `b` when a non-test, non-comment line of a file under
`a` names `crate::b`. Prints every pair of modules that depend on each other
(directly or through others) and exits 1 if there is any, except the pairs
in ALLOWED: a type and its private codec.

usage: scripts/module-cycles.py CRATE_DIR...
"""
import os
import re
import sys

ALLOWED = {
    ("protocol", ("decode", "frame")),  # ClientFrame/ServerFrame and their private decoder
}


def top_module(src, path):
    parts = os.path.relpath(path, src)[: -len(".rs")].split(os.sep)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


def edges_of(crate):
    src = os.path.join(crate, "src")
    edges = {}
    for root, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(root, name)
            parts = top_module(src, path)
            if not parts or "tests" in parts or parts[-1] == "test_support":
                continue
            with open(path, encoding="utf-8") as f:
                text = f.read().split("\n#[cfg(test)]")[0]
            code = "\n".join(l for l in text.split("\n") if not l.strip().startswith("//"))
            for dep in re.findall(r"crate::([a-z_][a-z0-9_]*)", code):
                if dep != parts[0]:
                    edges.setdefault(parts[0], set()).add(dep)
    return edges


def reaches(edges, start, goal):
    seen, todo = set(), [start]
    while todo:
        for n in edges.get(todo.pop(), ()):
            if n == goal:
                return True
            if n not in seen:
                seen.add(n)
                todo.append(n)
    return False


def main(crates):
    bad = []
    for crate in crates:
        name = os.path.basename(os.path.normpath(crate))
        edges = edges_of(crate)
        pairs = sorted({tuple(sorted((a, b))) for a in edges for b in edges[a] if reaches(edges, b, a)})
        bad += [f"{name}: {a} <-> {b}" for a, b in pairs if (name, (a, b)) not in ALLOWED]
    print("\n".join(bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
