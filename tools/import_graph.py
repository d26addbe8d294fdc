"""uniaudio's import graph, checked: `python tools/import_graph.py [PACKAGE_DIR]` prints which part
imports which and exits 1 on an upward import, a circle, or an import of a module that does not
exist (tests/test_layers.py runs it).

Every import counts, also one inside a function or under `if TYPE_CHECKING:`: a lazy import
is still a dependency. Parts sit in layers, data flowing up the list; a part may import
its own layer and those below it, never one above:

    core       config, files, storage, mirror, registry, dsp, mixing, prosody, dnsmos, transcribers, textnorm, audio,
               manifest, checkpoint, models
    tokenize   tokenizers and the vocabulary
    pipeline   Ray data engine and auditory sentences
    demo       the demo corpora (written in the layouts the pipeline's recipes read)
    train      tokenizer trainers, the LM and its generator
    benchmark  tasks, suites, systems, metrics, leaderboards
    cli        the commands
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "uniaudio"
CORE = ("config", "files", "storage", "mirror", "registry", "dsp", "mixing", "prosody", "dnsmos", "transcribers",
        "textnorm", "audio", "manifest", "checkpoint", "models")
UNRESOLVED: list[str] = []  # imports of uniaudio modules that do not exist (filled by `imports`)
LAYERS = [("core", CORE), ("tokenize",), ("pipeline",), ("demo",), ("train",), ("benchmark",), ("cli", "__main__")]


def layer_of(module: str) -> int:
    """uniaudio.X[.Y] -> the index of X's layer (the package root `uniaudio` is core)."""
    part = module.split(".")[1] if "." in module else "config"
    for i, names in enumerate(LAYERS):
        if part in names or (names[0] == "core" and part in CORE):
            return i
    raise KeyError(f"{module}: part {part!r} is in no layer of tools/import_graph.py (add it to LAYERS)")


def modules(root: Path = ROOT) -> dict[str, Path]:
    out = {}
    for f in sorted(root.rglob("*.py")):
        parts = f.relative_to(root.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The uniaudio modules `name` imports (a `from pkg import sub` names the submodule)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("uniaudio") and target not in known:
                UNRESOLVED.append(f"{name}: from {'.' * node.level}{node.module or ''} import ... ({target} does not exist)")
            targets = [f"{target}.{a.name}" if f"{target}.{a.name}" in known else target for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:  # uniaudio.x.y.Name -> the module that holds Name
                t = t.rpartition(".")[0]
            if t.startswith("uniaudio") and t != name:
                found.add(t)
    return found


def graph(root: Path = ROOT) -> dict[str, set[str]]:
    UNRESOLVED.clear()
    mods = modules(root)
    return {m: imports(m, p, set(mods)) for m, p in mods.items()}


def upward(g: dict[str, set[str]]) -> list[str]:
    return [f"{a} -> {b} ({LAYERS[layer_of(a)][0]} imports {LAYERS[layer_of(b)][0]})"
            for a in sorted(g) for b in sorted(g[a]) if layer_of(b) > layer_of(a)]


def circles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted. A package's
    `__init__` that imports its submodules is not a circle by itself; a submodule importing
    back from its package's `__init__` is."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    sys.setrecursionlimit(10000)
    for v in sorted(g):
        if v not in index:
            visit(v)
    return sorted(out)


def main(argv: list[str]) -> int:
    g = graph(Path(argv[0]).resolve() if argv else ROOT)
    parts: dict[str, set[str]] = defaultdict(set)
    for a, bs in g.items():
        for b in bs:
            pa, pb = LAYERS[layer_of(a)][0], LAYERS[layer_of(b)][0]
            if pa != pb:
                parts[pa].add(pb)
    for name, *_ in LAYERS:
        print(f"{name:10s} -> {', '.join(sorted(parts[name], key=lambda p: [n[0] for n in LAYERS].index(p))) or '-'}")
    bad_up, bad_circle = upward(g), circles(g)
    for line in bad_up:
        print(f"upward import: {line}")
    for group in bad_circle:
        print(f"circle: {' <-> '.join(group)}")
    for line in UNRESOLVED:
        print(f"unresolved: {line}")
    print(f"{len(g)} modules, {sum(map(len, g.values()))} imports: "
          f"{len(bad_up)} upward, {len(bad_circle)} circle(s), {len(UNRESOLVED)} unresolved")
    return 1 if bad_up or bad_circle or UNRESOLVED else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
