"""Synthetic manifests for planning at scale: valid `manifest` rows whose audio files do not
exist (planning, finalize and verify never open them). LibriSpeech-like ids, speakers,
chapters, durations and short transcripts; optional damage (duplicate ids, negative
durations, recipe-flagged rows, bad `extra` JSON) at fixed rates, all from a seed.
Written in Arrow row batches, so 10M rows need no more memory than one batch.
`synthetic_done_records` then stands in for a finished run of such a plan (no tar written),
for finalize and `verify(tars=False)` at scale."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..manifest import SCHEMA

WORDS = "the of and to a in that he was it his is with as had for you her she not but at on".split()


DAMAGE = ("duplicate", "negative", "flagged", "json")


def _batch(start: int, n: int, rng: np.random.Generator, damage: tuple[str, ...]) -> pa.Table:
    idx = np.arange(start, start + n)
    spk, chap = idx // 2000, (idx // 100) % 20
    ids = [f"{s}-{c}-{u:06d}" for s, c, u in zip(spk, chap, idx)]
    dur = rng.uniform(1.0, 20.0, n)
    extra = [json.dumps({"chapter": str(c)}) for c in chap]
    # every 97th row repeats an earlier id, 89th has a negative duration, 83rd is flagged by
    # its recipe, 79th has an `extra` that is not JSON
    for i in range(n if damage else 0):
        g = start + i
        if "duplicate" in damage and g % 97 == 96:
            ids[i] = ids[i - 1] if i else f"{spk[i]}-{chap[i]}-{g - 1:06d}"
        if "negative" in damage and g % 89 == 88:
            dur[i] = -1.0
        if "flagged" in damage and g % 83 == 82:
            extra[i] = json.dumps({"chapter": str(chap[i]), "reject": "invalid_utf8: line 3"})
        if "json" in damage and g % 79 == 78:
            extra[i] = "{not json"
    n_words = rng.integers(3, 12, n)
    text = [" ".join(WORDS[(k * 7 + j) % len(WORDS)] for j in range(w)) for k, w in zip(idx, n_words)]
    cols = {
        "id": ids, "corpus": ["synthetic"] * n, "split": ["train"] * n, "domain": ["speech"] * n,
        "path": [f"/nonexistent/synthetic/{s}/{c}/{u}.flac" for s, c, u in zip(spk, chap, ids)],
        "offset": np.zeros(n), "duration": dur, "sample_rate": np.full(n, 16000, np.int32),
        "channels": np.ones(n, np.int16), "text": text, "caption": [None] * n,
        "speaker": [str(s) for s in spk], "language": ["en"] * n, "extra": extra,
    }
    return pa.Table.from_pydict(cols, schema=SCHEMA)


def synthetic_manifest(path: str | Path, rows: int, *, seed: int = 0, damage: tuple[str, ...] = (),
                       batch: int = 200_000) -> Path:
    """Write `rows` synthetic manifest rows to `path` (Parquet, row groups of `batch`);
    `damage` names the kinds of bad rows to plant (`DAMAGE`)."""
    unknown = set(damage) - set(DAMAGE)
    if unknown:
        raise ValueError(f"unknown damage kind(s) {sorted(unknown)}; known: {DAMAGE}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    with pq.ParquetWriter(str(path), SCHEMA, compression="zstd") as w:
        for start in range(0, rows, batch):
            w.write_table(_batch(start, min(batch, rows - start), rng, damage))
    return path


def synthetic_done_records(out: str | Path, frame_rate: float = 50.0) -> int:
    """One done record per planned shard of the pipeline output `out`, as a finished run leaves
    them (frames and seconds from the planned durations; tars named but never written)."""
    from ..pipeline.plan import InputPlan

    out = Path(out)
    (out / "done").mkdir(exist_ok=True)
    n = 0
    for meta in sorted((out / "plan").glob("*.json")):
        plan = InputPlan.load(meta)
        files: dict[str, pq.ParquetFile] = {}
        for shard in range(plan.n_shards):
            name, where = plan.shard_name(shard), plan.location(shard)
            samples = []
            if where:
                pf = files.setdefault(where[0], pq.ParquetFile(where[0]))
                t = pf.read_row_group(where[1], columns=["id", "corpus", "domain", "duration"])
                for uid, corpus, domain, dur in zip(*(t.column(c).to_pylist() for c in t.column_names)):
                    samples.append({"key": uid, "id": uid, "corpus": corpus, "domain": domain,
                                    "frames": int(dur * frame_rate), "seconds": dur})
            rec = {"shard": shard, "name": name, "prefix": plan.prefix, "tar": f"{name}.tar" if samples else None,
                   "sha256": "0" * 64 if samples else None, "bytes": 0, "samples": samples, "rejects": []}
            (out / "done" / f"{name}.json").write_text(json.dumps(rec))
            n += 1
    return n
