"""MusicCaps: ROOT/musiccaps-public.csv (`ytid,start_s,end_s,audioset_positive_labels,aspect_list,
caption,author_id,is_balanced_subset,is_audioset_eval`) + downloaded clips ROOT/audio/{ytid}.* or ROOT/{ytid}.*.
split: `eval` for is_audioset_eval rows, else `train`."""

from __future__ import annotations

import ast
import csv
from pathlib import Path
from typing import Iterator

from ...manifest import Record
from .common import AUDIO_SUFFIXES, Listing, find_audio


def recipe(root: Path, split: str | None = None, corpus: str = "musiccaps") -> Iterator[Record]:
    meta = root / "musiccaps-public.csv"
    if not meta.is_file():
        raise FileNotFoundError(f"MusicCaps: {meta} not found")
    listing = Listing()
    with open(meta, newline="", encoding="utf-8", errors="replace") as f:
        for row in csv.DictReader(f):
            sp = "eval" if row["is_audioset_eval"].strip().lower() == "true" else "train"
            if split and sp != split:
                continue
            ytid = row["ytid"]
            path = find_audio([f"{d}/{ytid}{ext}" for d in (root / "audio", root) for ext in AUDIO_SUFFIXES], listing)
            try:
                aspects = ast.literal_eval(row["aspect_list"])
            except (ValueError, SyntaxError):
                aspects = row["aspect_list"]
            yield Record(id=f"musiccaps-{ytid}", corpus=corpus, split=sp, domain="music", path=str(path),
                         caption=row["caption"], language="en",
                         extra={"ytid": ytid, "start_s": float(row["start_s"]), "end_s": float(row["end_s"]),
                                "labels": row["audioset_positive_labels"].split(","), "aspects": aspects,
                                "author_id": row["author_id"]})
