"""Training commands: codec, bpe."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import CONTEXT, Group, debug_option


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
    from ..train.codec import CodecTrainConfig, train

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
