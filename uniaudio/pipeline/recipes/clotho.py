"""Clotho v2: ROOT/clotho_captions_{split}.csv (`file_name,caption_1..caption_5`) + ROOT/{split}/FILE."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator

from ...manifest import Record

SPLITS = ("development", "validation", "evaluation")


def recipe(root: Path, split: str | None = None, corpus: str = "clotho") -> Iterator[Record]:
    splits = [split] if split else [s for s in SPLITS if (root / f"clotho_captions_{s}.csv").is_file()]
    if not splits:
        raise FileNotFoundError(f"Clotho: no clotho_captions_{{split}}.csv in {root}")
    for sp in splits:
        with open(root / f"clotho_captions_{sp}.csv", newline="", encoding="utf-8", errors="replace") as f:
            for row in csv.DictReader(f):
                caps = [row[k] for k in sorted(row) if k.startswith("caption") and row[k]]
                path = root / sp / row["file_name"]
                yield Record(id=f"clotho-{sp}-{Path(row['file_name']).stem}", corpus=corpus, split=sp,
                             domain="sound", path=str(path), caption=caps[0] if caps else None, language="en",
                             extra={"captions": caps, "file_name": row["file_name"]})
