"""Plan: manifest rows -> shards, deterministically, from ids and sizes only (no audio).

Each utterance goes to shard `blake2b(id) mod n_shards` (*hash* placement: files of a folder
corpus), or, for corpora that ship as containers (tar shards, Parquet files, Lhotse
recordings: the recipe says so), to shard `manifest row * n_shards // rows` (*position*
placement: a container's items are consecutive in the manifest, so they land in the same
shard and a decode task reads few containers, front to back). `n_shards` and the placement
are fixed the first time an output is planned and saved with the plan, so a rerun after a
crash plans the same shards. Planning streams, so a 50M-row manifest needs no more driver
memory than a small one:

1. *stage* (one task per range of manifest row groups): row checks, vectorised over Arrow
   batches (`manifest.problems` names the fault of each suspect row), the 64-bit id hash;
   valid rows to an Arrow file, rejects to Parquet. Counts and seconds go back to the driver,
   which fixes `n_shards`.
2. *partition* (one task per staged file): each row to its plan part (a run of
   `shards_per_part` consecutive shards), one Arrow file per (stage, part).
3. *parts* (one task per part, a bounded number of rows): sort by (shard, id, manifest row),
   reject repeated ids (a repeat hashes to the same shard, so per-shard detection is exact;
   the first row in manifest order is kept), write `plan/{prefix}.parts/part-NNNNN.parquet`
   with one row group per shard, so a worker reads exactly its shard's rows. With position
   placement the repeats are dropped before step 2 (a partition by id hash and a *repeats*
   task per bucket), since copies of an id may sit at any two positions.

The tasks run on Ray when the driver passes a cluster map (`pipeline run` does, for
manifests of more than one stage unit), in this process otherwise. Plans written by
uniaudio before parts (one `plan/{prefix}.parquet`, PLAN_VERSION 1) load and resume as they are.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from .. import manifest, storage
from ..config import config_diff
from .cluster import MapFn, serial_map
from .config import InputSpec, PipelineConfig
from .recipes import placement as recipe_placement
from .recipes import records, takes_files
from .recipes.common import REJECT_KEY

PLAN_VERSION = 2
BATCH_ROWS = 65_536  # manifest rows per Arrow batch
STAGE_ROWS = 500_000  # manifest rows per stage task (whole row groups)
PART_ROWS = 250_000  # target rows per plan part: what one part task holds and sorts
UNKNOWN_DURATION = 10.0  # seconds assumed for byte planning when the header is unreadable

REJECT_SCHEMA = pa.schema([
    ("id", pa.string()), ("corpus", pa.string()), ("domain", pa.string()), ("path", pa.string()),
    ("reason", pa.string()), ("detail", pa.string()), ("seconds", pa.float64()), ("stage", pa.string()),
])


def stable_shard(uid: str, n_shards: int) -> int:
    return int.from_bytes(hashlib.blake2b(uid.encode("utf-8"), digest_size=8).digest(), "little") % n_shards


PLAN_SCHEMA = manifest.SCHEMA.append(pa.field("shard", pa.int32()))
# staged rows: the manifest row, its 64-bit id hash and its row number in the manifest
STAGE_SCHEMA = manifest.SCHEMA.append(pa.field("_h", pa.uint64())).append(pa.field("_row", pa.int64()))

@dataclass
class InputPlan:
    prefix: str
    manifest: str
    plan_path: str  # PLAN_VERSION 1: the one plan file (absolute); 2: the folder of parts
    n_shards: int
    row_group: list[int]  # shard -> row group in its plan file, -1 for an empty shard
    rows: int
    rejected: int
    # PLAN_VERSION 2: plan files, shard s in parts[s // shards_per_part]; stored relative to
    # the plan folder (an output copied or moved elsewhere still finds them), absolute once loaded
    parts: list[str] | None = None
    shards_per_part: int = 0
    placement: str = "hash"  # "hash" (by id) or "position" (by manifest row); plans before it: hash

    def shard_name(self, shard: int) -> str:
        return f"{self.prefix}-{shard:06d}"

    def location(self, shard: int) -> tuple[str, int] | None:
        """(plan file, row group) holding a shard's rows; None for an empty shard."""
        rg = self.row_group[shard]
        if rg < 0:
            return None
        return (self.parts[shard // self.shards_per_part] if self.parts else self.plan_path), rg

    def files(self) -> list[str]:
        return list(self.parts) if self.parts else [self.plan_path]

    @property
    def rejects_path(self) -> str:
        return storage.join(os.path.dirname(self.plan_path), f"{self.prefix}.rejects.parquet")

    @classmethod
    def load(cls, meta_path: str | Path) -> "InputPlan":
        meta = json.loads(storage.read_text(str(meta_path)))
        plan = cls(**{k: meta[k] for k in cls.__dataclass_fields__ if k in meta})
        if plan.parts is not None:
            here = os.path.dirname(storage.absolute(meta_path))
            plan.plan_path = storage.join(here, plan.plan_path)
            plan.parts = [storage.join(here, p) for p in plan.parts]
        return plan


def plan_metas(out: str | Path) -> list[str]:
    """The plan records (`plan/{prefix}.json`) of a pipeline output, local or remote, in prefix order."""
    return storage.glob(storage.join(str(out), "plan", "*.json"))


def plan_files(out: str | Path) -> list[str]:
    """Every plan file (row data) of a pipeline output, in prefix order."""
    return [f for m in plan_metas(out) for f in InputPlan.load(m).files()]


def build_manifest(spec: InputSpec, out: str, map_fn: MapFn = serial_map) -> str:
    """The input's manifest: given, or written once from its recipe (atomic; reused after).
    The recipe lists files here; `map_fn` reads their headers in batches (Ray tasks in a run)."""
    if spec.manifest:
        return spec.manifest
    path = storage.join(out, "manifests", f"{spec.prefix}.parquet")
    if not storage.exists(path):
        # absolute paths: workers on other nodes (or another cwd) must find the files
        root = spec.root if takes_files(spec.recipe) else Path(spec.root).resolve()
        rows = records(spec.recipe, root, spec.split, map_fn=map_fn, **spec.options)
        manifest.write_manifest(path, rows, strict=False)
    return path


def spec_placement(spec: InputSpec) -> str:
    """How an input's items are placed in shards: the recipe's choice ("position" for corpora
    in containers), "hash" for a manifest given as is."""
    return "hash" if spec.manifest else recipe_placement(spec.recipe)


def bytes_per_second(cfg: PipelineConfig, tokenizer: dict | None) -> float:
    """Planned shard bytes per audio second; `tokenizer` is its describe() (None: audio mode)."""
    if tokenizer is None:
        return cfg.sample_rate * 2 * 0.7  # 16-bit FLAC of speech compresses to ~70%
    return tokenizer["frame_rate"] * tokenizer["n_codebooks"] * 2  # int16 codes


class PlanMismatch(RuntimeError):
    """A run asked of an output that was planned with another configuration."""


def check_resumable(cfg: PipelineConfig, out: str) -> None:
    """Refuse, before anything is loaded or written, a config that differs from the one an
    existing output was planned with; the message names each differing field."""
    from .simulate import SIMULATED

    metas = plan_metas(out)
    names = [spec.prefix for spec in cfg.inputs] + ([SIMULATED] if cfg.simulate is not None else [])
    for name in names:  # the simulated pairs are an input of the run too
        meta_path = storage.join(out, "plan", f"{name}.json")
        if meta_path not in metas:
            continue
        meta = json.loads(storage.read_text(meta_path))
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
    planned = {os.path.basename(m)[: -len(".json")] for m in metas}
    extra = sorted(planned - set(names))
    if extra:
        raise PlanMismatch(f"{out} also holds input(s) {extra} that this config does not name; resume with the "
                           "same inputs, or write to a new output folder (--out).")


# ---- stage: row checks and id hashes, one task per range of manifest row groups ----------

def id_hashes(ids: list[str]) -> np.ndarray:
    """The 64-bit blake2b of each id (`stable_shard` is this mod n_shards)."""
    b2 = hashlib.blake2b
    return np.fromiter((int.from_bytes(b2(u.encode("utf-8"), digest_size=8).digest(), "little") for u in ids),
                       dtype=np.uint64, count=len(ids))


def reject_row(row: dict, reason: str, detail: str, seconds: float | None, stage: str) -> dict:
    """A rejects-table row (REJECT_SCHEMA) for a manifest row, at any stage."""
    return {"id": row.get("id") if isinstance(row.get("id"), str) else None, "corpus": row.get("corpus"),
            "domain": row.get("domain"), "path": row.get("path"), "reason": reason, "detail": detail,
            "seconds": seconds, "stage": stage}


def _reject_of(row: dict, reason: str, detail: str) -> dict:
    """A planning reject: its seconds are the manifest duration when that is a usable number."""
    dur = row.get("duration")
    seconds = float(dur) if manifest._is_number(dur) and math.isfinite(dur) and dur > 0 else None
    return reject_row(row, reason, detail, seconds, "plan")


def _problem_reject(row: dict, probs: list[tuple[str, str]]) -> dict:
    return _reject_of(row, f"invalid_manifest:{probs[0][0]}", "; ".join(f"{f}: {m}" for f, m in probs))


def _blank(col) -> np.ndarray:
    return pc.fill_null(pc.equal(pc.utf8_trim_whitespace(col), ""), True).to_numpy(zero_copy_only=False)


def _suspects(t: pa.Table) -> np.ndarray:
    """Rows that may break the schema (a superset, vectorised); `manifest.problems` decides."""
    bad = np.zeros(t.num_rows, dtype=bool)
    for name in ("id", "corpus", "split", "path"):
        bad |= _blank(t.column(name))
    bad |= ~pc.fill_null(pc.is_in(t.column("domain"), value_set=pa.array(manifest.DOMAINS)), False).to_numpy(
        zero_copy_only=False)
    off = t.column("offset")
    bad |= ~pc.fill_null(pc.and_(pc.is_finite(off), pc.greater_equal(off, 0.0)), False).to_numpy(zero_copy_only=False)
    dur = t.column("duration")
    bad |= ~pc.fill_null(pc.and_(pc.is_finite(dur), pc.greater(dur, 0.0)), True).to_numpy(zero_copy_only=False)
    for name in ("sample_rate", "channels"):
        bad |= ~pc.fill_null(pc.greater(t.column(name), 0), True).to_numpy(zero_copy_only=False)
    return bad


def check_batch(batch: pa.RecordBatch, first_row: int) -> tuple[pa.Table, list[dict]]:
    """(valid rows as STAGE_SCHEMA, reject rows) of one manifest batch. A batch in the manifest
    schema is checked column-wise and only suspect rows go through `manifest.problems`; any
    other batch (a hand-made Parquet with other types or columns) row by row, as before."""
    rows_no = np.arange(first_row, first_row + batch.num_rows, dtype=np.int64)
    rejects: list[dict] = []
    if batch.schema.names == manifest.SCHEMA.names and batch.schema.types == manifest.SCHEMA.types:
        t = pa.Table.from_batches([batch])
        suspect = _suspects(t)
        extras = t.column("extra").to_pylist()
        flagged: dict[int, str] = {}
        for i, e in enumerate(extras):
            if e is None:
                continue
            try:
                obj = json.loads(e)
            except ValueError:
                suspect[i] = True
                continue
            if not isinstance(obj, dict):
                suspect[i] = True
            elif obj.get(REJECT_KEY):
                flagged[i] = str(obj[REJECT_KEY])
        keep = np.ones(t.num_rows, dtype=bool)
        for i in np.flatnonzero(suspect).tolist() + sorted(flagged):
            if not keep[i]:
                continue
            row = t.slice(i, 1).to_pylist()[0]
            probs = manifest.problems(row)
            if probs:
                rejects.append(_problem_reject(row, probs))
                keep[i] = False
            elif i in flagged:
                reason, _, detail = flagged[i].partition(": ")
                rejects.append(_reject_of(row, reason, detail))
                keep[i] = False
        valid = t.filter(pa.array(keep)) if not keep.all() else t
        ids = valid.column("id").to_pylist()
        rows_no = rows_no[keep]
    else:
        good, rows = [], batch.to_pylist()
        for i, row in enumerate(rows):
            probs = manifest.problems(row)
            extra = row.get("extra")
            obj = json.loads(extra) if not probs and isinstance(extra, str) and extra else {}
            if probs:
                rejects.append(_problem_reject(row, probs))
            elif obj.get(REJECT_KEY):
                reason, _, detail = str(obj[REJECT_KEY]).partition(": ")
                rejects.append(_reject_of(row, reason, detail))
            else:
                good.append(i)
        # a missing offset column means 0 (as `manifest.problems` reads it)
        valid = pa.Table.from_pylist([{"offset": 0.0, **rows[i]} for i in good], schema=manifest.SCHEMA)
        ids = valid.column("id").to_pylist()
        rows_no = rows_no[good]
    valid = valid.append_column("_h", pa.array(id_hashes(ids), pa.uint64())).append_column("_row", pa.array(rows_no))
    return valid.cast(STAGE_SCHEMA), rejects


def _write_rejects(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(pa.Table.from_pylist(rows, schema=REJECT_SCHEMA), str(tmp))
    os.replace(tmp, path)


def stage(mpath: str, row_groups: list[int], first_row: int, dest: str) -> dict:
    """Stage task: check the rows of some manifest row groups; valid rows -> `dest`.arrow,
    rejects -> `dest`.rejects.parquet. Returns counts and planned seconds."""
    dest_p = Path(dest)
    tmp = dest_p.with_name(f".{dest_p.name}.arrow.tmp")
    n, valid, seconds, rejects = first_row, 0, 0.0, []
    with ipc.new_file(str(tmp), STAGE_SCHEMA) as w:
        for batch in manifest.iter_batches(mpath, BATCH_ROWS, row_groups=row_groups):
            t, rej = check_batch(batch, n)
            n += batch.num_rows
            rejects += rej
            if t.num_rows:
                w.write_table(t)
                valid += t.num_rows
                seconds += pc.sum(pc.fill_null(t.column("duration"), UNKNOWN_DURATION)).as_py() or 0.0
    os.replace(tmp, f"{dest}.arrow")
    _write_rejects(Path(f"{dest}.rejects.parquet"), rejects)
    return {"rows": valid, "seconds": seconds, "rejected": len(rejects)}


# ---- partition: staged rows -> plan parts, one task per staged file -------------------------

def shard_of(t: pa.Table | pa.RecordBatch, n_shards: int, placement: tuple = ("hash",)) -> np.ndarray:
    """Each staged row's shard: ("hash",) by its id's 64-bit hash; ("position", rows) by its
    manifest row number, in runs of rows / n_shards consecutive rows."""
    if placement[0] == "position":
        return t.column("_row").to_numpy().astype(np.int64) * n_shards // max(int(placement[1]), 1)
    return (t.column("_h").to_numpy() % np.uint64(n_shards)).astype(np.int64)


def partition(staged: str, n_shards: int, shards_per_part: int, dest_prefix: str,
              placement: tuple = ("hash",)) -> list[int]:
    """Split a staged file by plan part (`shard // shards_per_part`) into
    `{dest_prefix}-pNNNNN.arrow`; returns the parts written."""
    writers: dict[int, ipc.RecordBatchFileWriter] = {}
    try:
        with pa.memory_map(staged) as src:
            reader = ipc.open_file(src)
            for i in range(reader.num_record_batches):
                b = reader.get_batch(i)
                part = shard_of(b, n_shards, placement) // shards_per_part
                order = np.argsort(part, kind="stable")
                b, part = b.take(pa.array(order)), part[order]
                cuts = np.flatnonzero(np.diff(part)) + 1
                for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(part)]):
                    p = int(part[lo])
                    if p not in writers:
                        writers[p] = ipc.new_file(f"{dest_prefix}-p{p:05d}.arrow.tmp", STAGE_SCHEMA)
                    writers[p].write_batch(b.slice(lo, hi - lo))
    finally:
        for w in writers.values():
            w.close()
    for p in writers:
        os.replace(f"{dest_prefix}-p{p:05d}.arrow.tmp", f"{dest_prefix}-p{p:05d}.arrow")
    return sorted(writers)


# ---- parts: sort, drop repeated ids, one row group per shard ----------------------------------

def _read_staged(sources: list[str]) -> pa.Table:
    tables = []
    for f in sources:
        with pa.memory_map(f) as src:
            tables.append(ipc.open_file(src).read_all())
    return pa.concat_tables(tables) if tables else STAGE_SCHEMA.empty_table()


def _drop_repeats(t: pa.Table) -> tuple[pa.Table, list[dict]]:
    """Rows of `t` (sorted so that equal ids are adjacent, the first in manifest order first)
    without the repeats of an id, and a duplicate_id reject for each repeat."""
    ids = t.column("id").combine_chunks()
    repeat = np.zeros(t.num_rows, dtype=bool)
    if t.num_rows > 1:  # an id equal to the previous one
        repeat[1:] = pc.equal(ids.slice(1), ids.slice(0, t.num_rows - 1)).to_numpy(zero_copy_only=False)
    rejects = []
    for i in np.flatnonzero(repeat):
        row = t.slice(int(i), 1).select(["id", "corpus", "domain", "path", "duration", "_row"]).to_pylist()[0]
        rejects.append(_reject_of(row, "duplicate_id", f"id {row['id']!r} already planned (row {row['_row']})"))
    return (t.filter(pa.array(~repeat)) if repeat.any() else t), rejects


def drop_repeats(sources: list[str], dest: str, rejects_dest: str) -> int:
    """Repeats task (position placement): the rows of one id-hash bucket without repeated ids
    -> `dest`.arrow, the repeats -> `rejects_dest`. Returns the rows kept."""
    t, rejects = _drop_repeats(_read_staged(sources).sort_by([("id", "ascending"), ("_row", "ascending")]))
    with ipc.new_file(f"{dest}.arrow.tmp", STAGE_SCHEMA) as w:
        w.write_table(t)
    os.replace(f"{dest}.arrow.tmp", f"{dest}.arrow")
    _write_rejects(Path(rejects_dest), rejects)
    return t.num_rows


def write_part(sources: list[str], n_shards: int, dest: str, rejects_dest: str,
               placement: tuple = ("hash",)) -> dict:
    """Plan part task: rows of a run of shards -> `dest` (Parquet, one row group per shard,
    rows sorted by id); repeated ids -> `rejects_dest`. Returns {shard: row group}."""
    t = _read_staged(sources)
    t = t.append_column("shard", pa.array(shard_of(t, n_shards, placement).astype(np.int32)))
    t, rejects = _drop_repeats(t.sort_by([("shard", "ascending"), ("id", "ascending"), ("_row", "ascending")]))
    t = t.select(PLAN_SCHEMA.names).cast(PLAN_SCHEMA)
    shards = t.column("shard").to_numpy()
    row_group: dict[int, int] = {}
    # per-shard row groups are small: no dictionaries or statistics (faster to write, and smaller)
    with storage.output_path(dest) as tmp, pq.ParquetWriter(tmp, PLAN_SCHEMA, compression="zstd",
                                                              use_dictionary=False, write_statistics=False) as w:
        cuts = np.flatnonzero(np.diff(shards)) + 1
        for g, (lo, hi) in enumerate(zip(np.r_[0, cuts], np.r_[cuts, len(shards)]) if len(shards) else ()):
            w.write_table(t.slice(lo, hi - lo), row_group_size=int(hi - lo) + 1)
            row_group[int(shards[lo])] = g
    _write_rejects(Path(rejects_dest), rejects)
    return {"row_group": row_group, "rows": t.num_rows, "rejected": len(rejects)}


def _stage_units(mpath: str) -> list[tuple[list[int], int]]:
    """Whole manifest row groups grouped into runs of about STAGE_ROWS rows: (row groups, first row)."""
    with storage.arrow_file(mpath) as f:
        meta = pq.ParquetFile(f).metadata
    units, cur, first, n = [], [], 0, 0
    for g in range(meta.num_row_groups):
        if cur and n - first >= STAGE_ROWS:
            units.append((cur, first))
            cur, first = [], n
        cur.append(g)
        n += meta.row_group(g).num_rows
    if cur or not units:
        units.append((cur, first))
    return units


def plan_input(spec: InputSpec, cfg: PipelineConfig, out: str, tokenizer: dict | None = None,
               map_fn: MapFn = serial_map, say: Callable[[str], None] | None = None) -> InputPlan:
    """The plan of one input (read back when it exists: a rerun plans nothing). `map_fn` runs
    the stage, partition and part tasks (`serial_map` here; `pipeline run` passes Ray's);
    `say` gets a line per phase (a 50M-row plan takes minutes). `out` is a local folder or a
    prefix in object storage; for the latter the working files stay on this machine (the
    stage and partition tasks then run here: their files are not shared) and only the plan
    parts, rejects and record are uploaded."""
    say = say or (lambda text: None)
    plan_dir = storage.join(out, "plan")
    meta_path = storage.join(plan_dir, f"{spec.prefix}.json")
    if storage.exists(meta_path):
        check_resumable(cfg, out)
        return InputPlan.load(meta_path)

    if not spec.manifest:
        say(f"{spec.prefix}: writing the manifest (headers read in batches of files)")
    mpath = build_manifest(spec, out, map_fn)
    parts_dir = storage.join(plan_dir, f"{spec.prefix}.parts")
    if storage.is_uri(out):
        work = Path(tempfile.mkdtemp(prefix=f"uniaudio-plan-{spec.prefix}-"))
        map_fn = serial_map
    else:
        work = Path(plan_dir) / f".{spec.prefix}.work"  # a crashed planning leaves only this (and no meta)
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
    storage.delete_tree(parts_dir)  # parts of a planning that crashed before its record
    storage.makedirs(parts_dir)
    try:
        plan = _plan(spec, cfg, mpath, work, parts_dir, tokenizer, map_fn, say)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    meta = dict(plan.__dict__, fingerprint=cfg.fingerprint(), config=cfg.plan_fields(), version=PLAN_VERSION)
    storage.write_text(meta_path, json.dumps(meta))  # written last: its presence means the plan is complete
    return InputPlan.load(meta_path)


def _split(staged: list[str], n_shards: int, spp: int, n_parts: int, placement: tuple,
           map_fn: MapFn) -> list[list[str]]:
    """Partition tasks over staged files (each removed after): the files of each plan part."""
    written = map_fn(partition, [(f"{s}.arrow", n_shards, spp, s, placement) for s in staged])
    for s in staged:
        os.unlink(f"{s}.arrow")
    sources: list[list[str]] = [[] for _ in range(n_parts)]
    for s, ps in zip(staged, written):
        for p in ps:
            sources[p].append(f"{s}-p{p:05d}.arrow")
    return sources


def _plan(spec: InputSpec, cfg: PipelineConfig, mpath: str, work: Path, parts_dir: str, tokenizer: dict | None,
          map_fn: MapFn, say: Callable[[str], None]) -> InputPlan:
    """Stage, partition and write the parts of one input (see the module docstring)."""
    units = _stage_units(mpath)
    total = manifest.count(mpath)
    say(f"{spec.prefix}: checking {total:,} manifest rows ({len(units)} task(s))")
    staged = [str(work / f"stage-{u:05d}") for u in range(len(units))]
    counts = map_fn(stage, [(mpath, rgs, first, dest) for (rgs, first), dest in zip(units, staged)])
    rejects = [f"{s}.rejects.parquet" for s in staged]
    rows = sum(c["rows"] for c in counts)
    est_bytes = sum(c["seconds"] for c in counts) * bytes_per_second(cfg, tokenizer)
    # rows passing the row checks; a repeated id is found (and rejected) per shard afterwards
    n_shards = max(1, math.ceil(rows / cfg.shard.max_samples), math.ceil(est_bytes / cfg.shard.max_bytes))
    n_parts = min(n_shards, max(1, math.ceil(rows / PART_ROWS)))
    spp = math.ceil(n_shards / n_parts)
    n_parts = math.ceil(n_shards / spp)
    placement = ("position", total) if spec_placement(spec) == "position" else ("hash",)

    say(f"{spec.prefix}: {rows:,} rows -> {n_shards:,} shards in {n_parts} plan part(s), placed by {placement[0]}")
    if placement[0] == "position":  # repeats first: the copies of an id meet in one id-hash bucket
        buckets = _split(staged, n_shards, spp, n_parts, ("hash",), map_fn)
        staged = [str(work / f"unique-{p:05d}") for p in range(n_parts)]
        rejects += [str(work / f"repeats-{p:05d}.parquet") for p in range(n_parts)]
        map_fn(drop_repeats, [(buckets[p], staged[p], rejects[-n_parts + p]) for p in range(n_parts)])
        for f in (f for b in buckets for f in b):
            os.unlink(f)
    sources = _split(staged, n_shards, spp, n_parts, placement, map_fn)
    parts = [storage.join(parts_dir, f"part-{p:05d}.parquet") for p in range(n_parts)]
    rejects += [str(work / f"dups-{p:05d}.parquet") for p in range(n_parts)]
    done = map_fn(write_part, [(sources[p], n_shards, parts[p], rejects[-n_parts + p], placement)
                               for p in range(n_parts)])
    row_group = [-1] * n_shards
    for d in done:
        for shard, g in d["row_group"].items():
            row_group[int(shard)] = g

    with storage.output_path(storage.join(os.path.dirname(parts_dir), f"{spec.prefix}.rejects.parquet")) as tmp, \
            pq.ParquetWriter(tmp, REJECT_SCHEMA) as w:
        for f in rejects:
            w.write_table(pq.read_table(f, schema=REJECT_SCHEMA))
    name = os.path.basename(parts_dir)
    return InputPlan(prefix=spec.prefix, manifest=mpath, plan_path=name, n_shards=n_shards,
                     row_group=row_group, rows=sum(d["rows"] for d in done),
                     rejected=total - sum(d["rows"] for d in done),
                     parts=[f"{name}/{os.path.basename(p)}" for p in parts], shards_per_part=spp,
                     placement=placement[0])
