"""The one checkpoint module: every trainer and loader saves and loads through it.

Saving is atomic (a temporary sibling, fsync, rename), so a crash never leaves a torn file
under the final name. Loading is `torch.load(weights_only=True)`: a checkpoint is data from
elsewhere, and a full unpickle would run whatever code a downloaded file carries. Our own
checkpoints hold only tensors, numbers, strings and containers, which that allows."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, not a torch file, or holds more than plain data."""


def save(obj: Any, path: str | os.PathLike) -> Path:
    return save_all([(obj, path)])[0]


def save_all(items: list[tuple[Any, str | os.PathLike]]) -> list[Path]:
    """Save several checkpoints as one: every file is written and fsynced under a temporary
    name first, then all are renamed, in the order given. A crash while writing leaves every
    final name as it was; only a crash between two renames leaves the earlier names one save
    ahead of the later ones (trainers list the inference file before the resume file, so the
    resume redoes the steps exactly and the inference file is never behind)."""
    import torch

    staged = []
    try:
        for obj, path in items:
            p = Path(path)
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
            staged.append((tmp, p))
            with open(tmp, "wb") as f:
                torch.save(obj, f)
                f.flush()
                os.fsync(f.fileno())
        for tmp, p in staged:
            os.replace(tmp, p)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
    return [p for _, p in staged]


def load(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    import pickle

    import torch

    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}")
    try:
        return torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{p}: refusing to load objects other than tensors and plain data "
                              f"(weights_only=True): {first}") from None
    except (RuntimeError, EOFError, ValueError) as e:  # truncated, not a zip/pickle, wrong magic
        raise CheckpointError(f"{p}: not a readable torch checkpoint ({type(e).__name__}: {e})") from None
