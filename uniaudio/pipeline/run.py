"""The pipeline driver: plan, skip finished shards, stream the rest through Ray, report.

Rerunning the same config on the same output resumes: planned shards whose done record
and tar checksum are in place are skipped; all others are (re)written whole."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from ..files import atomic_write_text
from .config import PipelineConfig, RaySpec
from .plan import REJECT_SCHEMA, InputPlan, check_resumable, plan_input
from .stages import TokenizeStage, decode_shard, is_done, process_shard, write_shard

INDEX_SCHEMA = pa.schema([
    ("shard", pa.string()), ("key", pa.string()), ("id", pa.string()), ("corpus", pa.string()),
    ("domain", pa.string()), ("frames", pa.int64()), ("seconds", pa.float64()), ("sha256", pa.string()),
])


def init_ray(spec: RaySpec) -> None:
    """Join RAY_ADDRESS / --ray-address, or start a local Ray once per process."""
    import ray

    if ray.is_initialized():
        return
    address = spec.address or os.environ.get("RAY_ADDRESS")
    kw = dict(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    if address:
        ray.init(address=address, **kw)
    else:
        ray.init(num_cpus=spec.num_cpus, object_store_memory=spec.object_store_memory, **kw)


def _remove_temp_files(out: Path) -> None:
    """Temp files of a crashed run are never complete shards; remove them."""
    for sub in ("shards", "done"):
        for p in (out / sub).glob(".*.tmp-*"):
            p.unlink(missing_ok=True)


def _status(progress: bool, text: str) -> None:
    """One line on stderr for the silent phases (model loads, Ray start, planning)."""
    if progress:
        tqdm.write(f"[pipeline] {text}", file=sys.stderr)


def _empty_done(out: Path, plan: InputPlan, shard: int) -> None:
    rec = {"shard": shard, "name": plan.shard_name(shard), "prefix": plan.prefix, "tar": None, "sha256": None,
           "bytes": 0, "samples": [], "rejects": [], "finished": time.time()}
    atomic_write_text(out / "done" / f"{plan.shard_name(shard)}.json", json.dumps(rec))


def run(cfg: PipelineConfig, *, progress: bool = True, rehash: bool = False) -> dict:
    t0 = time.time()
    out = Path(cfg.output).resolve()  # task rows carry it to workers that may not share our cwd
    check_resumable(cfg, out)  # before any model load or write: a refused run changes nothing
    for sub in ("shards", "done", "plan"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    _remove_temp_files(out)
    atomic_write_text(out / "config.json", json.dumps(asdict(cfg), indent=2))

    tok = None  # the tokenizer's describe(): loaded once here (a model load), only for its rates
    if cfg.tokenizer != "none":
        from ..tokenize import get

        _status(progress, f"loading tokenizer {cfg.tokenizer} (for its rates)")
        tok = get(cfg.tokenizer, **cfg.tokenizer_options).describe()
    _status(progress, f"planning {len(cfg.inputs)} input(s) (a recipe reads every file's header once)")
    plans = [plan_input(spec, cfg, out, tok) for spec in cfg.inputs]
    t_plan = time.time() - t0
    sample_rate = tok["sample_rate"] if tok else cfg.sample_rate
    filters = asdict(cfg.filters)

    tasks, skipped = [], 0
    for plan in plans:
        for shard in range(plan.n_shards):
            name = plan.shard_name(shard)
            if is_done(out, name, rehash=rehash):
                skipped += 1
            elif plan.row_group[shard] < 0:
                _empty_done(out, plan, shard)
            else:
                tasks.append({"prefix": plan.prefix, "shard": shard, "name": name, "out": str(out),
                              "plan_path": plan.plan_path, "row_group": plan.row_group[shard],
                              "sample_rate": sample_rate, "filters": filters, "tokenizer": cfg.tokenizer,
                              "tokenizer_options": cfg.tokenizer_options})

    done_seconds = 0.0
    t_exec = time.time()
    if tasks:
        _status(progress, f"{len(tasks)} shard(s) to write, {skipped} already done; starting Ray")
        init_ray(cfg.ray)
        import ray
        import ray.data

        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        ds = ray.data.from_items(tasks, override_num_blocks=len(tasks))
        gpus = int(ray.cluster_resources().get("GPU", 0))
        if cfg.tokenizer != "none" and (gpus or cfg.ray.tokenizer_actors):
            ctx.op_resource_reservation_enabled = True
            # decode on CPUs -> tokenize in an actor pool (one model load per actor, a GPU each
            # when the cluster has them) -> write on CPUs
            ds = ds.map(decode_shard, num_cpus=1)
            ds = ds.map(TokenizeStage, fn_constructor_args=(cfg.tokenizer, cfg.tokenizer_options,
                                                            "cuda" if gpus else None),
                        concurrency=cfg.ray.tokenizer_actors or gpus, num_gpus=1 if gpus else 0,
                        num_cpus=1 if gpus else 0.5)
            ds = ds.map(write_shard, num_cpus=1)
        else:
            # One operator only: Ray Data's per-operator resource reservation (there to stop
            # stages of a multi-stage pipeline starving each other) would just idle CPUs; with
            # it on, 2 CPUs ran ~1.3 tasks at a time in our measurements.
            ctx.op_resource_reservation_enabled = False
            ds = ds.map(process_shard, num_cpus=1)
        bar = tqdm(total=len(tasks), desc="shards", unit="shard", disable=not progress)
        if cfg.tokenizer != "none":  # the first shard waits on each worker's model load
            bar.set_postfix_str(f"workers loading {cfg.tokenizer}...")
        for r in ds.iter_rows():
            done_seconds += r["seconds"]
            bar.update(1)
            bar.set_postfix(hours=f"{done_seconds / 3600:.2f}", rejects=r["rejects"])
        bar.close()
    timings = {"plan": round(t_plan, 3), "execute": round(time.time() - t_exec, 3)}
    return finalize(out, plans, cfg, wall=time.time() - t0, processed_seconds=done_seconds,
                    shards_run=len(tasks), shards_skipped=skipped, timings=timings, tokenizer=tok)


def finalize(out: Path, plans: list[InputPlan], cfg: PipelineConfig, *, wall: float, processed_seconds: float,
             shards_run: int, shards_skipped: int, timings: dict | None = None,
             tokenizer: dict | None = None) -> dict:
    """Merge done records into index.parquet, rejects.parquet and report.json."""
    t_fin = time.time()
    index, rejects = [], []
    for plan in plans:
        rejects += pq.read_table(Path(plan.plan_path).with_name(f"{plan.prefix}.rejects.parquet")).to_pylist()
        for shard in range(plan.n_shards):
            rec = json.loads((out / "done" / f"{plan.shard_name(shard)}.json").read_text())
            rejects += rec["rejects"]
            for s in rec["samples"]:
                index.append(dict(s, shard=rec["tar"], sha256=rec["sha256"]))
    pq.write_table(pa.Table.from_pylist(index, schema=INDEX_SCHEMA), str(out / "index.parquet"))
    pq.write_table(pa.Table.from_pylist(rejects, schema=REJECT_SCHEMA), str(out / "rejects.parquet"))

    by = defaultdict(lambda: {"seconds_in": 0.0, "seconds_out": 0.0, "samples": 0, "rejected": 0, "frames": 0})
    for s in index:
        for k in (f"corpus/{s['corpus']}", f"domain/{s['domain']}"):
            by[k]["seconds_in"] += s["seconds"]
            by[k]["seconds_out"] += s["seconds"]
            by[k]["samples"] += 1
            by[k]["frames"] += s["frames"]
    reasons: dict[str, int] = defaultdict(int)
    for r in rejects:
        reasons[r["reason"]] += 1
        for k in (f"corpus/{r['corpus']}", f"domain/{r['domain']}"):
            by[k]["rejected"] += 1
            by[k]["seconds_in"] += r["seconds"] or 0.0

    def hours(d):
        return {"hours_in": round(d["seconds_in"] / 3600, 4), "hours_out": round(d["seconds_out"] / 3600, 4),
                "samples": d["samples"], "rejected": d["rejected"], "frames": d["frames"]}

    n_codebooks = tokenizer["n_codebooks"] if tokenizer else 1
    report = {
        "output": str(out),
        "tokenizer": cfg.tokenizer,
        "shards": {"planned": sum(p.n_shards for p in plans), "written_this_run": shards_run,
                   "skipped_done": shards_skipped, "with_samples": len({s["shard"] for s in index})},
        "samples": len(index),
        "rejected": len(rejects),
        "rejects_by_reason": dict(sorted(reasons.items())),
        "hours_out": round(sum(s["seconds"] for s in index) / 3600, 4),
        "tokens": sum(s["frames"] for s in index) * n_codebooks if tokenizer else None,
        "by_corpus": {k.split("/", 1)[1]: hours(v) for k, v in sorted(by.items()) if k.startswith("corpus/")},
        "by_domain": {k.split("/", 1)[1]: hours(v) for k, v in sorted(by.items()) if k.startswith("domain/")},
        "wall_seconds": round(wall, 2),
        "timings": dict(timings or {}, finalize=round(time.time() - t_fin, 3)),
        "audio_seconds_this_run": round(processed_seconds, 2),
        "throughput_audio_s_per_s": round(processed_seconds / wall, 2) if wall > 0 else None,
    }
    atomic_write_text(out / "report.json", json.dumps(report, indent=2))
    return report
