"""LibriLight: ROOT/{small,medium,large}/SPK/BOOK/NAME.flac + same-name NAME.json (no text)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from ...manifest import Record
from .common import REJECT_KEY


def recipe(root: Path, split: str | None = None, corpus: str = "librilight") -> Iterator[Record]:
    for flac in sorted(root.rglob("*.flac")):
        spk, book = flac.parent.parent.name, flac.parent.name
        subset = flac.parent.parent.parent.name
        if split and subset != split:
            continue
        extra: dict = {"book": book}
        meta = flac.with_suffix(".json")
        if meta.is_file():
            try:
                info = json.loads(meta.read_bytes().decode("utf-8"))
                for k in ("snr", "voice_activity"):
                    if k in info:
                        extra[k] = info[k]
                title = (info.get("book_meta") or {}).get("title")
                if title:
                    extra["book_title"] = title
            except (UnicodeDecodeError, ValueError) as e:
                extra[REJECT_KEY] = f"bad_metadata: {meta.name}: {e}"
        yield Record(id=f"{spk}-{book}-{flac.stem}", corpus=corpus, split=subset, domain="speech",
                     path=str(flac), speaker=spk, language="en", extra=extra)
