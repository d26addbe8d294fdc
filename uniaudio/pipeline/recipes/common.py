"""Helpers shared by recipes: header fields, strict text decoding, audio lookup."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from ... import audio

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aiff", ".aif")

# A recipe never drops a row it cannot use: it marks it with this extra key and the
# planner moves it to the rejects table with the reason.
REJECT_KEY = "reject"


def header(path: Path) -> dict:
    """duration/sample_rate/channels from the header, or nulls when unreadable (the
    decode stage then rejects the file with the precise reason)."""
    try:
        i = audio.info(path)
    except audio.AudioError:
        return {"duration": None, "sample_rate": None, "channels": None}
    return {"duration": i.duration, "sample_rate": i.sample_rate, "channels": i.channels}


def decode_lines(raw: bytes) -> list[tuple[str | None, bytes]]:
    """Split bytes into lines, decoding each as UTF-8; a bad line gives (None, raw_line)."""
    out = []
    for line in raw.splitlines():
        try:
            out.append((line.decode("utf-8"), line))
        except UnicodeDecodeError:
            out.append((None, line))
    return out


def read_text(path: Path) -> tuple[str | None, str | None]:
    """(text, None) or (None, reason) for a one-utterance transcript file."""
    try:
        return path.read_bytes().decode("utf-8").strip(), None
    except UnicodeDecodeError as e:
        return None, f"invalid_utf8: {path.name} byte {e.start}"
    except OSError as e:
        return None, f"unreadable_text: {path.name}: {e.strerror}"


class Listing:
    """The names in each folder, read once: a recipe that looks for a clip under many candidate
    names (AudioCaps: 4 folders x 4 stems x 8 suffixes) asks this set instead of making a stat
    call per candidate (128 per missing clip; slow on a network filesystem)."""

    def __init__(self):
        self.names: dict[str, frozenset[str]] = {}

    def has(self, path: str) -> bool:
        folder, name = os.path.split(path)
        if folder not in self.names:
            try:
                self.names[folder] = frozenset(e.name for e in os.scandir(folder) if not e.is_dir())
            except OSError:
                self.names[folder] = frozenset()
        return name in self.names[folder]


def find_audio(candidates: Iterable[str | Path], listing: Listing | None = None) -> Path:
    """The first existing candidate, else the first one (so the row still exists and the
    decode stage rejects it as missing). With a `listing`, existence is looked up in it."""
    cands = [str(c) for c in candidates]
    for c in cands:
        if (listing.has(c) if listing is not None else os.path.isfile(c)):
            return Path(c)
    return Path(cands[0])
