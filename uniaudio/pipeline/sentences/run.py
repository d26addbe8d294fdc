"""The sentence-stage driver: plan (metadata only), skip finished shards, build the rest on
Ray (one task per output shard), then merge done records into the index, the rejects and
the report. Rerunning the same command resumes; a changed config is refused."""

from __future__ import annotations

import contextlib
import json
import resource
import sys
import time
from collections import Counter
from dataclasses import asdict

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from ... import storage
from ...config import config_diff
from ..plan import PlanMismatch
from ..cluster import data_context, init_ray
from ..run import _remove_temp_files
from ..stages import is_done
from .build import build_shard
from .config import SentenceConfig
from .plan import REJECT_SCHEMA, plan, token_output

INDEX_SCHEMA = pa.schema([("shard", pa.string()), ("key", pa.string()), ("rows", pa.int64()),
                          ("sequences", pa.int64()), ("sha256", pa.string()),
                          ("split", pa.string())])  # "train", or "heldout" (sources from holdout_splits)
SEQUENCE_SCHEMA = pa.schema([("seq", pa.string()), ("task", pa.string()), ("relation", pa.string()),
                             ("id", pa.string()), ("shard", pa.string()), ("key", pa.string()),
                             ("row_start", pa.int64()), ("row_end", pa.int64())])


def check_resumable(cfg: SentenceConfig, out: str) -> None:
    meta = storage.join(out, "plan", "sentences.json")
    if storage.exists(meta):
        planned = json.loads(storage.read_text(meta))
        diff = config_diff(planned["config"], cfg.plan_fields())
        index = storage.join(storage.absolute(cfg.tokens), "index.parquet")
        if not diff and storage.exists(index) and storage.sha256(index) != planned["token_index_sha256"]:
            raise PlanMismatch(f"{out} was planned from an earlier state of {cfg.tokens} (its index.parquet has "
                               "changed since): write to a new output folder (--out)")
        if diff:
            raise PlanMismatch(f"{out} was planned with a different configuration; differing fields (planned -> now):"
                               "\n  " + "\n  ".join(diff) + "\nResume with the same settings, or write to a new "
                               "output folder (--out).")


def run(cfg: SentenceConfig, *, progress: bool = True) -> dict:
    t0 = time.time()
    out = storage.absolute(cfg.output)
    check_resumable(cfg, out)  # before anything is written
    tok_out = token_output(cfg.tokens)
    for sub in ("shards", "done", "plan"):
        storage.makedirs(storage.join(out, sub))
    _remove_temp_files(out)
    storage.write_text(storage.join(out, "config.json"), json.dumps(asdict(cfg), indent=2))
    say = (lambda m: tqdm.write(f"[sentences] {m}", file=sys.stderr)) if progress else (lambda m: None)
    say("planning from metadata (DuckDB sort; no tokens read)")
    summary = plan(cfg, out, tok_out)
    t_plan = time.time() - t0
    tasks, skipped = [], 0
    for j, name in enumerate(summary["shard_names"]):
        if is_done(out, name):
            skipped += 1
            continue
        tasks.append({"shard": j, "name": name, "out": out, "tokens": tok_out["root"],
                      "specs": storage.join(out, "plan", "specs.parquet"), "layout": cfg.layout, "context": cfg.context,
                      "pack_buffer": cfg.pack_buffer, "tokenizer": summary["tokenizer"]})
    t_exec = time.time()
    if tasks:
        say(f"{summary['specs']} sequences planned in {summary['shards']} shard(s); {len(tasks)} to build, "
            f"{skipped} already done; starting Ray")
        init_ray(cfg.ray)
        import ray.data

        ctx = data_context()
        ctx.op_resource_reservation_enabled = False  # one operator: reservation would only idle CPUs
        ds = ray.data.from_items(tasks, override_num_blocks=len(tasks)).map(build_shard, num_cpus=1)
        bar = tqdm(total=len(tasks), desc="sentence shards", unit="shard", disable=not progress)
        bundles = 0
        for r in ds.iter_rows():
            bundles += r["bundles"]
            bar.update(1)
            bar.set_postfix(bundles=bundles, left_out=r["left_out"])
        bar.close()
    timings = {"plan": round(t_plan, 3), "execute": round(time.time() - t_exec, 3)}
    return finalize(out, cfg, summary, wall=time.time() - t0, shards_run=len(tasks), shards_skipped=skipped,
                    timings=timings)


def finalize(out: str, cfg: SentenceConfig, summary: dict, *, wall: float, shards_run: int, shards_skipped: int,
             timings: dict) -> dict:
    """index.parquet (bundles), sequences.parquet, rejects.parquet and report.json, streamed
    from the done records one shard at a time."""
    t_fin = time.time()
    counts = {"tasks": Counter(), "relations": Counter(), "modality_rows": Counter()}
    reasons, tot = Counter(), Counter()
    worker_peak = 0.0
    # each file made visible whole once all are written; none of them after an error
    with contextlib.ExitStack() as outputs:
        idx_w, seq_w, rej_w = (pq.ParquetWriter(outputs.enter_context(storage.output_path(storage.join(out, name))), schema)
                               for name, schema in (("index.parquet", INDEX_SCHEMA), ("sequences.parquet", SEQUENCE_SCHEMA),
                                                    ("rejects.parquet", REJECT_SCHEMA)))
        with storage.arrow_file(storage.join(out, "plan", "rejects.parquet")) as f:
            plan_rejects = pq.read_table(f)
        rej_w.write_table(plan_rejects)
        reasons.update(plan_rejects.column("reason").to_pylist())
        for name in summary["shard_names"]:
            rec = json.loads(storage.read_text(storage.join(out, "done", f"{name}.json")))
            split = "heldout" if name.startswith("heldout-") else "train"
            idx_w.write_table(pa.Table.from_pylist([dict(b, shard=rec["tar"], sha256=rec["sha256"], split=split)
                                                    for b in rec["bundles"]], schema=INDEX_SCHEMA))
            tot[f"bundles_{split}"] += len(rec["bundles"])
            seq_w.write_table(pa.Table.from_pylist([dict(s, shard=rec["tar"]) for s in rec["sequences"]],
                                                   schema=SEQUENCE_SCHEMA))
            rej_w.write_table(pa.Table.from_pylist(rec["rejects"], schema=REJECT_SCHEMA))
            reasons.update(r["reason"] for r in rec["rejects"])
            for k in counts:
                counts[k].update(rec["counts"][k])
            for k in ("useful_rows", "context_rows", "padding_useful", "padding_rows", "specs"):
                tot[k] += rec[k]
            tot["bundles"] += len(rec["bundles"])
            tot["sequences"] += len(rec["sequences"])
            worker_peak = max(worker_peak, rec["peak_rss_mb"])
        for w in (idx_w, seq_w, rej_w):
            w.close()
    total_rows = sum(counts["modality_rows"].values()) or 1
    fill = tot["useful_rows"] / tot["context_rows"] if tot["context_rows"] else None
    report = {
        "output": str(out), "tokens": summary["config"]["tokens"], "layout": cfg.layout, "context": cfg.context,
        "tokenizer": summary["tokenizer"], "vocab_size": summary["vocab_size"], "text_vocab": summary["text_vocab"],
        "shards": {"planned": summary["shards"], "written_this_run": shards_run, "skipped_done": shards_skipped},
        "sequences_planned": summary["specs"], "sequences": tot["sequences"], "bundles": tot["bundles"],
        "bundles_heldout": tot["bundles_heldout"], "holdout_splits": cfg.holdout_splits,
        "rows": tot["useful_rows"],
        "fill": round(fill, 4) if fill is not None else None,
        "waste_rows": tot["context_rows"] - tot["useful_rows"],
        "padding_baseline_fill": round(tot["padding_useful"] / tot["padding_rows"], 4) if tot["padding_rows"] else None,
        "padding_baseline": "batches of 8 sequences in arrival order, each padded to its longest",
        "left_out": sum(reasons.values()), "left_out_by_reason": dict(sorted(reasons.items())),
        # transcripts in another script than their row's language says (kept; plans before it: none)
        "script_mismatch": summary.get("script_mismatch", {}),
        "tasks": dict(sorted(counts["tasks"].items())), "relations": dict(sorted(counts["relations"].items())),
        "modality_share": {k: round(v / total_rows, 4) for k, v in sorted(counts["modality_rows"].items())},
        "wall_seconds": round(wall, 2), "timings": dict(timings, finalize=round(time.time() - t_fin, 3)),
        "bundles_per_second": round(tot["bundles"] / timings["execute"], 2) if shards_run and timings["execute"] else None,
        "peak_rss_mb": {"driver": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                        "largest_worker": round(worker_peak, 1)},
    }
    storage.write_text(storage.join(out, "report.json"), json.dumps(report, indent=2))
    return report
