"""Manifest building from a real-layout corpus: the recipes list files in the driver and the
audio headers are read in batches, here in one process vs as Ray tasks on N CPUs, files/s
side by side (goal: scales with cores). The demo corpora at `--scale` stand in for
LibriSpeech / AudioCaps / MusicCaps (their on-disk layouts). Page cache: each mode reads the
headers once before it is timed, so both see warm files; a network filesystem's latency is
what the task pool hides best, and is not measured here.

    python benchmarks/manifest_build.py [--scale 50] [--num-cpus 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import demo_corpora  # noqa: E402

INPUTS = (("librispeech", "LibriSpeech"), ("audiocaps", "audiocaps"), ("musiccaps", "musiccaps"))


def build(corpora: Path, map_fn, dest: Path) -> int:
    from uniaudio import manifest
    from uniaudio.pipeline.recipes import records

    n = 0
    for recipe, sub in INPUTS:
        n += manifest.write_manifest(dest / f"{recipe}.parquet", records(recipe, corpora / sub, map_fn=map_fn),
                                     strict=False)
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=50.0)
    ap.add_argument("--num-cpus", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="best of N timed builds per mode")
    ap.add_argument("--work", default=None)
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="uniaudio-manifest-"))
    corpora = demo_corpora(work / f"corpora-x{args.scale:g}", args.scale)

    from uniaudio.pipeline.cluster import cluster_map, init_ray, serial_map
    from uniaudio.pipeline.cluster import RaySpec

    spec = RaySpec(num_cpus=args.num_cpus)
    t0 = time.time()
    init_ray(spec)
    ray_start = time.time() - t0
    modes = {"one process": serial_map, f"Ray tasks ({args.num_cpus} CPUs)": cluster_map(spec)}
    results = {}
    for name, map_fn in modes.items():
        build(corpora, map_fn, work / "warm")  # warm page cache and Ray workers
        best, files = float("inf"), 0
        for _ in range(args.repeat):
            t = time.time()
            files = build(corpora, map_fn, work / f"m-{time.time_ns()}")
            best = min(best, time.time() - t)
        results[name] = (files, best)
    print(f"demo corpora x{args.scale:g}; best of {args.repeat}; Ray start (once per run, not included): {ray_start:.1f} s")
    print(f"{'mode':>22}{'files':>8}{'seconds':>10}{'files/s':>10}")
    for name, (files, secs) in results.items():
        print(f"{name:>22}{files:>8}{secs:>10.2f}{files / secs:>10.0f}")
    (_, (f0, s0)), (_, (f1, s1)) = results.items()
    print(f"speed-up on {args.num_cpus} CPUs: {s0 / s1:.2f}x (ideal {args.num_cpus}x)")


if __name__ == "__main__":
    main()
