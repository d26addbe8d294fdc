"""Peak RSS of the sentence-stage driver and its largest Ray worker at demo scale 1x and 10x,
side by side. Goal: within +20% from 1x to 10x, since the driver sorts metadata through DuckDB
under a memory limit and streams it one speaker at a time, and a worker holds one output shard.

    python benchmarks/sentences_memory.py [--scales 1 10] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import run_sampling, token_shards  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    ap.add_argument("--work", default=None)
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="uniaudio-sentmem-"))
    rows = []
    for scale in args.scales:
        tokens = token_shards(work, scale)
        out = work / f"sent-x{scale:g}-{time.time_ns()}"
        print(f"sentences at scale {scale:g}...", file=sys.stderr, flush=True)
        r = run_sampling([str(Path(sys.executable).parent / "uniaudio"), "pipeline", "sentences", "--shards", str(tokens),
                          "--out", str(out), "--num-cpus", "2"])
        rep = json.loads((out / "report.json").read_text())
        rows.append((scale, r, rep))
    print(f"{'scale':>6}{'bundles':>9}{'sequences':>11}{'wall s':>8}{'driver MB':>11}{'max worker MB':>15}"
          f"{'(self-reported driver/worker)':>31}")
    for scale, r, rep in rows:
        print(f"{scale:6g}{rep['bundles']:9d}{rep['sequences']:11d}{r['wall']:8.1f}{r['driver_mb']:11.0f}"
              f"{r['worker_mb']:15.0f}{rep['peak_rss_mb']['driver']:18.0f} / {rep['peak_rss_mb']['largest_worker']:.0f}")
    (s0, a, _), (s1, b, _) = rows[0], rows[-1]
    print(f"ratio {s1:g}x / {s0:g}x: driver {b['driver_mb'] / a['driver_mb']:.2f}, "
          f"max worker {b['worker_mb'] / a['worker_mb']:.2f} (goal <= 1.20)")


if __name__ == "__main__":
    main()
