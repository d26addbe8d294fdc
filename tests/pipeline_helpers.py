"""Shared by the pipeline tests: build configs, read shards back."""

import json
from pathlib import Path

import pyarrow.parquet as pq

from uniaudio.config import from_dict
from uniaudio.pipeline.config import PipelineConfig


def config(out: Path, inputs: list[dict], **kw) -> PipelineConfig:
    data = {"inputs": inputs, "output": str(out), **kw}
    data.setdefault("shard", {"max_samples": 8})
    return from_dict(PipelineConfig, data)


def shard_ids(out) -> list[str]:
    """Every sample id found in the tars (a folder or an s3:// prefix), duplicates kept."""
    from uniaudio import storage
    from uniaudio.pipeline.shards import read_tar

    tars = storage.glob(storage.join(str(out), "shards", "*.tar"))
    return [json.loads(m["json"])["id"] for t in tars for _, m in read_tar(t)]


def rejects(out: Path) -> dict[str, str]:
    return {r["id"]: r["reason"] for r in pq.read_table(out / "rejects.parquet").to_pylist()}


def tar_state(out) -> dict[str, tuple[int, str]]:
    """name -> (time, sha256) of every tar of an output (a folder or an s3:// prefix)."""
    from uniaudio import storage

    return {t.rsplit("/", 1)[-1]: (storage.stat(t)[1], storage.sha256(t))
            for t in storage.glob(storage.join(str(out), "shards", "*.tar"))}


def plan_rows(out) -> dict[str, dict]:
    """id -> planned manifest row (extra parsed) of every input of an output, simulated ones too."""
    from uniaudio.pipeline.plan import plan_files

    rows = {}
    for p in plan_files(out):
        for r in pq.read_table(p).to_pylist():
            r["extra"] = json.loads(r["extra"]) if r["extra"] else {}
            rows[r["id"]] = r
    return rows
