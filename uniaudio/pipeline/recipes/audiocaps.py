"""AudioCaps: ROOT/{train,val,test}.csv (`audiocap_id,youtube_id,start_time,caption`) and the
clips you downloaded, found as ROOT/audio/{split}/{ytid}.*, ROOT/{split}/{ytid}.*,
ROOT/audio/{ytid}.* or with a `Y` prefix. One record per clip; all its captions in extra."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterator

from ...manifest import Record
from .common import AUDIO_SUFFIXES, REJECT_KEY, Listing, find_audio


def _candidates(root: Path, split: str, ytid: str, start: str) -> list[str]:
    dirs = [f"{root}/audio/{split}", f"{root}/{split}", f"{root}/audio", str(root)]
    stems = [ytid, f"Y{ytid}", f"{ytid}_{start}", f"{ytid}_{start}000"]
    return [f"{d}/{s}{ext}" for d in dirs for s in stems for ext in AUDIO_SUFFIXES]


def recipe(root: Path, split: str | None = None, corpus: str = "audiocaps") -> Iterator[Record]:
    splits = [split] if split else [s for s in ("train", "val", "test") if (root / f"{s}.csv").is_file()]
    if not splits:
        raise FileNotFoundError(f"AudioCaps: no train/val/test.csv in {root}")
    listing = Listing()
    for sp in splits:
        raw = (root / f"{sp}.csv").read_bytes()
        bad_utf8 = None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            text, bad_utf8 = raw.decode("utf-8", "replace"), f"invalid_utf8: {sp}.csv byte {e.start}"
        clips: dict[str, dict] = {}
        for row in csv.DictReader(io.StringIO(text)):
            c = clips.setdefault(row["youtube_id"], {"start": row["start_time"], "captions": [], "ids": []})
            c["captions"].append(row["caption"])
            c["ids"].append(row["audiocap_id"])
        for ytid, c in clips.items():
            path = find_audio(_candidates(root, sp, ytid, c["start"]), listing)
            extra = {"youtube_id": ytid, "start_time": float(c["start"]), "captions": c["captions"],
                     "audiocap_ids": c["ids"]}
            if bad_utf8 and any("\ufffd" in cap for cap in c["captions"]):
                extra[REJECT_KEY] = bad_utf8
            yield Record(id=f"audiocaps-{sp}-{ytid}", corpus=corpus, split=sp, domain="sound", path=str(path),
                         caption=c["captions"][0], language="en", extra=extra)
