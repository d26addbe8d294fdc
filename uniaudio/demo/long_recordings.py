"""Long in-the-wild-like recordings for the curation stages: the demo's speech joined with pauses
(`DIR/long/*.wav`, 16 kHz), one of them under background noise, and one with no speech at all
(low noise only: the segmentation's "no speech" case). `DIR/long/spans.json` says where each
utterance was placed, so segments can be checked against the truth. Read with the `folder`
recipe (`--input folder:DIR/long`)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

from .. import audio

SR = 16000


def build(root: Path, speech_files: list[tuple[str, Path]], noise_file: Path | None, seed: int,
          per_recording: int = 8) -> dict:
    """Recordings of `per_recording` utterances each from `speech_files` [(id, path)] (in order),
    pauses of 0.4-2.5 s between them (some short enough to stay inside one segment), 1.5 s of
    silence at both ends; the second recording under `noise_file` at 12 dB SNR; plus 20 s of
    40 s of low noise with no speech. Returns the summary written to spans.json."""
    from ..mixing import add_at_ratio

    rng = random.Random(f"long-{seed}")
    dest = root / "long"
    dest.mkdir(parents=True, exist_ok=True)
    groups = [speech_files[i:i + per_recording] for i in range(0, len(speech_files) - per_recording + 1,
                                                             per_recording)]
    spans = {}
    for k, group in enumerate(groups):
        parts, placed, t = [np.zeros(int(1.5 * SR), np.float32)], [], 1.5
        for j, (uid, path) in enumerate(group):
            wav, _ = audio.load(path, SR)
            placed.append({"id": uid, "start": round(t, 4), "end": round(t + len(wav) / SR, 4)})
            parts.append(wav)
            t += len(wav) / SR
            pause = 1.5 if j == len(group) - 1 else rng.choice([0.4, 0.6, 1.8, 2.5])
            parts.append(np.zeros(int(pause * SR), np.float32))
            t += int(pause * SR) / SR
        rec = np.concatenate(parts)
        name = f"long-{k:02d}"
        if k == 1 and noise_file is not None:
            noise, _ = audio.load(noise_file, SR)
            rec = add_at_ratio(rec, noise, 12.0)
            name += "-noisy"
        audio.save(dest / f"{name}.wav", rec, SR)
        spans[name] = {"seconds": round(len(rec) / SR, 4), "utterances": placed}
    quiet = (np.random.default_rng(seed).standard_normal(40 * SR) * 0.003).astype(np.float32)
    audio.save(dest / "long-silence.wav", quiet, SR)
    spans["long-silence"] = {"seconds": 40.0, "utterances": []}
    (dest / "spans.json").write_text(json.dumps(spans, indent=2) + "\n")
    return {"root": str(dest), "recordings": len(spans),
            "hours": round(sum(s["seconds"] for s in spans.values()) / 3600, 4)}
