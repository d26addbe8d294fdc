"""Reading corpora as they ship, side by side in one run, same cores (local Ray):

files   : the demo speech as FLAC files (the `folder` recipe), the baseline;
wds     : the same audio as WebDataset tar shards (KEY.flac + KEY.json, 64 items a shard: the
          `wds` recipe): no unpacking, members read by ranged reads;
parquet : the same audio inside Parquet (a Hugging Face audio struct column);
wds-s3  : the tar shards on a local S3 server (SeaweedFS, when `weed` is installed);
files>s3: the files in, the output (shards, done records, plan, index) on that S3 server.

Each line is a full `pipeline run` in audio mode (decode, filter, FLAC shards), warm Ray;
audio seconds out per wall second, and the ratio to files. Goal (issue 38): wds / files >= 1.0.

    python benchmarks/shipped_inputs.py [--scale 4] [--copies 8] [--num-cpus 2]
    python benchmarks/shipped_inputs.py --memory 1 10     # peak RSS, driver and workers, 1x vs 10x

(--copies: each demo file K times under another name, for more audio without more synthesis;
--memory: `uniaudio pipeline run` on the tar and Parquet inputs at each copy count, RSS sampled
from /proc: the goal is 10x within 1.2x of 1x)
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from _common import demo_corpora, run_sampling  # noqa: E402


def containers(files: list[Path], root: Path) -> tuple[str, str]:
    """The files as tar shards and as Parquet files (64 rows a row group, 512 a file); returns
    their globs."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (root / "wds").mkdir(parents=True)
    for k in range(0, len(files), 64):
        with tarfile.open(root / "wds" / f"shard-{k // 64:06d}.tar", "w") as tar:
            for f in files[k:k + 64]:
                for name, data in ((f"{f.stem}.flac", f.read_bytes()),
                                   (f"{f.stem}.json", json.dumps({"text": "x"}).encode())):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    (root / "hf").mkdir()
    for k in range(0, len(files), 512):
        pq.write_table(pa.Table.from_pylist([{"id": f.stem, "audio": {"bytes": f.read_bytes(), "path": f.name},
                                              "text": "x"} for f in files[k:k + 512]]),
                       root / "hf" / f"train-{k // 512:05d}.parquet", row_group_size=64)
    return str(root / "wds" / "*.tar"), str(root / "hf" / "*.parquet")


def timed(out: Path | str, inp: dict) -> tuple[float, float]:
    from uniaudio import storage
    from uniaudio.config import from_dict
    from uniaudio.pipeline.config import PipelineConfig
    from uniaudio.pipeline.run import run

    storage.delete_tree(str(out))
    cfg = from_dict(PipelineConfig, {"inputs": [inp], "output": str(out), "shard": {"max_samples": 64},
                                     "filters": {"max_duration": 60.0}})
    t0 = time.time()
    report = run(cfg, progress=False)
    return time.time() - t0, sum(c["hours_out"] for c in report["by_corpus"].values()) * 3600


def copies_of(demo: Path, dest: Path, k: int) -> list[Path]:
    dest.mkdir(parents=True)
    files = []
    for c in range(k):
        for f in sorted(demo.glob("LibriSpeech/**/*.flac")):
            files.append(dest / f"{c}-{f.name}")
            shutil.copyfile(f, files[-1])
    return files


def memory(work: Path, scale: float, counts: list[int]) -> None:
    demo = demo_corpora(work / "demo", scale)
    rows = []
    for k in counts:
        files = copies_of(demo, work / f"files-x{k}", k)
        wds_glob, pq_glob = containers(files, work / f"c-x{k}")
        for name, spec in (("wds", f"wds:{wds_glob}"), ("parquet", f"parquet:{pq_glob}")):
            cmd = [str(Path(sys.executable).parent / "uniaudio"), "pipeline", "run", "--out", str(work / f"o-{name}-{k}"),
                   "--shard-samples", "64", "--num-cpus", "2", "--input", spec]
            rows.append((name, k, len(files), run_sampling(cmd)))
    print(f"{'input':8s}{'copies':>7s}{'items':>7s}{'wall s':>8s}{'driver MB':>11s}{'max worker MB':>15s}")
    for name, k, n, r in rows:
        print(f"{name:8s}{k:7d}{n:7d}{r['wall']:8.1f}{r['driver_mb']:11.0f}{r['worker_mb']:15.0f}")
    for name in ("wds", "parquet"):
        a, b = [r for nm, _, _, r in rows if nm == name][0], [r for nm, _, _, r in rows if nm == name][-1]
        print(f"{name}: {counts[-1]}x / {counts[0]}x peak RSS: driver {b['driver_mb'] / a['driver_mb']:.2f}, "
              f"worker {b['worker_mb'] / a['worker_mb']:.2f} (goal <= 1.2)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=4.0)
    ap.add_argument("--copies", type=int, default=8)
    ap.add_argument("--memory", type=int, nargs="*", default=None, help="copy counts to compare peak RSS at")
    ap.add_argument("--num-cpus", type=int, default=2)
    args = ap.parse_args()
    import ray

    work = Path(tempfile.mkdtemp(prefix="uniaudio-shipped-"))
    if args.memory:
        try:
            memory(work, args.scale, args.memory)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    try:
        demo = demo_corpora(work / "demo", args.scale)
        files = copies_of(demo, work / "files", args.copies)
        wds_glob, pq_glob = containers(files, work)
        import s3_server

        s3_server.export_env()  # before Ray starts: its workers read the bucket with these (as on a cluster)
        ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
        inputs = {"files": {"recipe": "folder", "root": str(work / "files"), "name": "files"},
                  "wds": {"recipe": "wds", "root": wds_glob, "name": "wds"},
                  "parquet": {"recipe": "parquet", "root": pq_glob, "name": "hf"}}
        server = None
        try:
            if s3_server.weed_binary():
                server = s3_server.Server()
                bucket = server.bucket("bench")
                from uniaudio import storage

                for f in sorted((work / "wds").glob("*.tar")):
                    storage.write_bytes(f"{bucket}/wds/{f.name}", f.read_bytes())
                inputs["wds-s3"] = {"recipe": "wds", "root": f"{bucket}/wds/*.tar", "name": "wds"}
            timed(work / "warm", inputs["files"])  # Ray workers up and warm for every line below
            rows = {name: timed(work / f"out-{name}", inp) for name, inp in inputs.items()}
            if server is not None:
                rows["files>s3"] = timed(f"{bucket}/out", inputs["files"])
        finally:
            if server is not None:
                server.stop()
        base = rows["files"][1] / rows["files"][0]
        print(f"{len(files)} files, {rows['files'][1] / 3600:.2f} h of audio, {args.num_cpus} CPUs, audio mode")
        print(f"{'input':10s} {'wall s':>8s} {'audio s/s':>10s} {'vs files':>9s}")
        for name, (wall, secs) in rows.items():
            print(f"{name:10s} {wall:8.2f} {secs / wall:10.1f} {secs / wall / base:9.3f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
