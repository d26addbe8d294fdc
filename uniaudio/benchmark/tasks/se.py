"""Speech enhancement: noisy speech -> clean speech.
The task, its demo test set and what makes the demo set."""

from __future__ import annotations

import numpy as np

from ... import audio
from ...mixing import add_at_ratio
from ...manifest import Record
from .base import DemoSuite, Task, metric, output_file, register


def add_noise(clean: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    """Clean speech + brown-ish noise at an exact SNR (deterministic)."""
    rng = np.random.default_rng(seed)
    noise = np.cumsum(rng.standard_normal(len(clean)))
    noise -= np.convolve(noise, np.ones(200) / 200, mode="same")
    return add_at_ratio(clean, noise, snr_db)


def demo(s: DemoSuite) -> list[Record]:
    """Each test utterance under brown-ish noise at 5 dB SNR."""
    out = []
    for k, r in enumerate(s.speech):
        clean, sr = audio.load(r.path, 16000)
        noisy = audio.save(output_file(s.root / "se_noisy", r.id, ".wav"), add_noise(clean, 5.0, s.seed * 1000 + k), sr)
        out.append(Record(**{**r.__dict__, "extra": {**r.extra, "input_path": str(noisy), "snr_db": 5.0}}))
    return out


TASK = register(Task("se", "audio", (metric("pesq"), metric("stoi"), metric("stoi", extended=True), metric("si_sdr"),
                                     metric("dnsmos")),
                     "noisy speech -> clean speech", {"ref_audio": "path"}, input="extra:input_path",
                     systems=("passthrough", "ground-truth"), demo=demo))
