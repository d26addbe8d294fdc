"""One module per corpus layout; each `recipe(root, split=None, ...)` lazily yields manifest
`Record`s and never stops on a bad item (it marks it for the rejects table instead)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

from ...manifest import Record
from . import audiocaps, clotho, folder, librilight, librispeech, libritts, ljspeech, musiccaps, vctk

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
}


def records(name: str, root: str | Path, split: str | None = None, **kw) -> Iterator[Record]:
    if name not in RECIPES:
        raise KeyError(f"unknown recipe {name!r}; known: {', '.join(sorted(RECIPES))}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"recipe {name!r}: root {root} is not a directory")
    return RECIPES[name](root, split=split, **kw)
