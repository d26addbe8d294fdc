"""One module per corpus layout; each `recipe(root, split=None, ...)` lazily yields manifest
`Record`s and never stops on a bad item (it marks it for the rejects table instead)."""

from __future__ import annotations

import sys
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


class RecipeError(ValueError):
    """A root folder that does not hold the recipe's layout (or lacks its listing files)."""


def layout(name: str) -> str:
    """What a recipe expects under its root: the first line of its module's docstring."""
    doc = sys.modules[RECIPES[name].__module__].__doc__ or name
    return " ".join(doc.split("\n\n")[0].split())


def records(name: str, root: str | Path, split: str | None = None, **kw) -> Iterator[Record]:
    """The recipe's rows, lazily. A root that yields no row at all is a `RecipeError` naming
    the layout the recipe expected, never an empty manifest."""
    if name not in RECIPES:
        raise KeyError(f"unknown recipe {name!r}; known: {', '.join(sorted(RECIPES))}")
    root = Path(root)
    if not root.is_dir():
        raise RecipeError(f"recipe {name!r}: root {root} is not a directory")
    return _checked(name, root, split, RECIPES[name](root, split=split, **kw))


def _checked(name: str, root: Path, split: str | None, rows: Iterator[Record]) -> Iterator[Record]:
    n = 0
    try:
        for r in rows:
            n += 1
            yield r
    except FileNotFoundError as e:  # a listing file the layout needs (metadata.csv, {split}.csv, ...)
        raise RecipeError(f"recipe {name!r} on {root}: {e}") from None
    if n == 0:
        where = f"{root}" + (f" (split {split!r})" if split else "")
        raise RecipeError(f"recipe {name!r} found nothing of its layout under {where}; expected {layout(name)}")
