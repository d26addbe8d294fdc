"""Helpers shared by recipes: header fields, strict text decoding, audio lookup."""

from __future__ import annotations

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


def find_audio(candidates: Iterable[Path]) -> Path:
    """The first existing candidate, else the first one (so the row still exists and the
    decode stage rejects it as missing)."""
    cands = list(candidates)
    for c in cands:
        if c.is_file():
            return c
    return cands[0]
