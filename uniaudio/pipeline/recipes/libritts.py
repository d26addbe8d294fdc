"""LibriTTS(-R): ROOT/{split}/SPK/CHAP/SPK_CHAP_UTT_SEG.wav + .normalized.txt (+ .original.txt)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ...manifest import Record
from .common import REJECT_KEY, read_text


def recipe(root: Path, split: str | None = None, corpus: str = "libritts") -> Iterator[Record]:
    for wav in sorted(root.rglob("*.wav")):
        spk, chap = wav.parent.parent.name, wav.parent.name
        this_split = wav.parent.parent.parent.name
        if split and this_split != split:
            continue
        text, why = read_text(wav.with_suffix(".normalized.txt"))
        extra = {"chapter": chap}
        original, _ = read_text(wav.with_suffix(".original.txt"))
        if original is not None:
            extra["original_text"] = original
        if why:
            extra[REJECT_KEY] = why
        yield Record(id=wav.stem, corpus=corpus, split=this_split, domain="speech", path=str(wav),
                     text=text, speaker=spk, language="en", extra=extra)
