"""Training commands: codec, factorized, lm, generate, bpe."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import CONTEXT, Group


@click.group(cls=Group, context_settings=CONTEXT)
def train() -> None:
    """Train codecs and UniAudio-style models."""


@train.command("codec")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--steps", default=None, type=int, help="Override the config's step count.")
@click.option("--out", default=None, help="Override the config's output folder.")
def train_codec(config: Path, steps: int | None, out: str | None) -> None:
    """Train the UniAudio-style codec; rerun the same command to resume exactly."""
    from ..config import ConfigError, load
    from ..train.codec_trainer import CodecTrainConfig, train

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


@train.command("factorized")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--steps", default=None, type=int, help="Override the config's step count.")
@click.option("--out", default=None, help="Override the config's output folder.")
def train_factorized(config: Path, steps: int | None, out: str | None) -> None:
    """Train the factorized low-rate tokenizer (semantic phase, then acoustic phase); rerun to
    resume exactly. Use it with `--tokenizer uniaudio-factorized` (checkpoint=OUT/factorized.pt)."""
    from ..config import ConfigError, load
    from ..models import ModelNotFound
    from ..train.factorized_trainer import FactorizedTrainConfig, train

    overrides = {k: v for k, v in (("steps", steps), ("out", out)) if v is not None}
    try:
        cfg = load(FactorizedTrainConfig, config, overrides)
    except ConfigError as e:
        raise click.ClickException(str(e)) from None
    try:
        res = train(cfg)
    except (RuntimeError, ValueError, ModelNotFound) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"step {res['step']}: {res['model']} (tokenizer), {res['checkpoint']} (resume); "
               f"losses in {Path(cfg.out) / 'log.jsonl'}, card in {Path(cfg.out) / 'MODEL_CARD.md'}")


@train.command("lm")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--steps", default=None, type=int, help="Override the config's step count.")
@click.option("--out", default=None, help="Override the config's output folder.")
@click.option("--data", default=None, help="Override the config's sentence output.")
def train_lm(config: Path, steps: int | None, out: str | None, data: str | None) -> None:
    """Train the UniAudio multi-scale LM on sentence bundles; rerun to resume exactly.
    Several processes: `torchrun --nproc_per_node N -m uniaudio train lm CONFIG`."""
    from ..config import ConfigError, load
    from ..train.lm import LMTrainConfig, train

    overrides = {k: v for k, v in (("steps", steps), ("out", out), ("data", data)) if v is not None}
    try:
        cfg = load(LMTrainConfig, config, overrides)
    except ConfigError as e:
        raise click.ClickException(str(e)) from None
    import os

    res = train(cfg)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun every process returns here: one summary line
        click.echo(f"step {res['step']}: {res['model']} (generate / lm-ckpt:), {res['checkpoint']} (resume); "
                   f"losses in {Path(cfg.out) / 'log.jsonl'}")
    if res.get("stopped"):  # the shell's code for the signal: scripts see an interrupted run as one
        raise SystemExit(143 if res["stopped"] == "SIGTERM" else 130)


@train.command("generate")
@click.option("--checkpoint", "ckpt", required=True, help="`train lm` out folder or its model.pt.")
@click.option("--task", "task_name", required=True,
              type=click.Choice(["tts", "instruct_tts", "tta", "ttm", "se", "dereverb", "tse", "sound_edit", "asr",
                                 "caption"]),
              help="asr and caption: multi-stream checkpoints only; se, dereverb, tse, sound_edit, instruct_tts: "
                   "checkpoints whose sentences held the engine's simulated pairs / measured styles.")
@click.option("--suite", default="demo", show_default=True, help="'demo' or a folder of {task}.parquet test sets.")
@click.option("--data-root", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Where suites are built/cached (default: $UNIAUDIO_BENCHMARK_DATA or ~/.cache/uniaudio/benchmark).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Writes OUT/{task}/{id}.wav: score it with `benchmark run --task T --system OUT`.")
@click.option("--limit", default=None, type=int, help="Only the first N items of the test set.")
@click.option("--temperature", default=0.9, show_default=True)
@click.option("--top-k", default=30, show_default=True)
@click.option("--top-p", default=1.0, show_default=True)
def train_generate(ckpt: str, task_name: str, suite: str, data_root: Path | None, out: Path, limit: int | None,
                   temperature: float, top_k: int, top_p: float) -> None:
    """Generate a benchmark task's outputs from an LM checkpoint (KV-cached sampling)."""
    from .. import manifest
    from ..benchmark.suites import load as load_suite
    from ..benchmark.systems import LMCheckpoint
    from ..benchmark.tasks import TASKS

    system = LMCheckpoint(ckpt, temperature=temperature, top_k=top_k, top_p=top_p)
    if task_name not in system.tasks:
        raise click.ClickException(f"{ckpt} generates {', '.join(system.tasks)}, not {task_name}")
    rows = manifest.read_rows(load_suite(suite, data_root) / f"{task_name}.parquet")[:limit]
    dest = out / task_name
    dest.mkdir(parents=True, exist_ok=True)
    system.produce(TASKS[task_name], rows, dest)
    failed = getattr(system, "failures", {})
    for uid, why in failed.items():
        click.echo(f"FAILED {uid}: {why}", err=True)
    stops = getattr(system, "stops", {}).get(task_name)
    if stops:
        from ..benchmark.systems import generation_log

        click.echo(f"stopped: {', '.join(f'{n} by {why}' for why, n in sorted(stops.items()))} "
                   f"(per item: {generation_log(dest)})")
    click.echo(f"{len(rows) - len(failed)} of {len(rows)} outputs in {dest}; score them with "
               f"`benchmark run --task {task_name} --system {out}`")


@train.command("bpe")
@click.option("--manifest", "manifests", multiple=True, required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Parquet manifest(s) (repeatable).")
@click.option("--vocab-size", default=8000, show_default=True)
@click.option("--min-frequency", default=2, show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="tokenizer.json to write.")
def train_bpe(manifests: tuple[Path, ...], vocab_size: int, min_frequency: int, out: Path) -> None:
    """Train a byte-level BPE on the text and captions of manifests."""
    from ..tokenize.text import BPETokenizer, manifest_texts

    stats = {"texts": 0, "chars": 0}

    def counted():
        for t in manifest_texts(manifests):
            stats["texts"] += 1
            stats["chars"] += len(t)
            yield t

    bpe = BPETokenizer.train(counted(), vocab_size=vocab_size, min_frequency=min_frequency)
    if stats["texts"] == 0:
        raise click.ClickException(f"no text or captions in {', '.join(map(str, manifests))}: nothing to train on")
    click.echo(f"vocab {bpe.vocab_size} -> {bpe.save(out)}")
    if bpe.vocab_size < vocab_size:
        click.echo(f"note: the vocabulary stopped at {bpe.vocab_size} of the {vocab_size} asked: {stats['texts']} "
                   f"texts ({stats['chars']:,} characters) hold no more pairs seen at least {min_frequency} times "
                   "(--min-frequency); more text gives a larger vocabulary", err=True)
