"""`uniaudio pipeline export --lhotse DIR OUTPUT`: a finished pipeline output as Lhotse manifests
(`recordings.jsonl.gz`, `supervisions.jsonl.gz`, `cuts.jsonl.gz`), for the items that are in its
shards (what passed every filter), pointing at their source audio.

Written in Lhotse's JSONL layout by the standard library (Lhotse is needed to read them, not to
write them; the tests load them with Lhotse). Items that came from Lhotse keep their recording
as it was read; others get one recording per source file (its `file` or `url` source, the
channels it has). Items whose audio is a member of a tar or a Parquet file (corpora that ship as
WebDataset or Parquet) cannot be a Lhotse source: they go into a Lhotse *Shar* set instead,
`DIR/shar/` (`cuts.NNNNNN.jsonl.gz` + `recording.NNNNNN.tar`, the audio as FLAC, written by
Lhotse's own SharWriter, so Lhotse must be installed for them), which
`CutSet.from_shar(in_dir=DIR/shar)` reads."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import tempfile

import pyarrow.parquet as pq

from .. import storage
from .plan import plan_files

FILES = ("recordings.jsonl.gz", "supervisions.jsonl.gz", "cuts.jsonl.gz")
SHAR_SHARD = 1000  # cuts per Shar shard (Lhotse's default)


def _recording(row: dict, extra: dict) -> dict:
    if isinstance(extra.get("lhotse_recording"), dict):
        return extra["lhotse_recording"]
    sr, ch, dur = int(row["sample_rate"] or 16000), int(row["channels"] or 1), float(row["duration"])
    end = float(row["offset"] or 0.0) + dur  # the file's length is at least the item's end
    return {"id": row["id"], "sources": [{"type": "url" if storage.is_uri(row["path"]) else "file",
                                          "channels": list(range(ch)), "source": row["path"]}],
            "sampling_rate": sr, "num_samples": round(end * sr), "duration": end, "channel_ids": list(range(ch))}


def _supervision(row: dict, extra: dict, recording_id: str, start: float) -> dict:
    custom = {k: v for k, v in extra.items() if k != "lhotse_recording" and isinstance(v, (str, int, float, bool))}
    custom.update({k: row[k] for k in ("corpus", "domain", "split", "caption") if row.get(k)})
    sup = {"id": row["id"], "recording_id": recording_id, "start": start, "duration": float(row["duration"]),
           "channel": 0}
    sup.update({k: row[k] for k in ("text", "speaker", "language") if row.get(k)})
    if custom:
        sup["custom"] = custom
    return sup


def _table(path: str, columns: list[str] | None = None):
    with storage.arrow_file(path) as f:
        return pq.read_table(f, columns=columns)


def export(out: str, dest: str) -> dict:
    """Write the three manifests into `dest`; returns counts and the items left out."""
    out, dest = storage.absolute(out), str(dest)
    index = storage.join(out, "index.parquet")
    if not storage.exists(index):
        raise FileNotFoundError(f"{out} has no index.parquet: export a finished `uniaudio pipeline run` output")
    kept = set(_table(index, ["id"]).column("id").to_pylist())
    recordings: dict[str, dict] = {}
    sups, cuts = [], []
    shar = _Shar(storage.join(dest, "shar"))
    for part in plan_files(out):
        for row in _table(part).to_pylist():
            if row["id"] not in kept:
                continue
            extra = json.loads(row["extra"]) if row.get("extra") else {}
            if storage.is_member(row["path"]):
                shar.add(row, _supervision(row, extra, row["id"], 0.0))
                continue
            rec = _recording(row, extra)
            recordings.setdefault(rec["id"], rec)
            offset = float(row["offset"] or 0.0)
            sups.append(_supervision(row, extra, rec["id"], offset))
            cuts.append({"id": row["id"], "start": offset, "duration": float(row["duration"]), "channel": 0,
                         "supervisions": [dict(sups[-1], start=0.0)], "recording": rec, "type": "MonoCut"})
    for name, items in zip(FILES, (list(recordings.values()), sups, cuts)):
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
            for it in items:
                gz.write((json.dumps(it, ensure_ascii=False) + "\n").encode())
        storage.write_bytes(storage.join(dest, name), buf.getvalue())
    return {"recordings": len(recordings), "supervisions": len(sups), "cuts": len(cuts), "shar_cuts": shar.close(),
            "folder": str(dest)}


class _Shar:
    """Member-sourced items as a Lhotse Shar set (written locally, uploaded when `dest` is a URI)."""

    def __init__(self, dest: str):
        self.dest, self.writer, self.n = dest, None, 0

    def add(self, row: dict, sup: dict) -> None:
        try:
            from lhotse import MonoCut, Recording, SupervisionSegment
            from lhotse.shar import SharWriter
        except ImportError:
            raise RuntimeError(f"{row['id']} and others come from tar or Parquet members: they are exported as a "
                               "Lhotse Shar set, written by Lhotse (pip install lhotse)") from None
        if self.writer is None:
            self.local = tempfile.mkdtemp(prefix="uniaudio-shar-") if storage.is_uri(self.dest) else self.dest
            storage.makedirs(self.local)
            self.writer = SharWriter(self.local, fields={"recording": "flac"}, shard_size=SHAR_SHARD).__enter__()
        rec = Recording.from_bytes(storage.read_member(row["path"]), recording_id=row["id"])
        self.writer.write(MonoCut(id=row["id"], start=float(row["offset"] or 0.0), duration=float(row["duration"]),
                                  channel=0, recording=rec, supervisions=[SupervisionSegment.from_dict(sup)]))
        self.n += 1

    def close(self) -> int:
        if self.writer is not None:
            self.writer.close()
            if self.local != self.dest:
                for name in sorted(os.listdir(self.local)):
                    storage.upload(os.path.join(self.local, name), storage.join(self.dest, name))
                shutil.rmtree(self.local, ignore_errors=True)
        return self.n
