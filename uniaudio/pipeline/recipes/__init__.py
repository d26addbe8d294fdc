"""One module per corpus layout; each `recipe(root, split=None, ...)` lazily yields manifest
`Record`s and never stops on a bad item (it marks it for the rejects table instead).

A recipe only lists: ids, paths, transcripts and captions from the layout's listing files.
Audio headers (duration, sample rate, channels: ~1 ms a file here, far more on a network
filesystem) are read by `records` in batches of files, through a map the caller gives (Ray
tasks in `pipeline run`), for every row whose duration the layout did not state."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Callable, Iterator

from ... import storage
from ...manifest import Record
from ..cluster import MapFn, serial_map
from . import (aishell, audiocaps, clotho, folder, lhotse, librilight, librispeech, libritts, ljspeech, musiccaps, parquet,
               vctk, wds)
from .common import REJECT_KEY, header

RECIPES: dict[str, Callable[..., Iterator[Record]]] = {
    "librispeech": librispeech.recipe,
    "libritts": libritts.recipe,
    "ljspeech": ljspeech.recipe,
    "vctk": vctk.recipe,
    "librilight": librilight.recipe,
    "audiocaps": audiocaps.recipe,
    "clotho": clotho.recipe,
    "musiccaps": musiccaps.recipe,
    "folder": folder.recipe,
    "wds": wds.recipe,
    "parquet": parquet.recipe,
    "lhotse": lhotse.recipe,
    "aishell": aishell.recipe,
}


class RecipeError(ValueError):
    """A root folder that does not hold the recipe's layout (or lacks its listing files)."""


def layout(name: str) -> str:
    """What a recipe expects under its root: the first line of its module's docstring."""
    doc = sys.modules[RECIPES[name].__module__].__doc__ or name
    return " ".join(doc.split("\n\n")[0].split())


HEADER_BATCH = 256  # files per header task
HEADER_WINDOW = 32  # header tasks in flight: the rows held in memory are bounded by both


def records(name: str, root: str | Path, split: str | None = None, *, map_fn: MapFn = serial_map,
            **kw) -> Iterator[Record]:
    """The recipe's rows with their audio headers, lazily. A root that yields no row at all is
    a `RecipeError` naming the layout the recipe expected, never an empty manifest."""
    if name not in RECIPES:
        raise KeyError(f"unknown recipe {name!r}; known: {', '.join(sorted(RECIPES))}")
    if takes_files(name):  # container recipes: ROOT names tar / Parquet files (globs, lists, URIs); naming
        root = str(root)   # none is `_checked`'s error (no second listing of a bucket here)
    else:
        root = Path(root)
        if not root.is_dir():
            raise RecipeError(f"recipe {name!r}: root {root} is not a directory")
    if "map_fn" in inspect.signature(RECIPES[name]).parameters:  # it lists its containers in parallel
        kw["map_fn"] = map_fn
    return _with_headers(_checked(name, root, split, RECIPES[name](root, split=split, **kw)), map_fn)


def takes_files(name: str) -> bool:
    """Whether a recipe's ROOT names files (a path, glob, list or URI) rather than a folder."""
    return getattr(sys.modules[RECIPES[name].__module__], "ROOT_IS", "folder") == "files"


def placement(name: str) -> str:
    """How a recipe's items are placed in output shards: "position" (manifest order: items of one
    container together, read front to back) for recipes that say PLACEMENT = "position", else
    "hash" (by id: shards of even size, whatever the folder layout)."""
    return getattr(sys.modules[RECIPES[name].__module__], "PLACEMENT", "hash")


def read_headers(paths: list[str]) -> list[dict]:
    """One header task: duration / sample_rate / channels of each file (nulls when unreadable)."""
    return [header(p) for p in paths]


def _fill(rows: list[Record], map_fn: MapFn) -> list[Record]:
    need = [i for i, r in enumerate(rows) if r.duration is None and not r.extra.get(REJECT_KEY)]
    groups = [need[i:i + HEADER_BATCH] for i in range(0, len(need), HEADER_BATCH)]
    for group, heads in zip(groups, map_fn(read_headers, [([rows[i].path for i in g],) for g in groups])):
        for i, h in zip(group, heads):
            rows[i].duration, rows[i].sample_rate, rows[i].channels = h["duration"], h["sample_rate"], h["channels"]
    return rows


def _with_headers(rows: Iterator[Record], map_fn: MapFn) -> Iterator[Record]:
    window: list[Record] = []
    for r in rows:
        window.append(r)
        if len(window) >= HEADER_BATCH * HEADER_WINDOW:
            yield from _fill(window, map_fn)
            window = []
    yield from _fill(window, map_fn)


def _checked(name: str, root: Path, split: str | None, rows: Iterator[Record]) -> Iterator[Record]:
    n = 0
    try:
        for r in rows:
            n += 1
            yield r
    except (FileNotFoundError, storage.StorageError) as e:  # a listing file the layout needs, an object
        raise RecipeError(f"recipe {name!r} on {root}: {e}") from None
    if n == 0:
        where = f"{root}" + (f" (split {split!r})" if split else "")
        raise RecipeError(f"recipe {name!r} found nothing of its layout under {where}; expected {layout(name)}")
