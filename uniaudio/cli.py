"""`uniaudio ...` command line. `benchmark ...` is the same CLI's benchmark group.

Heavy imports (Ray, torch) happen inside commands so that `--help` stays instant."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import __version__


CONTEXT = {"help_option_names": ["-h", "--help"]}


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="uniaudio")
def main() -> None:
    """uniaudio: audio foundation model toolkit.

    \b
    data       build demo corpora, inspect audio and manifests
    pipeline   Ray data engine: corpora -> manifests -> WebDataset token shards
    train      codecs and UniAudio-style language models
    benchmark  score systems on tasks (WER, SIM, PESQ, STOI, MOS, ...) and publish leaderboards
    """


@main.group()
def data() -> None:
    """Demo corpora and data inspection."""


@data.command("demo")
@click.argument("root", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", default=0, show_default=True, help="Same seed and scale give the same files.")
@click.option("--scale", default=1.0, show_default=True, type=float,
              help="Multiplies utterance/clip counts (e.g. 10 for scale benchmarks, 0.34 for tiny tests).")
@click.option("--workers", default=None, type=int, help="Parallel synthesis jobs (default: CPU count).")
def data_demo(root: Path, seed: int, scale: float, workers: int | None) -> None:
    """Write deterministic demo corpora under ROOT: LibriSpeech-layout speech (espeak-ng),
    AudioCaps-layout sound events, MusicCaps-layout music (fluidsynth)."""
    from .demo import build_demo
    from .demo.tools import MissingTool

    if scale <= 0:
        raise click.BadParameter("must be > 0", param_hint="--scale")
    try:
        summary = build_demo(root, seed=seed, scale=scale, workers=workers)
    except MissingTool as e:
        raise click.ClickException(str(e)) from None
    click.echo(json.dumps(summary["corpora"], indent=2))


@data.command("info")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def data_info(paths: tuple[Path, ...]) -> None:
    """Print header info of audio files (or the reason they cannot be read)."""
    from . import audio

    bad = 0
    for p in paths:
        try:
            i = audio.info(p)
            click.echo(f"{p}\t{i.format}/{i.subtype}\t{i.sample_rate} Hz\t{i.channels} ch\t{i.duration:.3f} s")
        except audio.AudioError as e:
            bad += 1
            click.echo(f"{p}\tERROR {e.reason}: {e.detail}", err=True)
    sys.exit(1 if bad else 0)


@main.group()
def pipeline() -> None:
    """Ray data engine: recipes -> manifests -> streaming stages -> WebDataset shards."""


@pipeline.command("manifest")
@click.option("--recipe", required=True, help="Corpus layout: librispeech, libritts, ljspeech, vctk, librilight, "
              "audiocaps, clotho, musiccaps, folder.")
@click.option("--root", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--split", default=None, help="Only this split (e.g. test-clean).")
@click.option("--manifest-file", default=None, help="folder recipe: a JSONL/CSV listing the items.")
def pipeline_manifest(recipe: str, root: Path, out: Path, split: str | None, manifest_file: str | None) -> None:
    """Write a Parquet manifest of a corpus (lazy: streams rows, reads headers only)."""
    from .manifest import write_manifest
    from .pipeline.recipes import RECIPES, records

    if recipe not in RECIPES:
        raise click.BadParameter(f"unknown recipe; known: {', '.join(sorted(RECIPES))}", param_hint="--recipe")
    kw = {"manifest": manifest_file} if manifest_file else {}
    from tqdm import tqdm

    n = write_manifest(out, tqdm(records(recipe, root, split, **kw), desc=recipe, unit="row"), strict=False)
    click.echo(f"{n} rows -> {out}")


def _input_spec(text: str) -> dict:
    """RECIPE:ROOT[:SPLIT] or a .parquet manifest path."""
    if text.endswith(".parquet"):
        return {"manifest": text}
    parts = text.split(":")
    if len(parts) < 2:
        raise click.BadParameter(f"{text!r}: expected RECIPE:ROOT[:SPLIT] or a manifest .parquet", param_hint="--input")
    spec = {"recipe": parts[0], "root": parts[1]}
    if len(parts) > 2 and parts[2]:
        spec["split"] = parts[2]
    return spec


@pipeline.command("run")
@click.argument("config", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--input", "inputs", multiple=True, help="RECIPE:ROOT[:SPLIT] or MANIFEST.parquet (repeatable); "
              "replaces the config's inputs.")
@click.option("--out", default=None, help="Output folder (shards/, index.parquet, rejects.parquet, report.json).")
@click.option("--tokenizer", default=None, help="Registry name, or 'none' to store FLAC audio.")
@click.option("--tokenizer-option", "tok_opts", multiple=True, metavar="KEY=VALUE",
              help="Tokenizer argument, e.g. model=/models/encodec_24khz or n_codebooks=8 (repeatable).")
@click.option("--sample-rate", default=None, type=int)
@click.option("--shard-samples", default=None, type=int, help="Max utterances per shard.")
@click.option("--ray-address", default=None, help="Join this Ray cluster (default: RAY_ADDRESS, else local Ray).")
@click.option("--num-cpus", default=None, type=int, help="CPUs of the local Ray.")
def pipeline_run(config: Path | None, inputs: tuple[str, ...], out: str | None, tokenizer: str | None,
                 tok_opts: tuple[str, ...], sample_rate: int | None, shard_samples: int | None, ray_address: str | None,
                 num_cpus: int | None) -> None:
    """Corpora -> WebDataset shards. Rerun the same command to resume after a crash."""
    import yaml

    from .config import ConfigError, from_dict
    from .pipeline.config import PipelineConfig
    from .pipeline.run import run

    data = yaml.safe_load(config.read_text()) if config else {}
    if not isinstance(data, dict):
        raise click.ClickException(f"{config}: top level must be a mapping")
    if inputs:
        data["inputs"] = [_input_spec(i) for i in inputs]
    for key, val in (("output", out), ("tokenizer", tokenizer), ("sample_rate", sample_rate)):
        if val is not None:
            data[key] = val
    if shard_samples is not None:
        data.setdefault("shard", {})["max_samples"] = shard_samples
    for opt in tok_opts:
        key, sep, val = opt.partition("=")
        if not sep:
            raise click.BadParameter(f"{opt!r}: expected KEY=VALUE", param_hint="--tokenizer-option")
        data.setdefault("tokenizer_options", {})[key] = yaml.safe_load(val)
    for key, val in (("address", ray_address), ("num_cpus", num_cpus)):
        if val is not None:
            data.setdefault("ray", {})[key] = val
    try:
        cfg = from_dict(PipelineConfig, data)
    except ConfigError as e:
        raise click.ClickException(str(e)) from None
    try:
        report = run(cfg)
    except RuntimeError as e:
        raise click.ClickException(str(e)) from None
    click.echo(json.dumps({k: report[k] for k in ("samples", "rejected", "rejects_by_reason", "hours_out",
                                                 "shards", "wall_seconds", "throughput_audio_s_per_s")}, indent=2))
    click.echo(f"report: {Path(cfg.output) / 'report.json'}")


@pipeline.command("verify")
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
def pipeline_verify(out: Path) -> None:
    """Re-read every shard: checksums, keys, decodability, index agreement, no duplicate ids."""
    from .pipeline.verify import verify

    res = verify(out)
    for p in res["problems"]:
        click.echo(f"PROBLEM {p}", err=True)
    click.echo(f"{res['shards']} shards, {res['samples']} samples, {len(res['problems'])} problems")
    sys.exit(1 if res["problems"] else 0)


@main.group()
def train() -> None:
    """Train codecs and UniAudio-style models."""


@train.command("codec")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--steps", default=None, type=int, help="Override the config's step count.")
@click.option("--out", default=None, help="Override the config's output folder.")
def train_codec(config: Path, steps: int | None, out: str | None) -> None:
    """Train the UniAudio-style codec; rerun the same command to resume exactly."""
    from .config import ConfigError, load
    from .train.codec import CodecTrainConfig, train

    overrides = {k: v for k, v in (("steps", steps), ("out", out)) if v is not None}
    try:
        cfg = load(CodecTrainConfig, config, overrides)
    except ConfigError as e:
        raise click.ClickException(str(e)) from None
    try:
        res = train(cfg)
    except (RuntimeError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"step {res['step']}: {Path(cfg.out) / 'codec.pt'} (inference), {res['checkpoint']} (resume); "
               f"losses in {Path(cfg.out) / 'log.jsonl'}")


@train.command("bpe")
@click.option("--manifest", "manifests", multiple=True, required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Parquet manifest(s) (repeatable).")
@click.option("--vocab-size", default=8000, show_default=True)
@click.option("--min-frequency", default=2, show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="tokenizer.json to write.")
def train_bpe(manifests: tuple[Path, ...], vocab_size: int, min_frequency: int, out: Path) -> None:
    """Train a byte-level BPE on the text and captions of manifests."""
    from .tokenize.text import BPETokenizer, manifest_texts

    bpe = BPETokenizer.train(manifest_texts(manifests), vocab_size=vocab_size, min_frequency=min_frequency)
    click.echo(f"vocab {bpe.vocab_size} -> {bpe.save(out)}")


@main.group(context_settings=CONTEXT)  # also the entry point of the `benchmark` script
def benchmark() -> None:
    """Score systems on tasks and publish leaderboards (`benchmark run --task all`)."""


@benchmark.command("run")
@click.option("--task", "task", default="all", show_default=True, help="asr, tts, se, vc, tse, codec (comma-separated), or all.")
@click.option("--system", default=None, help="Outputs folder (DIR/{task}/{id}.wav|txt), a built-in (ground-truth, "
              "whisper-tiny, espeak, passthrough, codec:TOKENIZER) or pkg.module:Class. Default: each task's baseline.")
@click.option("--suite", default="demo", show_default=True, help="'demo' (built offline) or a folder of {task}.parquet.")
@click.option("--data-root", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Where suites are built/cached (default: $UNIAUDIO_BENCHMARK_DATA or ~/.cache/uniaudio/benchmark).")
@click.option("--out", default="benchmark-results", show_default=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--resume", is_flag=True, help="Skip items already scored in OUT.")
@click.option("--metric-option", "metric_opts", multiple=True, metavar="METRIC.KEY=VALUE",
              help="e.g. wer.asr_backend=openai-whisper wer.asr_model=large-v3, sim.backend=wavlm (repeatable).")
def benchmark_run(task: str, system: str | None, suite: str, data_root: Path | None, out: Path, resume: bool,
                  metric_opts: tuple[str, ...]) -> None:
    """Score a system on tasks: per-utterance JSONL + aggregate JSON with metric cards."""
    import math

    from .benchmark.runner import run
    from .benchmark.tasks import TASKS

    names = list(TASKS) if task == "all" else [t.strip() for t in task.split(",")]
    bad = [n for n in names if n not in TASKS]
    if bad:
        raise click.BadParameter(f"unknown task(s) {bad}; known: {', '.join(TASKS)}, all", param_hint="--task")
    import yaml

    options: dict[str, dict] = {}
    for opt in metric_opts:
        lhs, sep, val = opt.partition("=")
        metric, dot, key = lhs.partition(".")
        if not sep or not dot:
            raise click.BadParameter(f"{opt!r}: expected METRIC.KEY=VALUE", param_hint="--metric-option")
        options.setdefault(metric, {})[key] = yaml.safe_load(val)
    try:
        results = run(names, system, suite, data_root, out, resume=resume, metric_options=options)
    except (ValueError, FileNotFoundError, RuntimeError, KeyError, TypeError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"{'task':8}{'system':18}{'metric':22}{'value':>10}{'failed':>8}")
    for r in results:
        for name, m in r["metrics"].items():
            failed = m.get("items_failed", m.get("items_missing", 0))
            for key, v in m["value"].items():
                if key.endswith(("_errors", "_ref_words", "_ref_characters", "_frames", "_cached")):
                    continue
                shown = "NaN" if isinstance(v, float) and math.isnan(v) else f"{v:.4f}"
                click.echo(f"{r['task']:8}{r['system'][:17]:18}{key:22}{shown:>10}{failed:>8}")
            if m.get("error"):
                click.echo(f"{'':26}{name}: {m['error'][:200]}")
    click.echo(f"results: {out / 'results'}")


@benchmark.command("mmlu")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="MMLU root with data/dev/*_dev.csv and data/test/*_test.csv.")
@click.option("--model", required=True, help="transformers causal LM: local dir, $UNIAUDIO_MODELS name or HF id.")
@click.option("--subject", "subjects", multiple=True, help="Only these subjects (repeatable).")
@click.option("--shots", default=5, show_default=True)
@click.option("--limit", default=None, type=int, help="At most this many test questions per subject.")
@click.option("--out", default=None, type=click.Path(dir_okay=False, path_type=Path), help="Write results JSON here.")
def benchmark_mmlu(data: Path, model: str, subjects: tuple[str, ...], shots: int, limit: int | None,
                   out: Path | None) -> None:
    """MMLU accuracy (lm-eval-harness format, argmax log-likelihood of " A".." D")."""
    from .benchmark import mmlu
    from .models import ModelNotFound

    try:
        ds = mmlu.load(data, list(subjects) or None)
        lm = mmlu.HFCausalLM(model)
        res = mmlu.evaluate(lm, ds, shots=shots, limit=limit)
    except (FileNotFoundError, mmlu.MMLUFormatError, ModelNotFound) as e:
        raise click.ClickException(str(e)) from None
    res["model"] = model
    for subject, r in res["per_subject"].items():
        click.echo(f"{subject:40}{r['accuracy']:8.4f}{r['questions']:6d}")
    click.echo(f"{'micro average':40}{res['accuracy']:8.4f}{res['questions']:6d}")
    if out:
        out.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
