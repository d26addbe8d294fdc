"""`uniaudio pipeline export --lhotse DIR OUTPUT`: a finished pipeline output as Lhotse manifests
(`recordings.jsonl.gz`, `supervisions.jsonl.gz`, `cuts.jsonl.gz`), for the items that are in its
shards (what passed every filter), pointing at their source audio.

Written in Lhotse's JSONL layout by the standard library (Lhotse is needed to read them, not to
write them; the tests load them with Lhotse). Items that came from Lhotse keep their recording
as it was read; others get one recording per source file (its `file` or `url` source, the
channels it has). Items whose audio is a member of a tar or a Parquet file cannot be a Lhotse
source: they are counted and named in the summary, not written."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pyarrow.parquet as pq

from .. import storage
from .plan import plan_files

FILES = ("recordings.jsonl.gz", "supervisions.jsonl.gz", "cuts.jsonl.gz")


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


def export(out: str | Path, dest: str | Path) -> dict:
    """Write the three manifests into `dest`; returns counts and the items left out."""
    out, dest = Path(out), Path(dest)
    index = out / "index.parquet"
    if not index.is_file():
        raise FileNotFoundError(f"{out} has no index.parquet: export a finished `uniaudio pipeline run` output")
    kept = set(pq.read_table(index, columns=["id"]).column("id").to_pylist())
    recordings: dict[str, dict] = {}
    sups, cuts, members = [], [], []
    for part in plan_files(out):
        for row in pq.read_table(part).to_pylist():
            if row["id"] not in kept:
                continue
            if storage.is_member(row["path"]):
                members.append(row["id"])
                continue
            extra = json.loads(row["extra"]) if row.get("extra") else {}
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
        storage.write_bytes(str(dest / name), buf.getvalue())
    return {"recordings": len(recordings), "supervisions": len(sups), "cuts": len(cuts),
            "left_out_members": len(members), "left_out_examples": members[:5], "folder": str(dest)}
