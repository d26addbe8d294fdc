"""`uniaudio pipeline verify OUT`: re-read every shard and check it against the records."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from .. import audio
from .shards import file_sha256, read_tar


def verify(out: str | Path) -> dict:
    """Checks checksums, keys, decodability of every member, index/shard agreement and that
    no id appears twice. Returns {"shards", "samples", "problems": [...]}."""
    out = Path(out)
    problems: list[str] = []
    seen: dict[str, str] = {}
    n_shards = n_samples = 0
    index = pq.read_table(out / "index.parquet").to_pylist() if (out / "index.parquet").exists() else None
    if index is None:
        problems.append("index.parquet missing (run did not finish)")
    for done in sorted((out / "done").glob("*.json")):
        rec = json.loads(done.read_text())
        if rec["tar"] is None:
            continue
        n_shards += 1
        tar = out / "shards" / rec["tar"]
        if not tar.exists():
            problems.append(f"{rec['tar']}: missing")
            continue
        if file_sha256(tar) != rec["sha256"]:
            problems.append(f"{rec['tar']}: sha256 mismatch")
            continue
        expected = [s["key"] for s in rec["samples"]]
        got = []
        for key, members in read_tar(tar):
            got.append(key)
            n_samples += 1
            try:
                meta = json.loads(members["json"])
                if "codes.npy" in members:
                    codes = np.load(io.BytesIO(members["codes.npy"]))
                    if codes.ndim != 2 or codes.shape[1] != meta["frames"]:
                        raise ValueError(f"codes shape {codes.shape} vs {meta['frames']} frames")
                elif "flac" in members:
                    wav, _ = audio.decode_bytes(members["flac"], f"{rec['tar']}:{key}.flac")
                    if len(wav) != meta["frames"]:
                        raise ValueError(f"{len(wav)} samples vs {meta['frames']} frames")
                else:
                    raise ValueError("no codes.npy or flac member")
            except (KeyError, ValueError, audio.AudioError) as e:
                problems.append(f"{rec['tar']}:{key}: {e}")
                continue
            if meta["id"] in seen:
                problems.append(f"id {meta['id']!r} in {seen[meta['id']]} and {rec['tar']}")
            seen[meta["id"]] = rec["tar"]
        if got != expected:
            problems.append(f"{rec['tar']}: keys differ from the done record")
    if index is not None:
        idx_ids = sorted(r["id"] for r in index)
        if idx_ids != sorted(seen):
            problems.append(f"index.parquet lists {len(idx_ids)} ids, shards hold {len(seen)}")
    return {"shards": n_shards, "samples": n_samples, "problems": problems}
