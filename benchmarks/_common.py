"""Helpers for benchmark scripts: demo corpora on demand, RSS sampling via /proc."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path


def progress(iterable, desc: str, total: int | None = None):
    """A progress bar on stderr for loops that run more than a few seconds (tables stay on stdout)."""
    import sys

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
