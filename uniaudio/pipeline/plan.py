"""Plan: manifest rows -> shards, deterministically, from ids and sizes only (no audio).

Each utterance goes to shard `blake2b(id) mod n_shards`; `n_shards` is fixed the first time
an output is planned and saved with the plan, so a rerun after a crash plans the same
shards. The plan Parquet holds the valid rows sorted by shard, one row group per shard, so
a worker reads exactly its shard's rows. Rows that cannot be processed (schema problems,
duplicate ids, problems a recipe flagged) go to the plan's rejects file with the reason.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .. import manifest
from ..files import atomic_write_text
from .config import InputSpec, PipelineConfig, config_diff
from .recipes import records
from .recipes.common import REJECT_KEY

PLAN_VERSION = 1
UNKNOWN_DURATION = 10.0  # seconds assumed for byte planning when the header is unreadable

REJECT_SCHEMA = pa.schema([
    ("id", pa.string()), ("corpus", pa.string()), ("domain", pa.string()), ("path", pa.string()),
    ("reason", pa.string()), ("detail", pa.string()), ("seconds", pa.float64()), ("stage", pa.string()),
])


def stable_shard(uid: str, n_shards: int) -> int:
    return int.from_bytes(hashlib.blake2b(uid.encode("utf-8"), digest_size=8).digest(), "little") % n_shards


@dataclass
class InputPlan:
    prefix: str
    manifest: str
    plan_path: str
    n_shards: int
    row_group: list[int]  # shard -> row group in plan_path, -1 for an empty shard
    rows: int
    rejected: int

    def shard_name(self, shard: int) -> str:
        return f"{self.prefix}-{shard:06d}"


def build_manifest(spec: InputSpec, out: Path) -> Path:
    """The input's manifest: given, or written once from its recipe (atomic; reused after)."""
    if spec.manifest:
        return Path(spec.manifest)
    path = out / "manifests" / f"{spec.prefix}.parquet"
    if not path.exists():
        # absolute paths: workers on other nodes (or another cwd) must find the files
        root = Path(spec.root).resolve()
        manifest.write_manifest(path, records(spec.recipe, root, spec.split, **spec.options), strict=False)
    return path


def bytes_per_second(cfg: PipelineConfig, tokenizer: dict | None) -> float:
    """Planned shard bytes per audio second; `tokenizer` is its describe() (None: audio mode)."""
    if tokenizer is None:
        return cfg.sample_rate * 2 * 0.7  # 16-bit FLAC of speech compresses to ~70%
    return tokenizer["frame_rate"] * tokenizer["n_codebooks"] * 2  # int16 codes


def _reject_rows(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=REJECT_SCHEMA)


class PlanMismatch(RuntimeError):
    """A run asked of an output that was planned with another configuration."""


def check_resumable(cfg: PipelineConfig, out: Path) -> None:
    """Refuse, before anything is loaded or written, a config that differs from the one an
    existing output was planned with; the message names each differing field."""
    for spec in cfg.inputs:
        meta_path = out / "plan" / f"{spec.prefix}.json"
        if not meta_path.exists():
            continue
        meta = json.loads(meta_path.read_text())
        if "config" in meta:
            diff = config_diff(meta["config"], cfg.plan_fields())
        elif meta["fingerprint"] != cfg.legacy_fingerprint():  # planned by an older uniaudio
            diff = [f"(planned before field-by-field records: fingerprint {meta['fingerprint']} != "
                    f"{cfg.legacy_fingerprint()})"]
        else:
            diff = []
        if diff:
            raise PlanMismatch(
                f"{out} was planned with a different configuration; differing fields (planned -> now):\n  "
                + "\n  ".join(diff) + "\nResume with the same settings, or write to a new output folder (--out).")
    planned = {p.stem for p in (out / "plan").glob("*.json")} if (out / "plan").is_dir() else set()
    extra = sorted(planned - {s.prefix for s in cfg.inputs})
    if extra:
        raise PlanMismatch(f"{out} also holds input(s) {extra} that this config does not name; resume with the "
                           "same inputs, or write to a new output folder (--out).")


def plan_input(spec: InputSpec, cfg: PipelineConfig, out: Path, tokenizer: dict | None = None) -> InputPlan:
    plan_dir = out / "plan"
    meta_path = plan_dir / f"{spec.prefix}.json"
    if meta_path.exists():
        check_resumable(cfg, out)
        meta = json.loads(meta_path.read_text())
        return InputPlan(**{k: meta[k] for k in InputPlan.__dataclass_fields__})

    mpath = build_manifest(spec, out)
    table = manifest.read_table(mpath)
    rows = table.to_pylist()
    valid, rejects, seen = [], [], set()
    for n, row in enumerate(rows):
        extra = json.loads(row["extra"]) if row.get("extra") else {}
        probs = manifest.problems(row)
        reason = detail = None
        if probs:
            reason, detail = f"invalid_manifest:{probs[0][0]}", "; ".join(f"{f}: {m}" for f, m in probs)
        elif isinstance(extra, dict) and extra.get(REJECT_KEY):
            reason, _, detail = str(extra[REJECT_KEY]).partition(": ")
        elif row["id"] in seen:
            reason, detail = "duplicate_id", f"id {row['id']!r} already planned (row {n})"
        if reason:
            rejects.append({"id": row.get("id"), "corpus": row.get("corpus"), "domain": row.get("domain"),
                            "path": row.get("path"), "reason": reason, "detail": detail,
                            "seconds": row.get("duration") if (row.get("duration") or 0) > 0 else None,
                            "stage": "plan"})
            continue
        seen.add(row["id"])
        valid.append(n)

    est_bytes = sum((rows[i]["duration"] or UNKNOWN_DURATION) for i in valid) * bytes_per_second(cfg, tokenizer)
    n_shards = max(1, math.ceil(len(valid) / cfg.shard.max_samples), math.ceil(est_bytes / cfg.shard.max_bytes))
    shard_of = np.array([stable_shard(rows[i]["id"], n_shards) for i in valid], dtype=np.int64)
    ids = [rows[i]["id"] for i in valid]
    order = sorted(range(len(valid)), key=lambda k: (shard_of[k], ids[k]))

    plan_dir.mkdir(parents=True, exist_ok=True)
    plan_path = plan_dir / f"{spec.prefix}.parquet"
    tmp = plan_path.with_suffix(".parquet.tmp")
    schema = manifest.SCHEMA.append(pa.field("shard", pa.int32()))
    row_group = [-1] * n_shards
    with pq.ParquetWriter(str(tmp), schema, compression="zstd") as w:
        start, g = 0, 0
        while start < len(order):
            s = int(shard_of[order[start]])
            end = start
            while end < len(order) and shard_of[order[end]] == s:
                end += 1
            chunk = [dict(rows[valid[k]], shard=s) for k in order[start:end]]
            w.write_table(pa.Table.from_pylist(chunk, schema=schema))
            row_group[s], g, start = g, g + 1, end
    os.replace(tmp, plan_path)
    pq.write_table(_reject_rows(rejects), str(plan_dir / f"{spec.prefix}.rejects.parquet"))

    plan = InputPlan(prefix=spec.prefix, manifest=str(mpath), plan_path=str(plan_path), n_shards=n_shards,
                     row_group=row_group, rows=len(valid), rejected=len(rejects))
    meta = dict(plan.__dict__, fingerprint=cfg.fingerprint(), config=cfg.plan_fields(), version=PLAN_VERSION)
    atomic_write_text(meta_path, json.dumps(meta))  # written last: its presence means the plan is complete
    return plan
