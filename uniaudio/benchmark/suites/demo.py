"""The built-in `demo` suite: every task's test set, built offline from the demo corpora (and
ljspeech-mini when it is found), so `benchmark run --task all` needs nothing from the network.
Unlike the published suites it is a cache (under --data-root), rebuilt when its version changes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ... import manifest
from ..tasks import TASKS, DemoSuite

SUITE_VERSION = "demo-12"  # 5: paths relative to the suite folder (any cwd); 6: dereverb; 7: instruct_tts; 8-9: sound_edit;
# 10: svs, speech_edit; 11: plausible sentences, held-out voices the offline ASR reads; 12: corpora with
# Mandarin in espeak-ng's cmn-latn-pinyin voice (demo-zh's items)


def find_ljspeech_mini() -> Path | None:
    for cand in (os.environ.get("UNIAUDIO_SHARED_DATA"), "../shared/data", "shared/data"):
        if cand and (Path(cand) / "ljspeech-mini" / "metadata.csv").is_file():
            return Path(cand) / "ljspeech-mini"
    return None


def build_demo(root: Path, *, seed: int = 0, progress: bool = False, tasks: list[str] | None = None) -> Path:
    """Write {root}/demo/{task}.parquet, each task's test set from its own demo builder
    (`Task.demo`), once; reused after. A task's set is written on its first use: `tasks` names the
    ones needed (None: all; []: the corpora alone)."""
    from ...demo import build_demo as build_corpora

    suite = root / "demo"
    marker = suite / f".{SUITE_VERSION}"
    wanted = [t for t in (TASKS if tasks is None else tasks) if TASKS[t].demo is not None]
    if marker.exists():
        missing = [t for t in wanted if not (suite / f"{t}.parquet").exists()]
        if missing:
            _write_sets(DemoSuite(suite, suite / "corpora", seed, find_ljspeech_mini()), missing, progress)
        return suite
    if suite.is_dir() and any(suite.glob(".demo-*")):  # an older version's suite (ours: a cache) goes whole,
        shutil.rmtree(suite)  # corpora included, so no old file is reused under the new version
    if progress:
        print(f"[benchmark] building the demo suite in {suite} (once: its corpora, then each task's test set)",
              flush=True)
    corpora = suite / "corpora"
    if not (corpora / "demo.json").exists():
        build_corpora(corpora, seed=seed, scale=1.0, progress=progress)
    _write_sets(DemoSuite(suite, corpora, seed, find_ljspeech_mini()), wanted, progress)
    marker.touch()  # the others are written when a run first asks for them (above)
    return suite


def build_demo_zh(root: Path, *, progress: bool = False) -> Path:
    """{root}/demo-zh: the `demo-zh` suite (asr, tts) from the demo suite's Mandarin corpus, once;
    rebuilt when its version or the demo corpora change (a cache, like `demo`)."""
    from .base import SUITES, build, read_card

    corpora = build_demo(root, progress=progress, tasks=[]) / "corpora"
    out = root / "demo-zh"
    card = read_card(out)
    if card and card.get("version") == SUITES["demo-zh"].version and (out / f".{SUITE_VERSION}").exists() and \
            card.get("source_root") == str((corpora / "aishell").resolve()):
        return out  # built from these corpora (a new demo version rebuilds them: then this too)
    shutil.rmtree(out, ignore_errors=True)  # ours: a cache, never a user's folder
    build("demo-zh", corpora / "aishell", out)
    (out / f".{SUITE_VERSION}").touch()
    return out


def _write_sets(ctx: DemoSuite, names: list[str], progress: bool) -> None:
    from tqdm import tqdm

    for name in tqdm(names, desc="demo test sets", unit="task", disable=not progress):
        manifest.write_manifest(ctx.root / f"{name}.parquet", TASKS[name].demo(ctx))
