"""The one checkpoint module: every trainer and loader saves and loads through it, and the
layout of a trainer's resume file (`training_state`) is described here, once.

Saving is atomic (a temporary sibling, fsync, rename), so a crash never leaves a torn file
under the final name. Loading is `torch.load(weights_only=True)`: a checkpoint is data from
elsewhere, and a full unpickle would run whatever code a downloaded file carries. Our own
checkpoints hold only tensors, numbers, strings and containers, which that allows."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import storage


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

    p = str(path) if storage.is_uri(path) else Path(path)
    if not (storage.exists(p) if isinstance(p, str) else p.is_file()):
        raise CheckpointError(f"checkpoint not found: {p}")
    try:
        if isinstance(p, str):  # in object storage: a temporary download (torch reads local files)
            with storage.local_file(p) as f:
                return torch.load(f, map_location=map_location, weights_only=True)
        return torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{p}: refusing to load objects other than tensors and plain data "
                              f"(weights_only=True): {first}") from None
    except (RuntimeError, EOFError, ValueError) as e:  # truncated, not a zip/pickle, wrong magic
        raise CheckpointError(f"{p}: not a readable torch checkpoint ({type(e).__name__}: {e})") from None


# --- the training state: what every trainer's OUT/last.pt holds -----------------------------------
#
#   model          the state dict being trained (the LM keeps LoRA adapters apart from their base)
#   optimizer      the optimizer's state dict
#   step           completed optimizer steps
#   train_config   the training config as a dict (the codec trainers compare its `model` on resume)
#   rng            one {"torch": CPU generator state, "cuda": this rank's CUDA state or None} per rank
#   ...            what one trainer adds: the LM `batches`, `world`, `workers`, `resume_fields`,
#                  `model_config`; the codec `config`, `disc`, `disc_optimizer`; the factorized
#                  codec `config`, `bpe`
#
# Beside it each trainer writes its inference file (model.pt, codec.pt, factorized.pt: weights and
# what loading them needs, no optimizer), saved in one `save_all` with the inference file first.
TRAINING_STATE_KEYS = ("model", "optimizer", "step", "train_config", "rng")


def training_state(model: dict, optimizer: dict, step: int, train_config: dict, rngs: list[dict], **extra) -> dict:
    """A last.pt in the layout above (`extra`: the trainer's own keys)."""
    return {"model": model, "optimizer": optimizer, "step": step, "train_config": train_config, "rng": rngs, **extra}


def rng_state(device) -> dict:
    """This process's random state: the CPU generator, and the CUDA one of `device` when it is a GPU."""
    import torch

    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(device) if getattr(device, "type", None) == "cuda" else None}


def load_training_state(path: str | os.PathLike) -> dict:
    """A last.pt, checked for the layout's keys (CheckpointError naming what is missing). Files
    written before the layout (the codec trainers' `torch_rng` / `cuda_rng`) are read as it."""
    ck = load(path)
    if not isinstance(ck, dict):
        raise CheckpointError(f"{path}: not a training state (a {type(ck).__name__})")
    if "rng" not in ck and "torch_rng" in ck:
        ck["rng"] = [{"torch": ck.pop("torch_rng"), "cuda": ck.pop("cuda_rng", None)}]
    missing = [k for k in TRAINING_STATE_KEYS if k not in ck]
    if missing:
        raise CheckpointError(f"{path}: not a training state of this version (missing {', '.join(missing)}); "
                              "resume needs the last.pt a trainer wrote, or start in a new out folder")
    return ck


def restore_rng(state: dict, device) -> None:
    """Set this process's random state from one entry of `rng` (`rng_state`)."""
    import torch

    torch.set_rng_state(state["torch"])
    if getattr(device, "type", None) == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)
