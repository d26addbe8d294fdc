"""VCTK 0.92: ROOT/txt/pNNN/pNNN_UUU.txt + ROOT/wav48_silence_trimmed/pNNN/pNNN_UUU_mic1.flac."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ...manifest import Record
from .common import REJECT_KEY, find_audio, read_text


def recipe(root: Path, split: str | None = None, corpus: str = "vctk", mic: str = "mic1") -> Iterator[Record]:
    for txt in sorted((root / "txt").glob("*/*.txt")):
        spk = txt.parent.name
        text, why = read_text(txt)
        wav_dir = root / "wav48_silence_trimmed" / spk
        path = find_audio([wav_dir / f"{txt.stem}_{mic}.flac", root / "wav48" / spk / f"{txt.stem}.wav"])
        extra = {"mic": mic}
        if why:
            extra[REJECT_KEY] = why
        yield Record(id=f"{txt.stem}_{mic}", corpus=corpus, split=split or "train", domain="speech",
                     path=str(path), text=text, speaker=spk, language="en", extra=extra)
