"""Build all demo corpora under one root, in parallel, with a progress bar."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from . import long_recordings, mandarin, music, singing, sounds, speech
from .tools import require, soundfont, version


def build_demo(root: str | os.PathLike, *, seed: int = 0, scale: float = 1.0, workers: int | None = None,
               progress: bool = True) -> dict:
    """Write the three demo corpora under `root`; returns the summary also saved as demo.json."""
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    require("espeak-ng")
    require("fluidsynth")
    require("text2wave")  # Festival: the singing corpus
    soundfont()
    root = Path(root)
    ls_root, ac_root, mc_root = root / "LibriSpeech", root / "audiocaps", root / "musiccaps"
    utts, clips, pieces = speech.plan(seed, scale), sounds.plan(seed, scale), music.plan(seed, scale)

    speech.write_index_files(utts, ls_root)
    sounds.write_csvs(clips, ac_root)
    music.write_csv(pieces, mc_root)

    # Subprocess-bound work (espeak-ng, fluidsynth) overlaps well in threads.
    jobs: list[Callable[[], Path]] = (
        [lambda u=u: speech.synthesize(u, ls_root) for u in utts]
        + [lambda c=c: sounds.synthesize(c, ac_root) for c in clips]
        + [lambda p=p: music.synthesize(p, mc_root) for p in pieces]
    )
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2) as pool:
        for _ in tqdm(pool.map(lambda j: j(), jobs), total=len(jobs), desc="demo corpora", unit="file",
                      disable=not progress):
            pass

    # long recordings for the curation stages: the training speech joined with pauses
    train = sorted((u for u in utts if not u.speaker.split.startswith("test")), key=lambda u: u.id)
    noise = clips[0].path(ac_root) if clips else None
    long = long_recordings.build(root, [(u.id, u.path(ls_root)) for u in train], noise, seed)
    songs = singing.write_training_corpus(root / "singing", seed, scale)
    zh = mandarin.write_corpus(root / "aishell", seed, scale)  # the second language, in AISHELL-1's layout
    summary = {
        "seed": seed,
        "scale": scale,
        "corpora": {
            "librispeech": {"root": str(ls_root), "utterances": len(utts), "speakers": len({u.speaker.id for u in utts})},
            "audiocaps": {"root": str(ac_root), "clips": len(clips), "captions": sum(len(c.captions) for c in clips)},
            "musiccaps": {"root": str(mc_root), "clips": len(pieces)},
            "long": long,
            "singing": songs,
            "aishell": zh,
        },
        "tools": {"espeak-ng": version("espeak-ng"), "fluidsynth": version("fluidsynth"), "soundfont": soundfont()},
    }
    (root / "demo.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
