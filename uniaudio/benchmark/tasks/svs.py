"""Singing voice synthesis: lyrics + notes -> singing.
The task, its demo test set and what makes the demo set."""

from __future__ import annotations

from pathlib import Path

from ... import audio
from ...manifest import Record
from .base import DemoSuite, Task, metric, output_file, register


def svs_records(dest: Path, seed: int, count: int = 12) -> list[Record]:
    """Demo songs (lyrics on seeded melodies) sung by Festival's two diphone voices in turn;
    extra: notes (the score) and singer."""
    from ...demo import singing

    out = []
    for k in range(count):
        notes, singer = singing.demo_score(k, seed), singing.SINGERS[k % len(singing.SINGERS)]
        wav, sr = singing.sing(notes, singer)
        uid = f"svs-{k:02d}"
        out.append(Record(id=uid, corpus="demo-svs", split="test", domain="singing", path=str(audio.save(
            output_file(dest, uid, ".wav"), wav, sr)), text=" ".join(n["lyric"] for n in notes), speaker=singer,
            language="en", extra={"notes": notes, "singer": singer}))
    return out


def demo(s: DemoSuite) -> list[Record]:
    return svs_records(s.root / "svs_ref", s.seed)


TASK = register(Task("svs", "audio", (metric("f0"), metric("mcd"), metric("wer"), metric("dnsmos")),
                     "lyrics + notes -> singing (F0 RMSE in cents and V/UV error vs the reference singing after DTW, "
                     "MCD, lyric WER by ASR, DNSMOS)",
                     {"ref_text": "text", "ref_audio": "path", "notes": "extra:notes"}, input="extra:notes",
                     systems=("shuffled", "ground-truth", "espeak"), demo=demo))
