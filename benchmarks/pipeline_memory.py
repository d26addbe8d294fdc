"""Peak RSS of the pipeline driver and Ray workers at demo scale 1x and 10x, side by side.
Goal: memory does not grow with corpus size (10x within 20% of 1x), since audio never
reaches the driver and a worker holds one shard at a time.

    python benchmarks/pipeline_memory.py [--scales 1 10] [--tokenizer none] [--simulate]

--simulate adds the engine's paired data (se, dereverb, tse, sound_edit: one pair per item each),
rendered at decode time from sources that the planner drew from bounded candidate pools.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import demo_corpora, run_sampling  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    ap.add_argument("--tokenizer", default="none")
    ap.add_argument("--shard-samples", type=int, default=32)
    ap.add_argument("--work", default=None)
    ap.add_argument("--simulate", action="store_true", help="also simulate se/dereverb/tse/sound_edit pairs")
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="uniaudio-mem-"))
    rows = []
    for scale in args.scales:
        corpora = demo_corpora(work / f"corpora-x{scale:g}", scale)
        cmd = [str(Path(sys.executable).parent / "uniaudio"), "pipeline", "run", "--out",
               str(work / f"out-x{scale:g}-{time.time_ns()}"), "--tokenizer", args.tokenizer,
               "--shard-samples", str(args.shard_samples), "--num-cpus", "2",
               "--input", f"librispeech:{corpora / 'LibriSpeech'}", "--input", f"audiocaps:{corpora / 'audiocaps'}",
               "--input", f"musiccaps:{corpora / 'musiccaps'}"]
        if args.simulate:
            cfg = work / "simulate.json"  # a config file holding only the simulation (the flags give the rest)
            cfg.write_text(json.dumps({"simulate": {t: {"per_item": 1.0} for t in
                                                    ("se", "dereverb", "tse", "sound_edit")}}))
            cmd[3:3] = [str(cfg)]
        rows.append((scale, run_sampling(cmd)))
    print(f"{'scale':>6}{'wall s':>9}{'driver MB':>11}{'max worker MB':>15}{'all workers MB':>16}")
    for scale, r in rows:
        print(f"{scale:6g}{r['wall']:9.1f}{r['driver_mb']:11.0f}{r['worker_mb']:15.0f}{r['workers_total_mb']:16.0f}")
    (s0, a), (s1, b) = rows[0], rows[-1]
    print(f"ratio {s1:g}x / {s0:g}x: driver {b['driver_mb'] / a['driver_mb']:.2f}, "
          f"max worker {b['worker_mb'] / a['worker_mb']:.2f} (goal <= 1.20)")


if __name__ == "__main__":
    main()
