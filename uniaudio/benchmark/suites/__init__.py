"""Test suites: the built-in `demo` (a cache built offline) and the published test sets, one
module each, built by `benchmark suite build NAME --root CORPUS --out SUITE_DIR` from the corpus
folder a user downloaded (`base.build`). `load` resolves what `benchmark run --suite` names:
"demo", a suite folder, or an s3:// prefix holding one."""

from __future__ import annotations

import os
from pathlib import Path

from ... import storage
import importlib
import pkgutil

from .base import SUITES, Suite, SuiteError, build, card_line, read_card
from .demo import SUITE_VERSION, build_demo, build_demo_zh, find_ljspeech_mini

# every module of this package registers its suites: adding a suite is adding its module
for _m in pkgutil.iter_modules(__path__):
    if _m.name not in ("base", "demo"):
        importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["SUITES", "SUITE_VERSION", "Suite", "SuiteError", "build", "build_demo", "build_demo_zh", "card_line",
           "default_root", "find_ljspeech_mini", "load", "read_card"]


def default_root() -> Path:
    return Path(os.environ.get("UNIAUDIO_BENCHMARK_DATA", Path.home() / ".cache" / "uniaudio" / "benchmark"))


def load(suite: str, data_root: Path | None, progress: bool = False, tasks: list[str] | None = None) -> Path:
    root = data_root or default_root()
    if suite == "demo":
        return build_demo(root, progress=progress, tasks=tasks)
    if suite == "demo-zh":  # the demo's Mandarin asr and tts, from the same corpora
        return build_demo_zh(root, progress=progress)
    if storage.is_uri(suite):  # test sets in object storage: a local copy (files already here are kept)
        from ...mirror import Mirror

        return Mirror(suite).pull(same_size_kept=True).local
    path = Path(suite)
    if path.is_dir():
        return path  # a suite folder (or any folder of {task}.parquet test sets)
    if suite in SUITES:
        raise FileNotFoundError(f"{suite} is a published suite: build it from your copy of the corpus first, "
                                f"`uniaudio benchmark suite build {suite} --root CORPUS --out DIR`, then --suite DIR")
    raise FileNotFoundError(f"unknown suite {suite!r}: 'demo', 'demo-zh', a suite folder (`benchmark suite build`) "
                            "or an s3:// prefix holding {task}.parquet test sets")
