"""What every suite module holds in common: the `Suite` record, the registry (`SUITES`), and
`build`, which turns a corpus folder the user downloaded into a suite folder.

A suite folder is what `benchmark run --suite` reads: `{task}.parquet` test sets (manifests;
paths inside the folder stored relative to it, the corpus's own audio by absolute path) and
`suite.json`, its card: name and version, the source corpus and split, the rule or list that
chose the items (a list's sha256), the item counts (and the published ones), the items of a
published list the corpus lacks, the protocol's metric settings and where the numbers it
reproduces were published. Results and leaderboards carry the card's name, version and counts."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ... import manifest
from ...files import sha256_file
from ...manifest import Record

CARD = "suite.json"
CARD_SCHEMA = "uniaudio.suite/1"
MISSING_SHOWN = 20  # ids named in the error (and kept in the card: up to 1000)


class SuiteError(ValueError):
    """A suite that cannot be built as asked: the message says what and how to fix it."""


@dataclass
class BuildContext:
    """What a suite's builder gets: the corpus folder, the list file (when the suite takes one),
    the suite folder being written (files the builder makes go under it) and the seed."""
    root: Path
    out: Path
    list_file: Path | None = None
    seed: int = 0

    def check_layout(self, ok: bool, layout: str) -> None:
        if not ok:
            raise SuiteError(f"{self.root} does not look like {layout}")


@dataclass
class Built:
    """A builder's result: the test set of each task, and the listed ids the corpus lacks."""
    sets: dict[str, list[Record]]
    missing: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Suite:
    name: str
    tasks: tuple[str, ...]
    version: str  # changes when the rule or the record layout changes: results name it
    source: str  # the corpus and split as users download it
    layout: str  # what --root must hold (the wrong-layout error names it)
    rule: str  # how the items are chosen
    build: Callable[[BuildContext], Built] = field(compare=False)
    published_items: dict[str, int] = field(default_factory=dict)  # the publications' item counts
    protocol: dict = field(default_factory=dict)  # metric settings the publications use
    published: str = ""  # where the numbers it reproduces were published
    list_format: str | None = None  # what --list holds (None: the suite takes no list)
    list_default: str | None = None  # a list file under --root used when --list is not given
    list_packaged: Path | None = None  # the published list, shipped with uniaudio: used last
    list_sha256: str | None = None  # the published list's sha256: the card says whether --list is it
    preset: str | None = None  # the protocol preset (benchmark/protocols.py) a run on it uses by default


SUITES: dict[str, Suite] = {}


def register(suite: Suite) -> Suite:
    if suite.name in SUITES:
        raise ValueError(f"suite {suite.name!r} is registered twice")
    SUITES[suite.name] = suite
    return suite


def read_card(folder: str | os.PathLike) -> dict | None:
    """A suite folder's card, or None (a hand-made folder of test sets has none)."""
    p = Path(folder) / CARD
    if not p.is_file():
        return None
    try:
        card = json.loads(p.read_text())
    except ValueError:
        return None
    return card if isinstance(card, dict) and card.get("schema") == CARD_SCHEMA else None


def _identity(card: dict) -> tuple:
    return card.get("name"), card.get("source_root"), (card.get("list") or {}).get("sha256")


def build(name: str, root: str | os.PathLike, out: str | os.PathLike, *, list_file: str | os.PathLike | None = None,
          allow_missing: bool = False, seed: int = 0) -> dict:
    """Build suite `name` from the corpus at `root` into the folder `out`; returns its card.
    The folder is written beside `out` and swapped in whole. A folder that holds another build
    (another suite, corpus or list) or files no build made is refused; the same build is replaced."""
    if name not in SUITES:
        raise SuiteError(f"unknown suite {name!r}; known: {', '.join(sorted(SUITES))}")
    suite = SUITES[name]
    root, out = Path(root).resolve(), Path(out).resolve()
    if not root.is_dir():
        raise SuiteError(f"--root {root} is not a folder (expected {suite.layout})")
    lst = _list_file(suite, root, list_file)
    if out.exists() and any(out.iterdir()):
        old = read_card(out)
        want = (name, str(root), sha256_file(lst) if lst else None)
        if old is None:
            raise SuiteError(f"{out} holds files no `benchmark suite build` made: give a new or empty --out folder")
        if _identity(old) != want:
            raise SuiteError(f"{out} holds another build ({old.get('name')} from {old.get('source_root')}"
                             f"{', list ' + old['list']['file'] if old.get('list') else ''}): give a new --out folder "
                             "(two builds never share one)")
    stage = out.with_name(f".{out.name}.building-{os.getpid()}")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    try:
        built = suite.build(BuildContext(root=root, out=stage, list_file=lst, seed=seed))
        if built.missing and not allow_missing:
            raise SuiteError(f"{len(built.missing)} item(s) of the list are not in {root}: "
                             f"{', '.join(built.missing[:MISSING_SHOWN])}{' ...' if len(built.missing) > MISSING_SHOWN else ''}"
                             ". Check the corpus (and its split), or build without them: --allow-missing (the suite "
                             "card and every result on it then say 'N of M items')")
        counts = {}
        for task in suite.tasks:
            rows = built.sets.get(task, [])
            if not rows:
                raise SuiteError(f"{name}: no {task} items could be made from {root} (expected {suite.layout})")
            counts[task] = manifest.write_manifest(stage / f"{task}.parquet", rows)
        card = _card(suite, root, lst, counts, built.missing, seed)
        (stage / CARD).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
        _swap(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return card


def _list_file(suite: Suite, root: Path, given) -> Path | None:
    if suite.list_format is None:
        if given:
            raise SuiteError(f"{suite.name} takes no --list (its items follow a rule: {suite.rule})")
        return None
    if given:
        p = Path(given)
    elif suite.list_default and any((root / c).is_file() for c in (suite.list_default, Path(suite.list_default).name)):
        # ROOT as shipped (the list under it) or the list's own folder
        p = next(root / c for c in (suite.list_default, Path(suite.list_default).name) if (root / c).is_file())
    elif suite.list_packaged is not None:
        p = suite.list_packaged
    else:
        raise SuiteError(f"{suite.name} needs its published list: --list FILE ({suite.list_format})")
    if not p.is_file():
        raise SuiteError(f"--list {p} is not a file ({suite.list_format})")
    return p.resolve()


def _card(suite: Suite, root: Path, lst: Path | None, counts: dict, missing: list[str], seed: int) -> dict:
    from ... import __version__

    listed = {t: n for t, n in counts.items()}
    return {
        "schema": CARD_SCHEMA, "name": suite.name, "version": suite.version, "tasks": listed,
        "source": suite.source, "source_root": str(root), "rule": suite.rule,
        "list": {"file": lst.name, "path": str(lst), "sha256": sha256_file(lst),
                 "is_published": sha256_file(lst) == suite.list_sha256 if suite.list_sha256 else None} if lst else None,
        "published_items": suite.published_items,
        "missing": {"count": len(missing), "ids": missing[:1000]},
        "protocol": suite.protocol, "protocol_preset": suite.preset, "published": suite.published, "seed": seed,
        "built": {"uniaudio": __version__, "date": time.strftime("%Y-%m-%d")},
    }


def _swap(stage: Path, out: Path) -> None:
    """The new folder in place of the old (the same build's), never a mix of both."""
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        os.replace(out, old)
    os.replace(stage, out)
    shutil.rmtree(old, ignore_errors=True)


def card_line(card: dict) -> str:
    """How results and leaderboards name a suite: 'NAME vVERSION', and 'N of M items' when a
    published list could not be built whole."""
    line = f"{card.get('name')} v{card.get('version')}"
    missing = (card.get("missing") or {}).get("count") or 0
    if missing:
        n = sum((card.get("tasks") or {}).values())
        line += f" ({n} of {n + missing} items)"
    return line
