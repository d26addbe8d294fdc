"""AISHELL-1: ROOT/data_aishell (or ROOT itself) with transcript/aishell_transcript_v0.8.txt (`ID
words...`, space-separated) and wav/{train,dev,test}/SPK/ID.wav (the per-speaker tarballs untarred).
Mandarin (`language` zh); the transcript's spaces are word boundaries, the text keeps the
characters only. A wav without a transcript line is a reject (`no_transcript`: AISHELL-1 ships
some), never an item with an empty text."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ...manifest import Record
from .common import REJECT_KEY, decode_lines

SPLITS = ("train", "dev", "test")


def _base(root: Path) -> Path:
    return root / "data_aishell" if (root / "data_aishell").is_dir() else root


def recipe(root: Path, split: str | None = None, corpus: str = "aishell") -> Iterator[Record]:
    base = _base(root)
    listing = base / "transcript" / "aishell_transcript_v0.8.txt"
    if not listing.is_file():
        raise FileNotFoundError(f"AISHELL-1: {listing} not found (expected ROOT/data_aishell/transcript/ and "
                                "ROOT/data_aishell/wav/{train,dev,test}/SPK/*.wav)")
    texts: dict[str, str] = {}
    for line, _ in decode_lines(listing.read_bytes()):
        if line and line.strip():
            uid, _, words = line.strip().partition(" ")
            texts[uid] = "".join(words.split())
    if split is not None and split not in SPLITS:
        raise ValueError(f"AISHELL-1 splits are {', '.join(SPLITS)}; got {split!r}")
    for part in (split,) if split else SPLITS:
        for wav in sorted((base / "wav" / part).glob("*/*.wav")):
            uid, speaker = wav.stem, wav.parent.name
            text = texts.get(uid)
            extra = {} if text else {REJECT_KEY: f"no_transcript: {uid} has no line in {listing.name}"}
            yield Record(id=uid, corpus=corpus, split=part, domain="speech", path=str(wav), text=text,
                         speaker=speaker, language="zh", extra=extra)
