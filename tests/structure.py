#!/usr/bin/env python3
"""Structure checks scripts/test runs over the crates' non-test code (src/, durable/src/, cli/src/):

- no module cycle between folders: an edge A -> B for every `crate::B` path in A, where A and B
  are a crate's top-level modules (a folder such as `durable/src/core/` is one node);
- the hub crate's folders in layers (LAYERS): a folder uses only the ones before it, so the core
  imports nothing from the internal API or the glue; the Worker and the CLI use no hub module
  outside CONTRACT (not the core);
- no module cycle between files: an edge for every path (`crate::..`, `super::..`, `self::..`
  or a child module's name in a `use`) resolved to the file that declares it;
- no file name used twice for different concepts: a name in two places must be listed in SAME,
  which says what the one concept is (`mod.rs`, `lib.rs`, `main.rs` and test files aside);
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
# The hub crate's top-level modules, lowest first (durable/src/lib.rs's module map).
LAYERS = ["clock", "settings", "log", "wire", "auth", "feeds", "core", "api", "hub"]
# What the Worker and the CLI may name in the hub crate: its contract and value types, shared
# settings and the clock, never the core's state machine.
CONTRACT = {"wire", "auth", "api", "feeds", "settings", "clock", "log", "HubObject"}
# File names that are a role, not a concept.
ROLES = {"mod.rs", "lib.rs", "main.rs", "tests.rs"}
# A file name in more than one place, with the one concept it names in each of them. A new file
# under one of these names elsewhere fails until it is added here (or renamed).
SAME = {
    "feeds.rs": ("the upstream feeds: the core's decisions and the hub's glue for them",
                 {"durable/src/core/feeds.rs", "durable/src/hub/feeds.rs"}),
    "upkeep.rs": ("the alarm's jobs: what the core schedules and the hub's alarm that runs them",
                  {"durable/src/core/upkeep.rs", "durable/src/hub/upkeep.rs"}),
    "socket.rs": ("one socket's life: the core's decisions and the hub's glue for them",
                  {"durable/src/core/socket.rs", "durable/src/hub/socket.rs"}),
    "conflation.rs": ("conflated delivery: the core's side (intervals, classes) and the hub's ticks",
                      {"durable/src/core/conflation.rs", "durable/src/hub/conflation.rs"}),
    "settings.rs": ("typed wrangler vars: the shared parser and hub limits, the feeds' vars, the Worker's",
                    {"durable/src/settings.rs", "durable/src/feeds/settings.rs", "src/settings.rs"}),
    "read.rs": ("the read routes (`/snapshot`, `/history`): the core's pages and the hub's glue",
                {"durable/src/core/read.rs", "durable/src/hub/read.rs"}),
    "answer.rs": ("HTTP answers as the API documents them: the Worker's and the hub's",
                  {"src/answer.rs", "durable/src/hub/answer.rs"}),
    "router.rs": ("which route a request names, and the dispatch to it: the Worker's and the hub's",
                  {"src/router.rs", "durable/src/hub/router.rs"}),
    "publish.rs": ("an app publish: the Worker's checks, the hub's checks and glue, the CLI's command",
                   {"src/publish.rs", "durable/src/core/publish.rs", "durable/src/hub/publish.rs",
                    "cli/src/publish.rs"}),
    "presence.rs": ("presence channels: their frames, the core's state, the hub's glue, the Worker's `/api/presence` checks",
                    {"src/presence.rs", "durable/src/wire/presence.rs", "durable/src/core/presence.rs",
                     "durable/src/hub/presence.rs"}),
    "snapshot.rs": ("`/api/snapshot`: the Worker's answer and the CLI's reading of it",
                    {"src/snapshot.rs", "cli/src/snapshot.rs"}),
}


def code_lines(path):
    """The file's lines before its `#[cfg(test)]` module, comments blanked."""
    out = []
    for line in open(path, encoding="utf-8"):
        if re.match(r"\s*#\[cfg\(test\)\]", line):
            break
        out.append(re.sub(r"^\s*//.*$", "", line.rstrip("\n")))
    return out


def is_test(src, path):
    """`tests.rs` or a file under a `tests/` folder: a module's tests in their own files."""
    rel = os.path.relpath(path, os.path.join(ROOT, src))
    return os.path.basename(rel) == "tests.rs" or "tests" in rel.split(os.sep)[:-1]


def sources(src):
    for dirpath, dirnames, files in os.walk(os.path.join(ROOT, src)):
        dirnames.sort()
        for f in sorted(files):
            path = os.path.join(dirpath, f)
            if f.endswith(".rs") and not is_test(src, path):
                yield path


def module_path(src, path):
    """`durable/src/core/commit.rs` -> ("core", "commit"); a `mod.rs` or `lib.rs` is its folder."""
    rel = os.path.relpath(path, os.path.join(ROOT, src))[: -len(".rs")]
    parts = tuple(rel.split(os.sep))
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


def top_module(src, path):
    parts = module_path(src, path)
    return parts[0] if parts else "lib"


def use_paths(text):
    """Every path in the code: `a::b::{c, d::e}` gives a::b::c and a::b::d::e (one level of
    braces, which is all rustfmt leaves in this code)."""
    for m in re.finditer(r"\b((?:\w+::)+)\{([^{}]*)\}", text):
        for item in m.group(2).split(","):
            item = item.strip().split(" as ")[0].strip()
            if item and item != "self":
                yield m.group(1) + item
            elif item == "self":
                yield m.group(1)[:-2]
    for m in re.finditer(r"\b(\w+(?:::\w+)+)", text):
        yield m.group(1)


def resolve(modules, me, path):
    """The file a path names: its longest prefix that is a module, from `crate`, `super`,
    `self`, or a child of `me`."""
    segs = path.split("::")
    if segs[0] == "crate":
        base, rest = (), segs[1:]
    elif segs[0] in ("super", "self"):
        base = me
        while segs and segs[0] in ("super", "self"):
            if segs[0] == "super":
                base = base[:-1]
            segs = segs[1:]
        rest = segs
    elif me + (segs[0],) in modules:
        base, rest = me, segs
    else:
        return None
    best = base if base in modules else None
    for i in range(1, len(rest) + 1):
        if base + tuple(rest[:i]) in modules:
            best = base + tuple(rest[:i])
    return best


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


def file_names(findings):
    """A file name in two places must be one concept, listed in SAME with exactly those places."""
    where = {}
    for src in CRATES.values():
        for path in sources(src):
            where.setdefault(os.path.basename(path), set()).add(os.path.relpath(path, ROOT))
    for name, places in sorted(where.items()):
        if name in ROLES or len(places) < 2:
            continue
        listed = SAME.get(name, (None, set()))[1]
        if places != listed:
            findings.append(f"file name {name} is used for more than one concept: {', '.join(sorted(places))}"
                            " (rename one, or list the one concept in SAME)")


def main():
    findings = []
    literals = {}
    for crate, src in CRATES.items():
        edges, where = {}, {}
        files = list(sources(src))
        modules = {module_path(src, p): os.path.relpath(p, ROOT) for p in files}
        file_edges, file_where = {}, {}
        for path in files:
            rel = os.path.relpath(path, ROOT)
            lines = code_lines(path)
            if len(lines) > MAX_LINES:
                findings.append(f"{rel}: {len(lines)} lines of code (limit {MAX_LINES})")
            me = top_module(src, path)
            mine = module_path(src, path)
            for n, line in enumerate(lines, 1):
                for m in re.finditer(r"\bcrate::(\w+)", line):
                    if m.group(1) != me:
                        edges.setdefault(me, set()).add(m.group(1))
                        where.setdefault((me, m.group(1)), f"{rel}:{n}")
                for p in use_paths(line):
                    target = resolve(modules, mine, p)
                    if target is not None and target != mine:
                        to = modules[target]
                        file_edges.setdefault(rel, set()).add(to)
                        file_where.setdefault((rel, to), f"{rel}:{n}")
                for text in ONCE:
                    if text in line:
                        literals.setdefault(text, []).append(f"{rel}:{n}")
                for m in ROUTE.finditer(line):
                    literals.setdefault(m.group(1), []).append(f"{rel}:{n}")
        if crate == "tickwire-hub":
            for path in files:
                if top_module(src, path) not in LAYERS + ["lib"]:
                    findings.append(f"{os.path.relpath(path, ROOT)}: a top-level module not in LAYERS")
            for (a, b), place in sorted(where.items()):
                if a in LAYERS and b in LAYERS and LAYERS.index(b) > LAYERS.index(a):
                    findings.append(f"{place}: {a} uses {b}, a layer above it (LAYERS)")
        else:
            for path in files:
                rel = os.path.relpath(path, ROOT)
                for n, line in enumerate(code_lines(path), 1):
                    for m in re.finditer(r"\btickwire_hub::(\w+)", line):
                        if m.group(1) not in CONTRACT:
                            findings.append(f"{rel}:{n}: uses tickwire_hub::{m.group(1)}, outside the contract")
        for comp in cycles(edges):
            proof = ", ".join(where[(a, b)] for a in comp for b in comp if (a, b) in where)
            findings.append(f"{crate}: module cycle {' <-> '.join(comp)} ({proof})")
        for comp in cycles(file_edges):
            proof = ", ".join(file_where[(a, b)] for a in comp for b in comp if (a, b) in file_where)
            findings.append(f"{crate}: file cycle {' <-> '.join(comp)} ({proof})")
    file_names(findings)
    for text, places in sorted(literals.items()):
        if len(places) > 1:
            findings.append(f"{text} is written {len(places)} times: {', '.join(places)}")
    for f in findings:
        print(f"structure: {f}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
