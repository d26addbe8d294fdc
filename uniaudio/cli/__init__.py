"""`uniaudio ...` command line; `benchmark ...` is the same CLI's benchmark group.
One module per group. Heavy imports (Ray, torch) happen inside commands so that `--help`
stays instant."""

from __future__ import annotations

import click

from .. import __version__
from ._common import CONTEXT, Group, debug_option
from .benchmark import benchmark
from .data import data
from .pipeline import pipeline
from .train import train


@click.group(cls=Group, context_settings=CONTEXT)
@debug_option
@click.version_option(__version__, prog_name="uniaudio")
def main() -> None:
    """uniaudio: audio foundation model toolkit.

    \b
    data       build demo corpora, inspect audio and manifests
    pipeline   Ray data engine: corpora -> manifests -> WebDataset token shards
    train      codecs, the factorized tokenizer, UniAudio-style language models, generation
    benchmark  score systems on tasks (WER, SIM, PESQ, STOI, MOS, CLAP, FAD, MMLU, ...)
    """


for group in (data, pipeline, train, benchmark):
    main.add_command(group)

__all__ = ["main", "benchmark"]
