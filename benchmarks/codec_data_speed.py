"""Codec training input speed: crops read from disk per step vs preloaded into RAM
(`preload: true`), side by side, on the same manifests, seed and steps.

    python benchmarks/codec_data_speed.py MANIFEST [MANIFEST ...] [--batch 32] [--steps 50]

A GPU step of the default codec takes ~30 ms at batch 32 (H100), so the input has to be
well under that to keep the GPU busy."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import progress  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("manifests", nargs="+")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=1.0)
    args = ap.parse_args()

    from uniaudio.train.codec_trainer import CropSampler

    t = time.perf_counter()
    mem = CropSampler(args.manifests, 16000, args.seconds, seed=0, preload=True)
    preload_s = time.perf_counter() - t
    disk = CropSampler(args.manifests, 16000, args.seconds, seed=0)
    ms = {}
    for name, sampler in (("disk", disk), ("preload", mem)):
        t = time.perf_counter()
        for step in progress(range(args.steps), f"{name} batches"):
            sampler.batch(step, args.batch)
        ms[name] = (time.perf_counter() - t) / args.steps * 1000
    hours = sum(d for _, _, d in disk.items) / 3600
    print(f"{len(disk.items)} files, {hours:.2f} h; batch {args.batch} x {args.seconds} s, {args.steps} steps")
    print(f"{'':10}{'ms/batch':>10}")
    print(f"{'disk':10}{ms['disk']:10.1f}")
    print(f"{'preload':10}{ms['preload']:10.1f}   (one-off preload {preload_s:.1f} s)")
    print(f"speed-up preload vs disk: {ms['disk'] / ms['preload']:.1f}x")


if __name__ == "__main__":
    main()
