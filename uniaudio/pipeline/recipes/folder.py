"""Any folder. With a manifest (JSONL or CSV, one row per item, `path` relative to ROOT or
absolute, any manifest column such as id, text, caption, speaker, offset, duration, domain),
rows come from it; without one, every audio file under ROOT is an item, its id the relative
path and its text a same-name .txt/.lab when present."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Iterator

from ...manifest import COLUMNS, Record
from .common import AUDIO_SUFFIXES, REJECT_KEY, read_text

NUMERIC = {"offset": float, "duration": float, "sample_rate": int, "channels": int}


def _rows(manifest: Path) -> Iterator[tuple[int, dict | None, str | None]]:
    if manifest.suffix.lower() in (".jsonl", ".json"):
        with open(manifest, "rb") as f:
            for n, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                try:
                    yield n, json.loads(raw.decode("utf-8")), None
                except (UnicodeDecodeError, ValueError) as e:
                    yield n, None, f"bad_manifest_line: {manifest.name} line {n}: {e}"
    else:
        with open(manifest, newline="", encoding="utf-8", errors="replace") as f:
            for n, row in enumerate(csv.DictReader(f), 2):
                yield n, {k: v for k, v in row.items() if v not in ("", None)}, None


def recipe(root: Path, split: str | None = None, corpus: str | None = None, manifest: str | None = None,
           domain: str = "speech") -> Iterator[Record]:
    corpus = corpus or root.name
    if manifest:
        mpath = Path(manifest) if Path(manifest).is_absolute() else root / manifest
        for n, row, why in _rows(mpath):
            if row is None:
                yield Record(id=f"{corpus}-line{n}", corpus=corpus, split=split or "train", domain=domain,
                             path=str(mpath), extra={REJECT_KEY: why})
                continue
            extra = dict(row.pop("extra", None) or {})
            extra.update({k: row.pop(k) for k in list(row) if k not in COLUMNS})
            for k, conv in NUMERIC.items():
                if k in row:
                    try:
                        row[k] = conv(row[k])
                    except (TypeError, ValueError):
                        extra[REJECT_KEY] = f"bad_field: {k}={row.pop(k)!r}"
            p = Path(row.get("path", ""))
            path = p if p.is_absolute() else root / p
            rid = row.pop("id", None) or str(p.with_suffix("")).replace("/", "-")
            fields = {"corpus": corpus, "split": split or "train", "domain": domain, "offset": 0.0, **row}
            fields.update(id=rid, path=str(path), extra=extra)
            yield Record(**fields)
        return
    for f in sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
        rel = f.relative_to(root).with_suffix("")
        text, extra = None, {}
        for side in (f.with_suffix(".txt"), f.with_suffix(".lab")):
            if side.is_file():
                text, why = read_text(side)
                if why:
                    extra[REJECT_KEY] = why
                break
        yield Record(id=str(rel).replace("/", "-"), corpus=corpus, split=split or "train", domain=domain,
                     path=str(f), text=text, extra=extra)
