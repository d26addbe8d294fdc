"""The data engine's driver in bounded memory: streamed planning in parts (same plan as the
planner before it), header reads as tasks, streamed finalize and verify. Synthetic manifests
(paths never opened) keep these fast; the audio path is covered by test_pipeline.py."""

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from uniaudio import manifest
from uniaudio.config import from_dict
from uniaudio.demo.manifests import synthetic_done_records, synthetic_manifest
from uniaudio.pipeline import plan as planmod
from uniaudio.pipeline.cluster import cluster_map, serial_map
from uniaudio.pipeline.config import PipelineConfig
from uniaudio.pipeline.plan import InputPlan, plan_input, stable_shard
from uniaudio.pipeline.recipes import records
from uniaudio.pipeline.recipes.common import REJECT_KEY
from uniaudio.pipeline.run import finalize
from uniaudio.pipeline.verify import verify

V1 = Path(__file__).parent / "data" / "plan_v1"  # written by the planner of PLAN_VERSION 1 (whole-table)


def cfg_for(out: Path, mpath: Path, **kw) -> PipelineConfig:
    return from_dict(PipelineConfig, {"inputs": [{"manifest": str(mpath), "name": "synth"}], "output": str(out), **kw})


def shard_rows(plan: InputPlan, shard: int) -> list[dict]:
    where = plan.location(shard)
    return [] if where is None else pq.ParquetFile(where[0]).read_row_group(where[1]).to_pylist()


def test_same_plan_as_the_whole_table_planner(tmp_path):
    """Same shard count, same rows in the same order per shard, same rejects as a plan the
    previous planner wrote (tests/data/plan_v1), and that plan still loads and is read."""
    cfg = cfg_for(tmp_path / "new", V1 / "manifest.parquet", shard={"max_samples": 50})
    new = plan_input(cfg.inputs[0], cfg, tmp_path / "new")
    meta = json.loads((V1 / "plan" / "synth.json").read_text())
    assert meta["version"] == 1 and (new.n_shards, new.rows, new.rejected) == (meta["n_shards"], meta["rows"], meta["rejected"])

    old_dir = tmp_path / "old" / "plan"
    shutil.copytree(V1 / "plan", old_dir)
    meta["plan_path"] = str(old_dir / "synth.parquet")
    (old_dir / "synth.json").write_text(json.dumps(meta))
    old = InputPlan.load(old_dir / "synth.json")
    assert old.parts is None and old.files() == [str(old_dir / "synth.parquet")]
    strip = lambda rows: [dict(r, path=r["path"].rsplit("/nonexistent", 1)[-1]) for r in rows]  # noqa: E731
    for s in range(new.n_shards):
        assert strip(shard_rows(new, s)) == strip(shard_rows(old, s)), s
        assert all(stable_shard(r["id"], new.n_shards) == s for r in shard_rows(new, s))
    key = lambda r: (r["id"], r["reason"], r["detail"])  # noqa: E731
    assert sorted(map(key, pq.read_table(new.rejects_path).to_pylist())) == \
        sorted(map(key, pq.read_table(old.rejects_path).to_pylist()))


def reference_plan(mpath: Path, n_shards: int) -> tuple[dict[int, list[str]], dict[str, str]]:
    """Row by row, in manifest order: what the plan must hold, and the reject reasons."""
    shards: dict[int, list[str]] = {}
    reasons, seen = {}, set()
    for n, row in enumerate(manifest.read_rows(mpath)):
        extra = row["extra"]
        probs = manifest.problems(row)
        if probs:
            reasons[f"{row['id']}@{n}"] = f"invalid_manifest:{probs[0][0]}"
        elif json.loads(extra).get(REJECT_KEY):
            reasons[f"{row['id']}@{n}"] = json.loads(extra)[REJECT_KEY].partition(": ")[0]
        elif row["id"] in seen:
            reasons[f"{row['id']}@{n}"] = "duplicate_id"
        else:
            seen.add(row["id"])
            shards.setdefault(stable_shard(row["id"], n_shards), []).append(row["id"])
    return {s: sorted(v) for s, v in shards.items()}, reasons


@pytest.mark.parametrize("where", ["serial", "ray"])
def test_planning_in_stages_and_parts(tmp_path, monkeypatch, ray_local, where):
    """Several stage tasks and plan parts (sizes shrunk), every kind of damage planted: the
    plan equals the row-by-row reference; repeated ids are caught across stage tasks."""
    monkeypatch.setattr(planmod, "STAGE_ROWS", 300)
    monkeypatch.setattr(planmod, "PART_ROWS", 200)
    mpath = synthetic_manifest(tmp_path / "m.parquet", 1500, seed=3, batch=100,
                               damage=("duplicate", "negative", "flagged", "json"))
    cfg = cfg_for(tmp_path / "out", mpath, shard={"max_samples": 40})
    map_fn = cluster_map(cfg.ray) if where == "ray" else serial_map
    plan = plan_input(cfg.inputs[0], cfg, tmp_path / "out", None, map_fn)
    assert len(plan.parts) >= 5 and plan.shards_per_part > 1
    want, reasons = reference_plan(mpath, plan.n_shards)
    got = {s: [r["id"] for r in shard_rows(plan, s)] for s in range(plan.n_shards) if plan.location(s)}
    assert got == want
    rej = pq.read_table(plan.rejects_path).to_pylist()
    assert sorted(r["reason"] for r in rej) == sorted(reasons.values())
    assert {"duplicate_id", "invalid_manifest:duration", "invalid_manifest:extra", "invalid_utf8"} <= {r["reason"] for r in rej}
    dup = next(r for r in rej if r["reason"] == "duplicate_id")
    assert "already planned (row " in dup["detail"]
    assert plan.rows == sum(map(len, want.values())) and plan.rejected == len(rej)
    # planning again is reading the plan back
    assert plan_input(cfg.inputs[0], cfg, tmp_path / "out") == plan
    assert not list((tmp_path / "out" / "plan").glob(".*"))  # no work files left behind


def test_manifest_that_breaks_the_schema_types(tmp_path):
    """A hand-made Parquet with other column types is checked row by row, as before."""
    mpath = tmp_path / "hand.parquet"
    pq.write_table(pa.Table.from_pydict({
        "id": ["a", "b", ""], "corpus": ["c"] * 3, "split": ["train"] * 3, "domain": ["speech"] * 3,
        "path": ["/x/a.wav", "/x/b.wav", "/x/c.wav"], "duration": [2, -1, 1],  # int64, no offset column
        "sample_rate": [16000.0, 16000.0, 16000.0]}), mpath)  # a float sample rate is not an integer
    cfg = cfg_for(tmp_path / "out", mpath)
    plan = plan_input(cfg.inputs[0], cfg, tmp_path / "out")
    assert plan.rows == 0 and plan.rejected == 3
    assert sorted(r["reason"] for r in pq.read_table(plan.rejects_path).to_pylist()) == [
        "invalid_manifest:duration", "invalid_manifest:id", "invalid_manifest:sample_rate"]

    pq.write_table(pa.Table.from_pydict({
        "id": ["a", "b"], "corpus": ["c"] * 2, "split": ["train"] * 2, "domain": ["speech"] * 2,
        "path": ["/x/a.wav", "/x/b.wav"], "duration": [2, 3]}), mpath)
    cfg = cfg_for(tmp_path / "out2", mpath)
    plan = plan_input(cfg.inputs[0], cfg, tmp_path / "out2")
    row = next(r for r in shard_rows(plan, stable_shard("a", plan.n_shards)) if r["id"] == "a")
    assert plan.rows == 2 and row["duration"] == 2.0 and row["offset"] == 0.0


def test_finalize_and_verify_stream_and_catch_damage(tmp_path):
    mpath = synthetic_manifest(tmp_path / "m.parquet", 3000, seed=5, damage=("duplicate",))
    out = tmp_path / "out"
    cfg = cfg_for(out, mpath, shard={"max_samples": 100})
    plan = plan_input(cfg.inputs[0], cfg, out)
    synthetic_done_records(out)
    report = finalize(out, [plan], cfg, wall=1.0, processed_seconds=0.0, shards_run=0, shards_skipped=0)
    assert report["samples"] == plan.rows and report["rejected"] == plan.rejected > 0
    assert report["rejects_by_reason"] == {"duplicate_id": plan.rejected}
    durations = pq.read_table(plan.files()[0], columns=["duration"]).column("duration").to_pylist()
    assert report["by_corpus"]["synthetic"]["samples"] == plan.rows
    assert report["by_corpus"]["synthetic"]["hours_out"] == pytest.approx(
        sum(d for f in plan.files() for d in pq.read_table(f, columns=["duration"]).column("duration").to_pylist()) / 3600,
        abs=1e-3) and durations
    index = pq.read_table(out / "index.parquet")
    assert index.num_rows == plan.rows and len(set(index.column("id").to_pylist())) == plan.rows
    assert verify(out, tars=False)["problems"] == []
    assert any("missing" in p for p in verify(out)["problems"])  # tars named but never written
    from click.testing import CliRunner
    from uniaudio.cli import main

    res = CliRunner().invoke(main, ["pipeline", "verify", str(out), "--records-only"])
    assert res.exit_code == 0 and f"{plan.rows} samples, 0 problems" in res.output

    # a sample moved to another shard's record: the hash check names it
    a, b = out / "done" / "synth-000000.json", out / "done" / "synth-000001.json"
    ra, rb = json.loads(a.read_text()), json.loads(b.read_text())
    rb["samples"].append(ra["samples"].pop())
    a.write_text(json.dumps(ra))
    b.write_text(json.dumps(rb))
    probs = verify(out, tars=False)["problems"]
    assert any("belong to other shards" in p for p in probs) and any("index.parquet rows" in p for p in probs)


def test_headers_are_read_in_tasks(demo_root, ray_local, monkeypatch):
    """Header reads as Ray tasks (batches shrunk to make several) give the same rows as here."""
    from uniaudio.pipeline import recipes
    from uniaudio.pipeline.cluster import RaySpec

    monkeypatch.setattr(recipes, "HEADER_BATCH", 5)
    monkeypatch.setattr(recipes, "HEADER_WINDOW", 3)
    here = list(records("librispeech", demo_root / "LibriSpeech"))
    tasks = list(records("librispeech", demo_root / "LibriSpeech", map_fn=cluster_map(RaySpec())))
    assert here == tasks and len(here) > 15
    assert all(r.duration and r.duration > 0 and r.sample_rate == 16000 and r.channels == 1 for r in here)


def test_resume_checks_of_many_shards_run_in_threads(tmp_path):
    from uniaudio.pipeline.run import _done_flags
    from uniaudio.pipeline.stages import is_done

    mpath = synthetic_manifest(tmp_path / "m.parquet", 3000, seed=2)
    out = tmp_path / "out"
    cfg = cfg_for(out, mpath, shard={"max_samples": 10})
    plan = plan_input(cfg.inputs[0], cfg, out)
    assert plan.n_shards >= 256  # the threaded path
    synthetic_done_records(out)
    for rec in sorted((out / "done").glob("*.json"))[::7]:  # every 7th shard: its tar written, as recorded
        r = json.loads(rec.read_text())
        if r["tar"]:
            tar = out / "shards" / r["tar"]
            tar.parent.mkdir(exist_ok=True)
            tar.write_bytes(b"x")
            r.update(bytes=1, mtime_ns=tar.stat().st_mtime_ns)
            rec.write_text(json.dumps(r))
    flags = _done_flags(out, plan, rehash=False, progress=False)
    assert flags == [is_done(out, plan.shard_name(s)) for s in range(plan.n_shards)]
    assert 0 < sum(flags) < plan.n_shards
