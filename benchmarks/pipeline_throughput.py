"""Pipeline throughput vs its limit, side by side, in one run.

ours (cold): `uniaudio pipeline run` as a user runs it (Ray start-up, worker start-up,
         plan, decode, filter, tokenize, write tars, report), audio s out per wall s;
ours (warm): the same run again in a process whose Ray is up and workers warm: the steady
         state that a 165k-hour job runs in, where start-up is amortised;
limit A: the tokenizer alone on the same (already decoded) audio, in --num-cpus processes
         (one torch thread each, as Ray runs its workers): the same cores as the pipeline;
limit B: decode + resample + tokenize, the same --num-cpus processes, no Ray and no writing.
Goal of the issue: ours / limit >= 0.9 when the tokenizer dominates (a neural codec).
--simulate adds the simulation stage (se + dereverb + tse pairs of every speech item): rendering
alone (decode the sources, mix or reverberate) in pairs/s on the same processes, next to the
tokenizer alone in items/s, and a warm pipeline run with the pairs on.

    python benchmarks/pipeline_throughput.py [--scale 4] [--tokenizer mulaw] [--num-cpus 2] [--simulate]
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
from _common import demo_corpora, parallel_wall  # noqa: E402


def _tokenizer(spec: dict):
    import torch

    torch.set_num_threads(1)  # Ray gives each 1-CPU worker one thread
    from uniaudio import audio
    from uniaudio.tokenize import get

    if spec["name"] == "none":  # audio mode: the "tokenizer" is the FLAC encoder
        class _Flac:
            sample_rate = 16000

            def encode(self, w, sr):
                return audio.encode_flac(w, sr)
        return _Flac()
    return get(spec["name"], **spec["options"])


def prep_decoded(job):
    """Limit A, untimed part: load the tokenizer, decode this process's files."""
    from uniaudio import audio

    spec, paths = job
    tok = _tokenizer(spec)
    return tok, [audio.load(p, tok.sample_rate)[0] for p in paths]


def encode_all(state):
    tok, wavs = state
    for w in wavs:
        tok.encode(w, tok.sample_rate)


def prep_paths(job):
    spec, paths = job
    return _tokenizer(spec), paths


def decode_encode_all(state):
    from uniaudio import audio

    tok, paths = state
    for p in paths:
        tok.encode(audio.load(p, tok.sample_rate)[0], tok.sample_rate)


def prep_pairs(job):
    """Simulation alone, untimed part: the derived rows this process renders."""
    return job


def render_all(rows):
    from uniaudio import audio
    from uniaudio.pipeline.simulate import render

    for r in rows:
        render(r.extra, audio.load(r.path, 16000, offset=r.offset, duration=r.duration)[0], 16000)


def random_codec(kind: str, work: Path) -> str:
    """Default (full-size) config of a transformers codec with random weights, saved once."""
    import transformers

    path = work / f"random-{kind}"
    if not path.exists():
        cfg_cls, model_cls = {"encodec": ("EncodecConfig", "EncodecModel"), "dac": ("DacConfig", "DacModel"),
                              "mimi": ("MimiConfig", "MimiModel")}[kind]
        getattr(transformers, model_cls)(getattr(transformers, cfg_cls)()).save_pretrained(path)
    return str(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=4.0)
    ap.add_argument("--tokenizer", default="mulaw")
    ap.add_argument("--num-cpus", type=int, default=2)
    ap.add_argument("--shard-samples", type=int, default=32)
    ap.add_argument("--work", default=None, help="folder for corpora and output (default: temp)")
    ap.add_argument("--random-codec", action="store_true",
                    help="with --tokenizer encodec/dac/mimi: build the full-size default architecture with random "
                         "weights (same compute as the released model) when no weights are at hand")
    ap.add_argument("--simulate", action="store_true", help="also time the simulation stage (se, dereverb, tse)")
    args = ap.parse_args()

    from uniaudio import audio
    from uniaudio.pipeline.recipes import records

    work = Path(args.work or tempfile.mkdtemp(prefix="uniaudio-bench-"))
    corpora = demo_corpora(work / f"corpora-x{args.scale:g}", args.scale)
    inputs = [("librispeech", corpora / "LibriSpeech"), ("audiocaps", corpora / "audiocaps"),
              ("musiccaps", corpora / "musiccaps")]
    recs = [r for name, root in inputs for r in records(name, root)]
    tok_opts = {"model": random_codec(args.tokenizer, work)} if args.random_codec else {}
    spec = {"name": args.tokenizer, "options": tok_opts}
    sr = _tokenizer(spec).sample_rate
    seconds = sum(audio.info(r.path).frames / audio.info(r.path).sample_rate for r in recs)
    paths = [r.path for r in recs]
    n = args.num_cpus
    print(f"timing the limits on {n} processes...", file=sys.stderr, flush=True)
    t_tok = parallel_wall(prep_decoded, encode_all, [(spec, paths[i::n]) for i in range(n)])
    t_dec_tok = parallel_wall(prep_paths, decode_encode_all, [(spec, paths[i::n]) for i in range(n)])
    print("timing the pipeline (cold CLI, then warm)...", file=sys.stderr, flush=True)

    out = work / f"out-{time.time_ns()}"
    cmd = [str(Path(sys.executable).parent / "uniaudio"), "pipeline", "run", "--out", str(out),
           "--tokenizer", args.tokenizer, "--shard-samples", str(args.shard_samples), "--num-cpus", str(args.num_cpus)]
    for name, root in inputs:
        cmd += ["--input", f"{name}:{root}"]
    if args.tokenizer != "none" and args.random_codec:
        cmd += ["--tokenizer-option", f"model={tok_opts['model']}"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t_pipe = time.perf_counter() - t0
    report = json.loads((out / "report.json").read_text())

    # warm: Ray already running in this process, workers warmed by one small run
    import shutil

    from uniaudio.config import from_dict
    from uniaudio.pipeline.config import PipelineConfig
    from uniaudio.pipeline.cluster import init_ray
    from uniaudio.pipeline.run import run

    spec = [{"recipe": n, "root": str(r)} for n, r in inputs]
    extra = {"tokenizer_options": tok_opts} if args.tokenizer != "none" and args.random_codec else {}
    mk = lambda o: from_dict(PipelineConfig, {**extra, "inputs": spec, "output": str(o), "tokenizer": args.tokenizer,
                                             "shard": {"max_samples": args.shard_samples},
                                             "ray": {"num_cpus": args.num_cpus}})
    init_ray(mk(out).ray)
    run(mk(work / "warmup"), progress=False)
    shutil.rmtree(work / "warmup")
    warm_out = work / f"warm-{time.time_ns()}"
    t0 = time.perf_counter()
    warm_report = run(mk(warm_out), progress=False)
    t_warm = time.perf_counter() - t0

    ours = report["hours_out"] * 3600 / t_pipe
    warm = warm_report["hours_out"] * 3600 / t_warm
    lim_a, lim_b = seconds / t_tok, seconds / t_dec_tok
    print(f"audio: {seconds / 3600:.3f} h in {len(recs)} files, tokenizer {args.tokenizer}"
          f"{' (full-size architecture, random weights)' if args.random_codec else ''}, "
          f"{args.num_cpus} CPUs for the pipeline and for each limit ({sr} Hz)")
    print(f"{'':34}{'audio s / wall s':>18}{'ratio ours/limit':>18}")
    print(f"{'ours cold: CLI end to end':34}{ours:18.1f}")
    print(f"{'ours warm: steady state':34}{warm:18.1f}")
    print(f"{'limit A: tokenizer/encoder alone':34}{lim_a:18.1f}{ours / lim_a:12.3f} cold{warm / lim_a:8.3f} warm")
    print(f"{'limit B: decode+tokenize alone':34}{lim_b:18.1f}{ours / lim_b:12.3f} cold{warm / lim_b:8.3f} warm")
    print(f"pipeline wall {t_pipe:.1f}s (includes Ray start-up and planning); report says "
          f"{report['throughput_audio_s_per_s']} audio s/s")
    if args.simulate:
        simulation(args, work, inputs, mk, len(recs), t_tok, warm_report, t_warm)


def simulation(args, work: Path, inputs, mk, n_items: int, t_tok: float, warm_report: dict, t_warm: float) -> None:
    """The simulation stage's own rows (see the module docstring)."""
    from uniaudio import manifest
    from uniaudio.config import from_dict
    from uniaudio.pipeline import simulate
    from uniaudio.pipeline.plan import build_manifest
    from uniaudio.pipeline.config import InputSpec
    from uniaudio.pipeline.run import run

    spec = from_dict(simulate.SimulateSpec, {"se": {}, "dereverb": {}, "tse": {}})
    mans = [build_manifest(InputSpec(recipe=n, root=str(r)), str(work / "sim-manifests")) for n, r in inputs]
    path, _ = simulate.build(spec, mans, str(work / "sim-manifests"))
    pairs = list(manifest.iter_records(path))
    n = args.num_cpus
    t_render = parallel_wall(prep_pairs, render_all, [pairs[i::n] for i in range(n)])
    cfg = mk(work / f"sim-{time.time_ns()}")
    cfg.simulate = spec
    t0 = time.perf_counter()
    sim_report = run(cfg, progress=False)
    t_sim = time.perf_counter() - t0
    print(f"\nsimulation: {len(pairs)} pairs (se, dereverb, tse of every speech item), {n} processes")
    print(f"{'':34}{'items / wall s':>18}")
    print(f"{'simulate alone: render pairs':34}{len(pairs) / t_render:18.1f}")
    print(f"{'limit A: tokenizer alone':34}{n_items / t_tok:18.1f}")
    print(f"{'ours warm, no pairs':34}{warm_report['samples'] / t_warm:18.1f}")
    print(f"{'ours warm, with the pairs':34}{sim_report['samples'] / t_sim:18.1f}   "
          f"({sim_report['samples']} items, {sim_report['rejected']} rejected)")


if __name__ == "__main__":
    main()
