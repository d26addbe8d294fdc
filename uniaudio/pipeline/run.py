"""The pipeline driver: plan, skip finished shards, stream the rest through Ray, report.

Rerunning the same config on the same output resumes: planned shards whose done record
and tar checksum are in place are skipped; all others are (re)written whole."""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from .. import storage
from ..files import iter_parquet
from .cluster import cluster_map, data_context, init_ray
from . import funnel, segment, simulate
from .config import MODEL_MEASURES, InputSpec, PipelineConfig
from .plan import REJECT_SCHEMA, InputPlan, build_manifest, check_resumable, plan_input
from .stages import MeasureStage, TokenizeStage, decode_shard, is_done, process_shard, semantic_tokenizer, write_shard

INDEX_SCHEMA = pa.schema([
    ("shard", pa.string()), ("key", pa.string()), ("id", pa.string()), ("corpus", pa.string()),
    ("domain", pa.string()), ("frames", pa.int64()), ("seconds", pa.float64()), ("sha256", pa.string()),
    ("measures", pa.string()),  # JSON of the `measure:` step's values (null without it, or from older runs)
])


def _remove_temp_files(out: str) -> None:
    """Temp files of a crashed run are never complete shards; remove them. (Object storage
    has none: an interrupted upload never becomes an object.)"""
    if storage.is_uri(out):
        return
    out = Path(out)
    for sub in ("shards", "done"):
        for p in (out / sub).glob(".*.tmp-*"):
            p.unlink(missing_ok=True)


def _status(progress: bool, text: str) -> None:
    """One line on stderr for the silent phases (model loads, Ray start, planning)."""
    if progress:
        tqdm.write(f"[pipeline] {text}", file=sys.stderr)


def _empty_done(out: str, plan: InputPlan, shard: int) -> None:
    rec = {"shard": shard, "name": plan.shard_name(shard), "prefix": plan.prefix, "tar": None, "sha256": None,
           "bytes": 0, "samples": [], "rejects": [], "finished": time.time()}
    storage.write_text(storage.join(out, "done", f"{plan.shard_name(shard)}.json"), json.dumps(rec))


DONE_CHECK_THREADS = 16  # resume of many shards: stat + record reads overlap (network filesystems)


def _done_flags(out: str, plan: InputPlan, rehash: bool, progress: bool) -> list[bool]:
    """is_done of every shard of a plan; in a thread pool when there are many."""
    names = [plan.shard_name(s) for s in range(plan.n_shards)]
    if len(names) < 256:
        return [is_done(out, n, rehash=rehash) for n in names]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(DONE_CHECK_THREADS) as pool:
        flags = pool.map(lambda n: is_done(out, n, rehash=rehash), names, chunksize=64)
        return list(tqdm(flags, total=len(names), desc=f"{plan.prefix}: finished shards?", unit="shard",
                         disable=not progress, leave=False))


def run(cfg: PipelineConfig, *, progress: bool = True, rehash: bool = False) -> dict:
    t0 = time.time()
    out = storage.absolute(cfg.output)  # task rows carry it to workers that may not share our cwd
    check_resumable(cfg, out)  # before any model load or write: a refused run changes nothing
    for sub in ("shards", "done", "plan"):
        storage.makedirs(storage.join(out, sub))
    _remove_temp_files(out)
    storage.write_text(storage.join(out, "config.json"), json.dumps(asdict(cfg), indent=2))

    tok = None  # the tokenizer's describe(): loaded once here (a model load), only for its rates
    if cfg.tokenizer != "none":
        from ..tokenize import get

        _status(progress, f"loading tokenizer {cfg.tokenizer} (for its rates)")
        tok = get(cfg.tokenizer, **cfg.tokenizer_options).describe()
    if "semantic" in cfg.measure:  # what the semantic.npy members hold: the sentence stage's vocabulary reads it
        storage.write_text(storage.join(out, "semantic.json"), json.dumps(semantic_tokenizer().semantic_describe()))
    _status(progress, f"planning {len(cfg.inputs)} input(s) (ids and sizes only; an existing plan is read back)")
    map_fn = cluster_map(cfg.ray)  # big manifests: header reads and planning as Ray tasks
    inputs = list(cfg.inputs)
    if cfg.segment is not None:  # long recordings -> speech segments, planned in place of the input's rows
        for k, spec in enumerate(inputs):
            which = f"recordings over {cfg.segment.longer_than:g} s" if cfg.segment.longer_than else "every recording"
            _status(progress, f"{spec.prefix}: voice-activity segmentation of {which}")
            path, summary = segment.build(cfg.segment, spec.prefix, build_manifest(spec, out, map_fn), out, map_fn)
            _status(progress, f"{spec.prefix}: {summary['recordings']} recording(s), {summary['hours_in']} h -> "
                              f"{summary['segments']} segment(s), {summary['hours_out']} h; rejected "
                              f"{summary['rejected'] or 0}")
            inputs[k] = InputSpec(manifest=path, name=spec.prefix)
    if cfg.simulate is not None:  # the derived pairs: one more input, planned and written like the others
        _status(progress, f"simulate: deriving {', '.join(cfg.simulate.enabled())} pairs from the inputs' manifests")
        path, summary = simulate.build(cfg.simulate, [build_manifest(s, out, map_fn) for s in inputs], out)
        _status(progress, "simulate: " + ", ".join(f"{t} {c['pairs']} pairs ({c['unpaired']} unpaired)"
                                                   for t, c in summary["tasks"].items()))
        inputs.append(InputSpec(manifest=path, name=simulate.SIMULATED))
    plans = [plan_input(spec, cfg, out, tok, map_fn, say=lambda text: _status(progress, text)) for spec in inputs]
    t_plan = time.time() - t0
    sample_rate = tok["sample_rate"] if tok else cfg.sample_rate
    filters = asdict(cfg.filters)

    tasks, skipped = [], 0
    for plan in plans:
        for shard, done in enumerate(_done_flags(out, plan, rehash, progress)):
            where = plan.location(shard)
            if done:
                skipped += 1
            elif where is None:
                _empty_done(out, plan, shard)
            else:
                tasks.append({"prefix": plan.prefix, "shard": shard, "name": plan.shard_name(shard), "out": out,
                              "plan_path": where[0], "row_group": where[1],
                              "sample_rate": sample_rate, "filters": filters, "measure": list(cfg.measure),
                              "dedup": cfg.dedup, "asr": asdict(cfg.asr) if cfg.asr else None,
                              "tokenizer": cfg.tokenizer,
                              "tokenizer_options": cfg.tokenizer_options})

    done_seconds = 0.0
    t_exec = time.time()
    if tasks:
        _status(progress, f"{len(tasks)} shard(s) to write, {skipped} already done; starting Ray")
        init_ray(cfg.ray)
        import ray
        import ray.data

        ctx = data_context()
        ds = ray.data.from_items(tasks, override_num_blocks=len(tasks))
        gpus = int(ray.cluster_resources().get("GPU", 0))
        measure_pool = bool(cfg.measure) and bool((gpus and set(cfg.measure) & set(MODEL_MEASURES))
                                                   or cfg.ray.measure_actors)
        tokenize_pool = cfg.tokenizer != "none" and bool(gpus or cfg.ray.tokenizer_actors)
        if measure_pool or tokenize_pool:
            ctx.op_resource_reservation_enabled = True
            # decode on CPUs -> [measure in an actor pool] -> [tokenize in an actor pool] (one model
            # load per actor, GPUs per `ray.num_gpus` when the cluster has them) -> write on CPUs
            share = 0.5 if measure_pool and tokenize_pool else 1
            ds = ds.map(decode_shard, fn_kwargs={"measure": not measure_pool}, num_cpus=1)
            if measure_pool:
                n = cfg.ray.num_gpus.get("measure", share) if gpus else 0
                ds = ds.map(MeasureStage, fn_constructor_args=("cuda" if n else None,),
                            concurrency=cfg.ray.measure_actors or gpus, num_gpus=n, num_cpus=1 if n else 0.5)
            if tokenize_pool:
                n = cfg.ray.num_gpus.get("tokenize", share) if gpus else 0
                ds = ds.map(TokenizeStage, fn_constructor_args=(cfg.tokenizer, cfg.tokenizer_options,
                                                                "cuda" if n else None),
                            concurrency=cfg.ray.tokenizer_actors or gpus, num_gpus=n, num_cpus=1 if n else 0.5)
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


FINALIZE_BATCH = 100_000  # index rows per Parquet write


class _Totals:
    """Per corpus / domain sums of the report, from Arrow columns a batch at a time."""

    def __init__(self):
        self.by: dict[str, dict] = defaultdict(lambda: {"seconds_in": 0.0, "seconds_out": 0.0, "samples": 0,
                                                        "rejected": 0, "frames": 0})
        self.reasons: dict[str, int] = defaultdict(int)
        self.stages: dict[str, dict] = defaultdict(lambda: {"items": 0, "seconds": 0.0, "reasons": defaultdict(int)})
        self.seconds, self.frames = 0.0, 0

    def samples(self, t: pa.Table) -> None:
        self.seconds += pc.sum(t.column("seconds")).as_py() or 0.0
        self.frames += pc.sum(t.column("frames")).as_py() or 0
        for key in ("corpus", "domain"):
            g = t.group_by(key).aggregate([("seconds", "sum"), ("frames", "sum"), ("id", "count")])
            for name, sec, frames, n in zip(*(g.column(c).to_pylist() for c in
                                               (key, "seconds_sum", "frames_sum", "id_count"))):
                d = self.by[f"{key}/{name}"]
                d["seconds_in"] += sec
                d["seconds_out"] += sec
                d["samples"] += n
                d["frames"] += frames

    def rejects(self, t: pa.Table) -> None:
        for r, n in zip(*(t.group_by("reason").aggregate([("reason", "count")]).column(c).to_pylist()
                          for c in ("reason", "reason_count"))):
            self.reasons[r] += n
        t = t.set_column(t.schema.get_field_index("seconds"), "seconds", pc.fill_null(t.column("seconds"), 0.0))
        t = t.set_column(t.schema.get_field_index("stage"), "stage", pc.fill_null(t.column("stage"), "plan"))
        g = t.group_by(["stage", "reason"]).aggregate([("seconds", "sum"), ("reason", "count")])
        for stage, reason, sec, n in zip(*(g.column(c).to_pylist() for c in
                                           ("stage", "reason", "seconds_sum", "reason_count"))):
            d = self.stages[stage]
            d["items"] += n
            d["seconds"] += sec
            d["reasons"][reason] += n
        for key in ("corpus", "domain"):
            g = t.group_by(key).aggregate([("seconds", "sum"), ("reason", "count")])
            for name, sec, n in zip(*(g.column(c).to_pylist() for c in (key, "seconds_sum", "reason_count"))):
                d = self.by[f"{key}/{name}"]
                d["rejected"] += n
                d["seconds_in"] += sec


class _BatchedWriter:
    """Rows to a Parquet file in batches (`storage.output_path`: made visible whole on close)."""

    def __init__(self, path: str, schema: pa.Schema, on_batch):
        self.schema, self.on_batch = schema, on_batch
        self.out = storage.output_path(path)
        self.w = pq.ParquetWriter(self.out.__enter__(), schema)
        self.buf: list[dict] = []
        self.rows = 0

    def add(self, rows: list[dict]) -> None:
        self.buf += rows
        if len(self.buf) >= FINALIZE_BATCH:
            self.flush()

    def add_table(self, t: pa.Table) -> None:
        self.flush()
        self._write(t.select(self.schema.names).cast(self.schema))

    def flush(self) -> None:
        if self.buf:
            self._write(pa.Table.from_pylist(self.buf, schema=self.schema))
            self.buf = []

    def _write(self, t: pa.Table) -> None:
        if t.num_rows:
            self.w.write_table(t)
            self.on_batch(t)
            self.rows += t.num_rows

    def close(self) -> None:
        self.flush()
        self.w.close()
        self.out.__exit__(None, None, None)


NEAR_TOLERANCE = 0.05  # near duplicates: same near_key, duration within 5 % of the kept one's


def _duplicates(out: str) -> dict:
    """OUT/duplicates.parquet: every item whose decoded audio equals an earlier one's
    (`exact_duplicate`), or that shares an earlier one's speaker and transcript with a duration
    within NEAR_TOLERANCE of it (`near_duplicate`); the first by id is kept, each later copy
    listed with the id it repeats. DuckDB groups the index's keys, spilling to disk. Returns
    {items, seconds} of the listed copies."""
    import duckdb
    import tempfile

    from ..files import sql_literal

    with storage.local_file(storage.join(out, "index.parquet")) as index, \
            tempfile.TemporaryDirectory(prefix="uniaudio-dedup-") as tmp:
        dest = f"{tmp}/duplicates.parquet"
        con = duckdb.connect()
        con.execute(f"SET temp_directory={sql_literal(tmp + '/spill')}")
        con.execute(f"""
            CREATE TEMP VIEW items AS SELECT id, seconds,
                json_extract_string(measures, '$.audio_sha256') AS h,
                json_extract_string(measures, '$.near_key') AS k
            FROM read_parquet({sql_literal(index)});
            CREATE TEMP TABLE exact AS SELECT id, first AS duplicate_of, seconds FROM (
                SELECT id, seconds, min(id) OVER (PARTITION BY h) AS first FROM items WHERE h IS NOT NULL)
            WHERE id <> first;
            CREATE TEMP TABLE near AS SELECT id, first AS duplicate_of, seconds FROM (
                SELECT id, seconds, first_value(id) OVER w AS first, first_value(seconds) OVER w AS first_seconds
                FROM items WHERE k IS NOT NULL AND id NOT IN (SELECT id FROM exact)
                WINDOW w AS (PARTITION BY k ORDER BY id))
            WHERE id <> first AND abs(seconds - first_seconds) <= {NEAR_TOLERANCE} * first_seconds;
            COPY (SELECT id, duplicate_of, 'exact_duplicate' AS reason, seconds FROM exact
                  UNION ALL SELECT id, duplicate_of, 'near_duplicate' AS reason, seconds FROM near ORDER BY id)
            TO {sql_literal(dest)} (FORMAT parquet)""")
        n, sec = con.execute(f"SELECT count(*), coalesce(sum(seconds), 0) FROM read_parquet({sql_literal(dest)})"
                             ).fetchone()
        by = dict(con.execute(f"SELECT reason, count(*) FROM read_parquet({sql_literal(dest)}) GROUP BY reason"
                              ).fetchall())
        con.close()
        storage.upload(dest, storage.join(out, "duplicates.parquet"))
    return {"items": int(n), "seconds": float(sec), "by_reason": {k: int(v) for k, v in sorted(by.items())}}


def finalize(out: str, plans: list[InputPlan], cfg: PipelineConfig, *, wall: float, processed_seconds: float,
             shards_run: int, shards_skipped: int, timings: dict | None = None,
             tokenizer: dict | None = None) -> dict:
    """Merge done records into index.parquet, rejects.parquet and report.json, streaming: done
    records are read one at a time, rows written in batches and the report summed from Arrow
    columns, so the driver's memory does not grow with the corpus. Index rows are in the order
    `pipeline verify` reads them: inputs by prefix, shards in order, samples as in the tar."""
    t_fin = time.time()
    totals = _Totals()
    index = _BatchedWriter(storage.join(out, "index.parquet"), INDEX_SCHEMA, totals.samples)
    rejects = _BatchedWriter(storage.join(out, "rejects.parquet"), REJECT_SCHEMA, totals.rejects)
    tars_with_samples = 0
    for plan in sorted(plans, key=lambda p: p.prefix):
        for batch in iter_parquet(plan.rejects_path, FINALIZE_BATCH):
            rejects.add_table(pa.Table.from_batches([batch]))
        for shard in range(plan.n_shards):
            rec = json.loads(storage.read_text(storage.join(out, "done", f"{plan.shard_name(shard)}.json")))
            rejects.add(rec["rejects"])
            if rec["samples"]:
                tars_with_samples += 1
                tar, sha = rec["tar"], rec["sha256"]
                index.add([dict(s, shard=tar, sha256=sha) for s in rec["samples"]])
    index.close()
    rejects.close()
    duplicates = _duplicates(out) if cfg.dedup else None
    segmented = [json.loads(storage.read_text(storage.join(out, "manifests", f"{p.prefix}.segmented.json")))
                 for p in plans if cfg.segment is not None and p.prefix != simulate.SIMULATED]
    active = {s for s, on in (("simulate", cfg.simulate), ("transcribe", "asr" in cfg.measure or "words" in cfg.measure),
                              ("transcript_check", "transcript_check" in cfg.measure),
                              ("speech_rate", cfg.filters.speech_rate), ("quality", cfg.filters.min_dnsmos))
              if on}

    def hours(d):
        return {"hours_in": round(d["seconds_in"] / 3600, 4), "hours_out": round(d["seconds_out"] / 3600, 4),
                "samples": d["samples"], "rejected": d["rejected"], "frames": d["frames"]}

    by = totals.by
    n_codebooks = tokenizer["n_codebooks"] if tokenizer else 1
    report = {
        "output": str(out),
        "tokenizer": cfg.tokenizer,
        "shards": {"planned": sum(p.n_shards for p in plans), "written_this_run": shards_run,
                   "skipped_done": shards_skipped, "with_samples": tars_with_samples},
        "samples": index.rows,
        "rejected": rejects.rows,
        "rejects_by_reason": dict(sorted(totals.reasons.items())),
        "hours_out": round(totals.seconds / 3600, 4),
        "duplicates": duplicates["items"] if duplicates else None,
        "duplicates_by_reason": duplicates["by_reason"] if duplicates else None,
        "funnel": funnel.build(segmented, totals.stages, index.rows, totals.seconds, duplicates, active),
        "tokens": totals.frames * n_codebooks if tokenizer else None,
        "by_corpus": {k.split("/", 1)[1]: hours(v) for k, v in sorted(by.items()) if k.startswith("corpus/")},
        "by_domain": {k.split("/", 1)[1]: hours(v) for k, v in sorted(by.items()) if k.startswith("domain/")},
        "wall_seconds": round(wall, 2),
        "timings": dict(timings or {}, finalize=round(time.time() - t_fin, 3)),
        "audio_seconds_this_run": round(processed_seconds, 2),
        "throughput_audio_s_per_s": round(processed_seconds / wall, 2) if wall > 0 else None,
    }
    storage.write_text(storage.join(out, "report.json"), json.dumps(report, indent=2))
    return report
