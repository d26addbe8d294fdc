"""What every trainer (lm, codec, factorized) shares: the learning-rate schedule, the device,
the process group, the subnormal-float flush, Ctrl-C handling, the log truncation of a resume
and the error for unreadable training data."""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path

import torch


def warmup_cosine(step: int, lr: float, warmup: int, horizon: int | None, min_ratio: float) -> float:
    """The learning rate for the update after `step` completed steps: linear warm-up over
    `warmup` steps, then cosine decay to lr x min_ratio at step `horizon` (held there after it);
    horizon None = constant lr after the warm-up. Each trainer chooses its horizon (the LM:
    lr_decay_steps or steps; the codec: lr_decay_steps; the factorized codec: each phase's end)."""
    if step < warmup:
        return lr * (step + 1) / warmup
    if horizon is None:
        return lr
    t = min(1.0, (step - warmup) / max(1, horizon - warmup))
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def distributed() -> tuple[int, int, int]:
    """(rank, world size, local rank); joins the process group torchrun set up."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, 0
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0"))


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """"auto" = this process's GPU when torch sees one, else the CPU; a cuda name without a GPU
    is an error that says so."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device={name!r} but torch sees no CUDA device (torch {torch.__version__}); use device: cpu")
    return torch.device(name)


def autocast(device: torch.device, dtype: str):
    """(context, dtype name): bfloat16 autocast when asked for, or with "auto" on a GPU that
    supports it; float32 otherwise."""
    use_bf16 = dtype == "bfloat16" or (dtype == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())
    if use_bf16:
        return torch.autocast(device.type, dtype=torch.bfloat16), "bfloat16"
    return contextlib.nullcontext(), "float32"


def flush_subnormals() -> None:
    """Subnormal floats (|x| < 1.2e-38) take microcode assists on x86 CPUs: lm-tiny resumed at
    step 1200 ran 0.55 s a step, 0.33-0.36 s with them flushed to zero (2 threads). Values that
    small carry nothing for training. GPU kernels are unaffected; the setting stays for the rest
    of the process (CPU threads of a notebook included)."""
    torch.set_flush_denormal(True)


def truncate_log(path: Path, step: int) -> None:
    """Keep the records of a JSONL log up to `step` (a torn last line goes too): a resume redoes
    the steps an interrupted run logged after its last checkpoint."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("step", 0) <= step:
            keep.append(line)
    from ..files import atomic_write_text

    atomic_write_text(path, "".join(k + "\n" for k in keep))


class UnreadableData(RuntimeError):
    """Training data that cannot be read (files listed but missing or undecodable)."""


def listing(bad: list[tuple[str, str]], limit: int = 5) -> str:
    """'path (reason); ...' for the first `limit` of (path, reason) pairs, '... and N more'."""
    shown = "; ".join(f"{p} ({r})" for p, r in bad[:limit])
    return shown + (f"; ... and {len(bad) - limit} more" if len(bad) > limit else "")


class StopRequest:
    """SIGINT / SIGTERM during training: the step in progress finishes, a checkpoint is saved and
    the trainer returns (a second Ctrl-C aborts at once). Several processes agree on stopping
    with an all-reduce at log steps only (where the loop syncs with the device anyway), so every
    rank saves and leaves at the same step and a GPU step never waits for the host in between."""

    def __init__(self, world: int, device: torch.device):
        import signal
        import threading

        self.world, self.device, self.name, self.previous = world, device, None, {}
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, sig, frame) -> None:
        import signal

        self.name = signal.Signals(sig).name
        signal.signal(sig, self.previous.get(sig, signal.SIG_DFL))  # the second one is not caught

    def requested(self, may_sync: bool) -> bool:
        if self.world == 1:
            return self.name is not None
        if not may_sync:
            return False
        import torch.distributed as dist

        flag = torch.tensor([1.0 if self.name else 0.0], device=self.device)
        dist.all_reduce(flag)
        if flag.item() > 0 and self.name is None:
            self.name = "stop on another rank"
        return flag.item() > 0

    def restore(self) -> None:
        import signal

        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}
