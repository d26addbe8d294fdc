"""Helpers for benchmark scripts: demo corpora and token shards on demand, RSS sampling via
/proc, limits timed on the same number of processes as the pipeline."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def progress(iterable, desc: str, total: int | None = None):
    """A progress bar on stderr for loops that run more than a few seconds (tables stay on stdout)."""
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, unit="it", file=sys.stderr, leave=False)


def demo_corpora(root: Path, scale: float, seed: int = 0) -> Path:
    if not (root / "demo.json").exists():
        from uniaudio.demo import build_demo

        build_demo(root, seed=seed, scale=scale, progress=False)
    return root


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM, which starts afresh at exec (getrusage's ru_maxrss
    would carry the parent's peak over from the fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def ray_worker_pids() -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [int(l.split()[0]) for l in out.splitlines()[1:] if "ray::" in l]


def run_sampling(cmd: list[str], env: dict | None = None, interval: float = 0.1) -> dict:
    """Run cmd, sampling peak RSS of the driver and of each Ray worker."""
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, **(env or {})))
    driver = worker = workers_total = 0.0
    while proc.poll() is None:
        driver = max(driver, rss_mb(proc.pid))
        ws = [rss_mb(p) for p in ray_worker_pids()]
        if ws:
            worker, workers_total = max(worker, max(ws)), max(workers_total, sum(ws))
        time.sleep(interval)
    err = proc.stderr.read()
    if proc.returncode:
        raise RuntimeError(f"{cmd} failed: {err[-2000:]}")
    return {"wall": time.time() - t0, "driver_mb": driver, "worker_mb": worker, "workers_total_mb": workers_total}


def _timed_worker(prepare, work, arg, barrier, results) -> None:
    import time as _t

    state = prepare(arg)  # model loads, decoding: not timed
    barrier.wait()
    work(state)
    results.put(_t.monotonic())


def parallel_wall(prepare, work, args: list) -> float:
    """Wall seconds for one process per element of `args` to run work(prepare(arg)), timed from
    the moment all are prepared to the last finish: a limit measured on as many cores as the
    pipeline it is compared with. prepare/work must be module-level functions."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    n = len(args)
    barrier, results = ctx.Barrier(n + 1), ctx.Queue()
    procs = [ctx.Process(target=_timed_worker, args=(prepare, work, a, barrier, results)) for a in args]
    for p in procs:
        p.start()
    barrier.wait()
    t0 = time.monotonic()
    ends = [results.get() for _ in procs]
    for p in procs:
        p.join()
    return max(ends) - t0


def token_shards(work: Path, scale: float, tokenizer: str = "uniaudio-codec", options: tuple = ("beam=1",),
                 shard_samples: int = 32) -> Path:
    """A finished token-shard output of the demo corpora at `scale` (built once per work folder)."""
    out = work / f"tokens-x{scale:g}-{tokenizer}"
    if (out / "report.json").exists():
        return out
    corpora = demo_corpora(work / f"corpora-x{scale:g}", scale)
    cmd = [str(Path(sys.executable).parent / "uniaudio"), "pipeline", "run", "--out", str(out), "--tokenizer", tokenizer,
           "--shard-samples", str(shard_samples), "--num-cpus", "2",
           "--input", f"librispeech:{corpora / 'LibriSpeech'}", "--input", f"audiocaps:{corpora / 'audiocaps'}",
           "--input", f"musiccaps:{corpora / 'musiccaps'}"]
    for opt in options:
        cmd += ["--tokenizer-option", opt]
    print(f"building token shards at demo scale {scale:g} ({tokenizer})...", file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return out
