"""The data engine's driver at the mission's scale: planning, finalize and verify of synthetic
manifests (no audio: paths are never opened), wall time and driver peak RSS per size side by
side, and the projection to 54M rows (165k hours). Each phase runs in a fresh process, so each
peak is that phase's own. Goal: driver peak RSS at 10M rows <= 1.5 GB and within 1.5x of the 1M
figure; time linear or better; planning >= 100k rows/s on 2 cores.

    python benchmarks/pipeline_scale.py [--sizes 100000 1000000 10000000] [--map ray|serial]

The done records finalize reads are synthetic too (one per planned shard, its samples' frames
and seconds from the plan), written by this script between planning and finalize (not timed).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import peak_rss_mb  # noqa: E402

MISSION_ROWS = 54_000_000


def _config(out: Path, mpath: Path, num_cpus: int):
    from uniaudio.config import from_dict
    from uniaudio.pipeline.config import PipelineConfig

    return from_dict(PipelineConfig, {"inputs": [{"manifest": str(mpath), "name": "synth"}], "output": str(out),
                                      "ray": {"num_cpus": num_cpus}})


def _plans(out: Path):
    from uniaudio.pipeline.plan import InputPlan

    return [InputPlan.load(m) for m in sorted((out / "plan").glob("*.json"))]


def phase(name: str, out: Path, mpath: Path, mode: str, num_cpus: int) -> dict:
    """One phase in this process; returns wall seconds and this process's peak RSS."""
    cfg = _config(out, mpath, num_cpus)
    t0 = time.time()
    if name == "plan":
        from uniaudio.pipeline.cluster import cluster_map, serial_map
        from uniaudio.pipeline.plan import plan_input

        map_fn = cluster_map(cfg.ray) if mode == "ray" else serial_map
        plan = plan_input(cfg.inputs[0], cfg, out, None, map_fn)
        extra = {"shards": plan.n_shards, "rows": plan.rows, "rejected": plan.rejected}
    elif name == "finalize":
        from uniaudio.pipeline.run import finalize

        report = finalize(out, _plans(out), cfg, wall=0.0, processed_seconds=0.0, shards_run=0, shards_skipped=0)
        extra = {"samples": report["samples"], "hours": report["hours_out"]}
    elif name == "verify":
        from uniaudio.pipeline.verify import verify

        res = verify(out, tars=False)
        extra = {"samples": res["samples"], "problems": len(res["problems"])}
        if res["problems"]:
            extra["first_problem"] = res["problems"][0]
    else:
        raise ValueError(name)
    wall = time.time() - t0
    return dict(extra, wall=wall, rss_mb=peak_rss_mb())



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    ap.add_argument("--map", choices=["ray", "serial"], default="ray",
                    help="planning tasks on a local Ray (as `pipeline run`) or in the driver")
    ap.add_argument("--num-cpus", type=int, default=2)
    ap.add_argument("--work", default=None)
    ap.add_argument("--phase", help=argparse.SUPPRESS)  # child mode
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--manifest", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        print(json.dumps(phase(args.phase, Path(args.out), Path(args.manifest), args.map, args.num_cpus)))
        return

    from uniaudio.demo.manifests import synthetic_done_records, synthetic_manifest

    work = Path(args.work or tempfile.mkdtemp(prefix="uniaudio-scale-"))
    rows = []
    for n in args.sizes:
        mpath = work / f"manifest-{n}.parquet"
        if not mpath.exists():
            print(f"[scale] writing a {n}-row synthetic manifest", file=sys.stderr)
            synthetic_manifest(mpath, n, seed=0)
        out = work / f"out-{n}-{time.time_ns()}"
        (out / "done").mkdir(parents=True)
        res = {}
        for name in ("plan", "finalize", "verify"):
            if name == "finalize":
                synthetic_done_records(out)
            print(f"[scale] {n} rows: {name}", file=sys.stderr)
            cmd = [sys.executable, __file__, "--phase", name, "--out", str(out), "--manifest", str(mpath),
                   "--map", args.map, "--num-cpus", str(args.num_cpus)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                sys.exit(f"{name} failed at {n} rows:\n{proc.stderr[-3000:]}")
            res[name] = json.loads(proc.stdout.strip().splitlines()[-1])
        if res["verify"]["problems"]:
            sys.exit(f"verify found problems at {n} rows: {res['verify']}")
        rows.append((n, res))

    print(f"planning tasks: {args.map} ({args.num_cpus} CPUs); driver peak RSS per phase (fresh process each)")
    print(f"{'rows':>10}{'shards':>8}{'plan s':>9}{'rows/s':>10}{'plan MB':>9}{'final s':>9}{'final MB':>10}"
          f"{'verify s':>10}{'verify MB':>11}")
    for n, r in rows:
        p, f, v = r["plan"], r["finalize"], r["verify"]
        print(f"{n:>10}{p['shards']:>8}{p['wall']:>9.1f}{n / p['wall']:>10.0f}{p['rss_mb']:>9.0f}{f['wall']:>9.1f}"
              f"{f['rss_mb']:>10.0f}{v['wall']:>10.1f}{v['rss_mb']:>11.0f}")
    n, r = rows[-1]
    scale = MISSION_ROWS / n
    print(f"projection to {MISSION_ROWS / 1e6:.0f}M rows (linear from {n}): plan {r['plan']['wall'] * scale / 60:.1f} min, "
          f"finalize {r['finalize']['wall'] * scale / 60:.1f} min, verify (index) {r['verify']['wall'] * scale / 60:.1f} min; "
          f"peak RSS stays near {max(r[k]['rss_mb'] for k in r):.0f} MB (bounded batches)")
    if len(rows) > 1:
        (n0, r0), (n1, r1) = rows[-2], rows[-1]
        for k in ("plan", "finalize", "verify"):
            print(f"{k}: {n1 // n0}x rows -> time x{r1[k]['wall'] / r0[k]['wall']:.2f}, "
                  f"peak RSS x{r1[k]['rss_mb'] / r0[k]['rss_mb']:.2f} (goal <= 1.5)")
    big = max(rows, key=lambda x: x[0])
    print(f"goals: planning rows/s >= 100000 -> {big[0] / big[1]['plan']['wall']:.0f}; "
          f"peak RSS at {big[0]} rows <= 1536 MB -> {max(big[1][k]['rss_mb'] for k in big[1]):.0f} MB")


if __name__ == "__main__":
    main()
