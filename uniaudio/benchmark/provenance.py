"""Where a result came from: toolkit version and git commit (dirty or not), device, library
versions and the test set's checksum. Recorded in every aggregate.json at run time, shown by
`benchmark publish`."""

from __future__ import annotations

import platform
import subprocess
from functools import lru_cache
from pathlib import Path

from .. import __version__

LIBRARIES = ("torch", "numpy", "transformers", "faster-whisper", "jiwer", "pesq", "pystoi", "speechmos",
             "resemblyzer", "pycocoevalcap", "soundfile", "soxr")


@lru_cache(maxsize=1)
def toolkit() -> dict:
    """uniaudio's version and, in a git checkout, its commit and whether the tree is dirty."""
    root = Path(__file__).resolve().parents[2]
    out = {"uniaudio": __version__, "git_commit": None, "git_dirty": None}
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10)
        if commit.returncode == 0:
            out["git_commit"] = commit.stdout.strip()
            status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=10)
            out["git_dirty"] = bool(status.stdout.strip()) if status.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        pass
    return out


@lru_cache(maxsize=1)
def device() -> dict:
    d = {"machine": platform.machine(), "processor": platform.processor() or None, "gpu": None}
    try:
        import torch

        if torch.cuda.is_available():
            d["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return d


@lru_cache(maxsize=1)
def libraries() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out
