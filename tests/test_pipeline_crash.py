"""Crash, resume and cluster runs of the real CLI in separate processes, with the output in a
local folder and on a real S3 server (object storage has no atomic rename: the commit protocol
is the tar first, its done record after)."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline_helpers import shard_ids, tar_state
from uniaudio import manifest, storage

BIN = Path(sys.executable).parent
HERE = Path(__file__).parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from concurrent.futures import ThreadPoolExecutor

    from uniaudio.demo import speech

    root = tmp_path_factory.mktemp("crash-demo") / "LibriSpeech"  # the demo's speech alone: 72 utterances
    utts = speech.plan(11, 1.5)
    speech.write_index_files(utts, root)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda u: speech.synthesize(u, root), utts))
    return root


@pytest.fixture(params=["local", "s3"])
def out(request, tmp_path):
    """Where the run writes: a local folder, or a prefix on the test S3 server."""
    if request.param == "local":
        return str(tmp_path / "out")
    bucket = request.getfixturevalue("s3").bucket(f"crash-{request.node.name.split('[')[0][5:30].replace('_', '-')}")
    return f"{bucket}/runs/{tmp_path.name}"


def cli(out: str, corpus: Path, config: Path | None = None) -> list[str]:
    return [str(BIN / "uniaudio"), "pipeline", "run", *([str(config)] if config else []),
            "--input", f"librispeech:{corpus}", "--out", str(out), "--shard-samples", "2", "--num-cpus", "2"]


def with_pairs(tmp_path: Path, out: str, corpus: Path) -> Path:
    """A config that also simulates reverberant and two-speaker pairs (half the utterances each)."""
    p = tmp_path / "pairs.yaml"
    p.write_text(json.dumps({"inputs": [{"recipe": "librispeech", "root": str(corpus)}], "output": out,
                             "simulate": {"dereverb": {"per_item": 0.5}, "tse": {"per_item": 0.5}}}))
    return p


def wait_for_tars(out: str, n: int, proc: subprocess.Popen, timeout=120) -> None:
    t0 = time.time()
    while len(storage.glob(storage.join(out, "shards", "*.tar"))) < n:
        assert proc.poll() is None, "run finished before the crash point"
        assert time.time() - t0 < timeout
        time.sleep(0.05)


def done_records(out: str) -> list[dict]:
    return [json.loads(storage.read_text(p)) for p in storage.glob(storage.join(out, "done", "*.json"))]


def finished_state(out: str) -> dict:
    """Tars that have a done record: the shards a resume must leave untouched."""
    state = tar_state(out)
    done = {rec["tar"] for rec in done_records(out)}
    return {k: v for k, v in state.items() if k in done}


def assert_exactly_once(out: str) -> None:
    ids = shard_ids(out)
    planned = [r.id for m in storage.glob(storage.join(out, "manifests", "*.parquet")) for r in manifest.iter_records(m)]
    assert len(ids) == len(set(ids)), "an utterance is in two shards"
    assert sorted(ids) == sorted(planned), "an utterance is missing"
    res = subprocess.run([str(BIN / "uniaudio"), "pipeline", "verify", str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_kill_driver_and_resume(out, corpus, tmp_path):
    """With simulated pairs on: their manifest and shards resume exactly once like the corpus's."""
    pairs = with_pairs(tmp_path, out, corpus)
    proc = subprocess.Popen(cli(out, corpus, pairs), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_tars(out, random.Random().randint(2, 8), proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = finished_state(out)
    assert before, "nothing was finished before the kill"
    res = subprocess.run(cli(out, corpus, pairs), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    after = tar_state(out)
    assert any(n.startswith("simulated-") for n in after)
    for name, state in before.items():
        assert after[name] == state, f"{name} was rewritten"
    assert json.loads(storage.read_text(storage.join(out, "report.json")))["shards"]["skipped_done"] >= len(before)
    assert_exactly_once(out)


def test_kill_driver_with_curation_stages_on(tmp_path, corpus):
    """Segmentation, a measure (prosody: the measure step's path at a fraction of DNSMOS's time) and
    dedup on: after kill -9 and a resume, every planned segment is in exactly one shard or in
    rejects, finished shards untouched, the funnel whole."""
    from pipeline_helpers import plan_rows

    from uniaudio.pipeline.recipes import records

    out = str(tmp_path / "out")
    first = tmp_path / "first.parquet"  # 16 utterances: 8 shards, the kill lands among them
    manifest.write_manifest(first, sorted(records("librispeech", corpus), key=lambda r: r.id)[:16])
    cfg = tmp_path / "curate.yaml"
    cfg.write_text(json.dumps({"inputs": [{"manifest": str(first), "name": "ls"}], "output": out,
                               "segment": {"min_seconds": 1.0, "longer_than": 0}, "measure": ["prosody"],
                               "dedup": True}))
    cmd = [str(BIN / "uniaudio"), "pipeline", "run", str(cfg), "--shard-samples", "2", "--num-cpus", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_tars(out, random.Random().randint(2, 5), proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = finished_state(out)
    assert before, "nothing was finished before the kill"
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    after = tar_state(out)
    assert all(after[name] == state for name, state in before.items()), "a finished shard was rewritten"
    ids = shard_ids(out)
    import pyarrow.parquet as pq

    rejected = [r["id"] for r in pq.read_table(Path(out) / "rejects.parquet").to_pylist()]
    planned = plan_rows(out)
    assert len(ids) == len(set(ids)) and sorted(ids + rejected) == sorted(planned)
    segments = [k for k, r in planned.items() if "segment_of" in r["extra"]]  # (and recordings with no speech)
    report = json.loads(Path(out, "report.json").read_text())
    funnel = {f["stage"]: f for f in report["funnel"]}
    assert funnel["segment"]["items_out"] == funnel["plan"]["items_in"] == len(segments) > 0
    assert funnel["tokenize"]["items_out"] == len(ids) and report["duplicates"] == 0
    assert all("f0_hz" in json.loads(r["measures"]) for r in pq.read_table(Path(out) / "index.parquet").to_pylist())


def _busy_ray_workers() -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines()[1:]
            if "ray::" in line and "IDLE" not in line and ("Map" in line or "decode" in line or "write" in line)]


def test_kill_worker_mid_run(out, corpus):
    proc = subprocess.Popen(cli(out, corpus), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for_tars(out, 2, proc)
    killed = 0
    t0 = time.time()
    while not killed and time.time() - t0 < 60 and proc.poll() is None:
        for pid in _busy_ray_workers():
            os.kill(pid, signal.SIGKILL)
            killed += 1
            break
        time.sleep(0.02)
    assert killed, "no busy Ray worker found to kill"
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]  # Ray retried the lost task
    assert_exactly_once(out)


def test_two_node_cluster(out, corpus):
    holder = subprocess.Popen([sys.executable, str(HERE / "ray_cluster_holder.py")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        address = holder.stdout.readline().strip()
        assert address.startswith("127.0.0.1:"), address
        env = dict(os.environ, RAY_ADDRESS=address, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
        cmd = cli(out, corpus)[:-2]  # --num-cpus is for a local Ray only
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
        assert res.returncode == 0, res.stderr[-2000:]
        nodes = {rec.get("node") for rec in done_records(out)} - {None}
        assert len(nodes) == 2, f"shards were written on {len(nodes)} node(s)"
        assert_exactly_once(out)
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
