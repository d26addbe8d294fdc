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


def header(path: str | Path) -> dict:
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


# --- corpora that ship as containers (tar shards, Parquet): shared by the wds and parquet recipes ---

DEFAULT_FIELDS = {"id": "id", "text": "text", "caption": "caption", "speaker": "speaker", "language": "language"}


def sources(root: str) -> list[str]:
    """The files a container recipe reads: a path or URI, a glob of them, or a comma-separated
    list of either; sorted within each glob, in the order given across them."""
    from ... import storage

    out = []
    for part in (p.strip() for p in str(root).split(",")):
        if part:  # local paths absolute: workers on other nodes or in another folder read them
            out += [f if storage.is_uri(f) else os.path.abspath(storage.local(f)) for f in storage.glob(part)]
    return out


def lookup(meta: dict, key: str):
    """meta[key], where key may be dotted (`a.b` reads meta["a"]["b"]); None when absent."""
    cur = meta
    for part in key.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def mapped_fields(meta: dict, fields: dict[str, str]) -> tuple[dict, dict]:
    """(record fields, extra) from one item's metadata: `fields` maps a record field (id, text,
    caption, speaker, language) to the metadata key holding it; every other key goes to extra."""
    row, used = {}, set()
    for field_name, key in fields.items():
        value = lookup(meta, key)
        if value is not None:
            row[field_name] = str(value)
            used.add(key.split(".")[0])
    return row, {k: v for k, v in meta.items() if k not in used}


def memory_header(data: bytes, name: str) -> tuple[dict, str | None]:
    """(duration / sample_rate / channels, None) of audio bytes in hand, or (nulls, reject reason)."""
    try:
        i = audio.info_bytes(data, name)
    except audio.AudioError as e:
        return {"duration": None, "sample_rate": None, "channels": None}, f"{e.reason}: {e.detail or name}"
    return {"duration": i.duration, "sample_rate": i.sample_rate, "channels": i.channels}, None
