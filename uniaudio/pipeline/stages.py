"""The per-shard stages that Ray runs. One Ray Data row = one planned shard, so a stage
always sees a whole shard: decode+filter (CPU task) -> tokenize (actor pool, GPU when
present) -> write tar + done record. Audio travels between stages inside the row as a
pickled payload; the driver only ever receives the small done record."""

from __future__ import annotations

import io
import json
import os
import pickle
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from .. import audio
from .shards import file_sha256, sample_key, write_tar


def _reject(row: dict, reason: str, detail: str, seconds: float | None, stage: str) -> dict:
    return {"id": row["id"], "corpus": row["corpus"], "domain": row["domain"], "path": row["path"],
            "reason": reason, "detail": detail, "seconds": seconds, "stage": stage}


def check_quality(wav: np.ndarray, sr: int, filters: dict) -> tuple[str, str] | None:
    """(reason, detail) when the decoded audio fails a quality filter, else None."""
    seconds = len(wav) / sr
    if seconds < filters["min_duration"]:
        return "too_short", f"{seconds:.3f}s < {filters['min_duration']}s"
    if seconds > filters["max_duration"]:
        return "too_long", f"{seconds:.1f}s > {filters['max_duration']}s"
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64))))
    dbfs = 20 * np.log10(rms) if rms > 0 else -np.inf
    if dbfs < filters["silence_dbfs"]:
        return "silent", f"RMS {dbfs:.1f} dBFS < {filters['silence_dbfs']} dBFS"
    clipped = float(np.mean(np.abs(wav) >= 0.999))
    if clipped > filters["max_clipped_fraction"]:
        return "clipped", f"{clipped:.2%} of samples at full scale"
    return None


def decode_shard(task: dict) -> dict:
    """Read one shard's plan rows, decode and filter their audio."""
    rows = pq.ParquetFile(task["plan_path"]).read_row_group(task["row_group"]).to_pylist()
    items, rejects = [], []
    sr = task["sample_rate"]
    for row in rows:
        try:
            wav, _ = audio.load(row["path"], sr, offset=row["offset"] or 0.0, duration=row["duration"])
        except audio.AudioError as e:
            rejects.append(_reject(row, e.reason, e.detail, row["duration"], "decode"))
            continue
        bad = check_quality(wav, sr, task["filters"])
        if bad:
            rejects.append(_reject(row, bad[0], bad[1], len(wav) / sr, "filter"))
            continue
        items.append({"row": row, "wav": wav})
    return {"prefix": task["prefix"], "shard": task["shard"], "name": task["name"], "out": task["out"],
            "sample_rate": sr, "payload": pickle.dumps({"items": items, "rejects": rejects}, protocol=5)}


class TokenizeStage:
    """Actor: loads the tokenizer once, encodes every item of a shard (batched)."""

    def __init__(self, name: str, options: dict, device: str | None = None):
        from ..tokenize import get

        opts = dict(options)
        if device is not None:
            opts.setdefault("device", device)
        self.tok = get(name, **opts)

    def __call__(self, row: dict) -> dict:
        from ..tokenize import TokenizerError

        data = pickle.loads(row["payload"])
        items, rejects = [], data["rejects"]
        wavs = [it["wav"] for it in data["items"]]
        try:
            codes = self.tok.encode_batch(wavs, row["sample_rate"])
        except TokenizerError:  # isolate the bad item instead of failing the shard
            codes = []
            for w in wavs:
                try:
                    codes.append(self.tok.encode(w, row["sample_rate"]))
                except TokenizerError as e:
                    codes.append(e)
        for it, c in zip(data["items"], codes):
            if isinstance(c, Exception):
                rejects.append(_reject(it["row"], "tokenizer_error", str(c), len(it["wav"]) / row["sample_rate"], "tokenize"))
                continue
            items.append({"row": it["row"], "codes": np.asarray(c, dtype=np.int16),
                          "seconds": len(it["wav"]) / row["sample_rate"]})
        row = dict(row)
        row["payload"] = pickle.dumps({"items": items, "rejects": rejects, "tokenizer": self.tok.describe()}, protocol=5)
        return row


def _node_id() -> str | None:
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    except Exception:  # provenance only; never fail a shard over it
        return None


def write_shard(row: dict) -> dict:
    """Write the shard tar (if it has samples) and then its done record; return the record."""
    data = pickle.loads(row["payload"])
    out = Path(row["out"])
    tokenizer = data.get("tokenizer")
    samples, index = [], []
    for it in data["items"]:
        r = it["row"]
        key = sample_key(r["id"])
        meta = {k: v for k, v in r.items() if k != "shard"}
        meta["extra"] = json.loads(meta["extra"]) if meta.get("extra") else {}
        if tokenizer:
            codes = it["codes"]
            seconds, frames = it["seconds"], int(codes.shape[1])
            buf = io.BytesIO()
            np.save(buf, codes)
            members = {"codes.npy": buf.getvalue()}
            meta["tokenizer"] = tokenizer
        else:
            wav = it["wav"]
            seconds, frames = len(wav) / row["sample_rate"], len(wav)
            members = {"flac": audio.encode_flac(wav, row["sample_rate"])}
            meta["tokenizer"] = {"name": "none", "sample_rate": row["sample_rate"]}
        meta.update(decoded_seconds=seconds, frames=frames, key=key)
        members["json"] = json.dumps(meta, ensure_ascii=False, sort_keys=True).encode()
        if r.get("text"):
            members["txt"] = r["text"].encode()
        samples.append((key, members))
        index.append({"key": key, "id": r["id"], "corpus": r["corpus"], "domain": r["domain"],
                      "frames": frames, "seconds": seconds})
    record = {"shard": row["shard"], "name": row["name"], "prefix": row["prefix"], "tar": None, "sha256": None,
              "bytes": 0, "samples": index, "rejects": data["rejects"], "finished": time.time(), "node": _node_id()}
    if samples:
        tar = out / "shards" / f"{row['name']}.tar"
        sha, size = write_tar(tar, samples)
        record.update(tar=tar.name, sha256=sha, bytes=size)
    done = out / "done" / f"{row['name']}.json"
    tmp = done.with_name(f".{done.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, done)
    return {"name": row["name"], "samples": len(index), "rejects": len(data["rejects"]),
            "seconds": float(sum(i["seconds"] for i in index)), "bytes": record["bytes"]}


def is_done(out: Path, name: str, check_sha: bool = True) -> bool:
    """A shard is done when its done record exists and its tar (if any) matches the checksum."""
    done = out / "done" / f"{name}.json"
    if not done.exists():
        return False
    rec = json.loads(done.read_text())
    if rec["tar"] is None:
        return True
    tar = out / "shards" / rec["tar"]
    if not tar.exists() or tar.stat().st_size != rec["bytes"]:
        return False
    return not check_sha or file_sha256(tar) == rec["sha256"]
