"""LJ Speech: ROOT/metadata.csv (`ID|transcription|normalized`, no header) + wavs/ID.wav."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ...manifest import Record
from .common import REJECT_KEY, decode_lines


def recipe(root: Path, split: str | None = None, corpus: str = "ljspeech") -> Iterator[Record]:
    meta = root / "metadata.csv"
    if not meta.is_file():
        raise FileNotFoundError(f"LJ Speech: {meta} not found (expected ROOT/metadata.csv and ROOT/wavs/)")
    for n, (line, raw) in enumerate(decode_lines(meta.read_bytes())):
        extra: dict = {}
        if line is None:
            uid = raw.split(b"|", 1)[0].decode("ascii", "replace")
            text, extra[REJECT_KEY] = None, f"invalid_utf8: metadata.csv line {n + 1}"
        elif not line.strip():
            continue
        else:
            parts = line.split("|")
            uid = parts[0]
            text = (parts[2] if len(parts) > 2 and parts[2] else parts[1] if len(parts) > 1 else "").strip()
            if len(parts) > 1 and parts[1] != text:
                extra["original_text"] = parts[1]
        path = root / "wavs" / f"{uid}.wav"
        yield Record(id=uid, corpus=corpus, split=split or "train", domain="speech", path=str(path),
                     text=text, speaker="LJ", language="en", extra=extra)
