#!/usr/bin/env python3
"""Structure checks scripts/test runs over the crates' non-test code (src/, durable/src/, cli/src/):

- no module cycle: an edge A -> B for every `crate::B` path in A (a directory module and its
  children are one node: `hub::commit` using `super::Hub` is inside `hub`);
- no file over MAX_LINES lines, not counting a trailing `#[cfg(test)]` module;
- the hub's binding name and base URL written once, and every route path literal ("/...")
  written once: a route is declared in one place and used by name everywhere else.

Exits 1 with one line per finding. Plain Python, no dependencies."""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRATES = {"tickwire": "src", "tickwire-hub": "durable/src", "tickwire-cli": "cli/src"}
MAX_LINES = 400
ONCE = ['"HUB"', "hub.internal"]
# A string literal that starts with a route path: "/x", "/x/y/", "/x?q={}" (not "/" alone, not
# a file path with a dot, which static assets are).
ROUTE = re.compile(r'"(/[a-z_]+(?:/[a-z_]+)*/?)(?=["?{])')


def code_lines(path):
    """The file's lines before its `#[cfg(test)]` module, comments blanked."""
    out = []
    for line in open(path, encoding="utf-8"):
        if re.match(r"\s*#\[cfg\(test\)\]", line):
            break
        out.append(re.sub(r"^\s*//.*$", "", line.rstrip("\n")))
    return out


def sources(src):
    for dirpath, dirnames, files in os.walk(os.path.join(ROOT, src)):
        for f in sorted(files):
            # `tests.rs` is a module's `mod tests` in its own file (test code, like `durable/tests/`).
            if f.endswith(".rs") and f != "tests.rs":
                yield os.path.join(dirpath, f)


def top_module(src, path):
    rel = os.path.relpath(path, os.path.join(ROOT, src))[: -len(".rs")]
    return rel.split("/")[0]


def cycles(edges):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def main():
    findings = []
    literals = {}
    for crate, src in CRATES.items():
        edges, where = {}, {}
        for path in sources(src):
            rel = os.path.relpath(path, ROOT)
            lines = code_lines(path)
            if len(lines) > MAX_LINES:
                findings.append(f"{rel}: {len(lines)} lines of code (limit {MAX_LINES})")
            me = top_module(src, path)
            for n, line in enumerate(lines, 1):
                for m in re.finditer(r"\bcrate::(\w+)", line):
                    if m.group(1) != me:
                        edges.setdefault(me, set()).add(m.group(1))
                        where.setdefault((me, m.group(1)), f"{rel}:{n}")
                for text in ONCE:
                    if text in line:
                        literals.setdefault(text, []).append(f"{rel}:{n}")
                for m in ROUTE.finditer(line):
                    literals.setdefault(m.group(1), []).append(f"{rel}:{n}")
        for comp in cycles(edges):
            proof = ", ".join(where[(a, b)] for a in comp for b in comp if (a, b) in where)
            findings.append(f"{crate}: module cycle {' <-> '.join(comp)} ({proof})")
    for text, places in sorted(literals.items()):
        if len(places) > 1:
            findings.append(f"{text} is written {len(places)} times: {', '.join(places)}")
    for f in findings:
        print(f"structure: {f}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
