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


def shard_ids(out: Path) -> list[str]:
    """Every sample id found in the tars (read with webdataset), duplicates kept."""
    import webdataset as wds

    urls = sorted(str(p) for p in (out / "shards").glob("*.tar"))
    if not urls:
        return []
    ds = wds.WebDataset(urls, shardshuffle=False, empty_check=False)
    return [json.loads(s["json"])["id"] for s in ds]


def rejects(out: Path) -> dict[str, str]:
    return {r["id"]: r["reason"] for r in pq.read_table(out / "rejects.parquet").to_pylist()}


def tar_state(out: Path) -> dict[str, tuple[int, str]]:
    from uniaudio.pipeline.shards import file_sha256

    return {p.name: (p.stat().st_mtime_ns, file_sha256(p)) for p in (out / "shards").glob("*.tar")}
