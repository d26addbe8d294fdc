"""Sentence-stage throughput vs its limit, side by side, in one run, on the same cores.

ours : `pipeline sentences` in a process whose Ray is up and workers warm (the steady
       state), from planning to report: token frames covered per wall second, and bundles/s;
limit: reading every token tar and decoding its codes (the least any sentence builder must
       do), in --num-cpus processes.

    python benchmarks/sentences_throughput.py [--scale 4] [--num-cpus 2] [--work DIR]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import parallel_wall, token_shards  # noqa: E402


def prep_tars(tars: list[str]) -> list[str]:
    return tars


def read_tars(tars: list[str]) -> None:
    import numpy as np

    from uniaudio.pipeline.shards import read_tar

    for t in tars:
        for _, members in read_tar(Path(t)):
            np.load(io.BytesIO(members["codes.npy"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=4.0)
    ap.add_argument("--num-cpus", type=int, default=2)
    ap.add_argument("--layout", default="uniaudio")
    ap.add_argument("--work", default=None, help="folder for corpora, token shards and outputs (default: temp)")
    args = ap.parse_args()

    import pyarrow.parquet as pq

    from uniaudio.config import from_dict
    from uniaudio.pipeline.cluster import init_ray
    from uniaudio.pipeline.sentences import SentenceConfig, run

    work = Path(args.work or tempfile.mkdtemp(prefix="uniaudio-sent-"))
    tokens = token_shards(work, args.scale)
    frames = sum(pq.read_table(tokens / "index.parquet", columns=["frames"]).column("frames").to_pylist())
    tars = sorted(str(p) for p in (tokens / "shards").glob("*.tar"))
    n = args.num_cpus
    print(f"timing the limit on {n} processes...", file=sys.stderr, flush=True)
    t_limit = parallel_wall(prep_tars, read_tars, [tars[i::n] for i in range(n)])

    mk = lambda o: from_dict(SentenceConfig, {"tokens": str(tokens), "output": str(o), "layout": args.layout,  # noqa: E731
                                             "ray": {"num_cpus": n}})
    init_ray(mk(work).ray)
    print("warming Ray workers, then timing the sentence stage...", file=sys.stderr, flush=True)
    run(mk(work / f"warm-{time.time_ns()}"), progress=False)
    t0 = time.perf_counter()
    report = run(mk(work / f"sent-{time.time_ns()}"), progress=False)
    t_ours = time.perf_counter() - t0

    print(f"token output: {len(tars)} tars, {frames:,} frames; sentence stage: {report['bundles']} bundles, "
          f"{report['sequences']} sequences, fill {report['fill']}, {report['shards']['planned']} shard(s), {n} CPUs")
    print(f"{'':36}{'token frames / wall s':>22}{'bundles / s':>13}{'ratio':>8}")
    print(f"{'ours: plan + build + report (warm)':36}{frames / t_ours:22,.0f}{report['bundles'] / t_ours:13.2f}"
          f"{t_limit / t_ours:8.3f}")
    print(f"{'limit: read + decode token tars':36}{frames / t_limit:22,.0f}{'':>13}{1.0:8.3f}")
    print(f"ours: plan {report['timings']['plan']} s, execute {report['timings']['execute']} s; "
          f"ratio = ours / limit (frames per second)")


if __name__ == "__main__":
    main()
