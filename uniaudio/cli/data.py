"""Demo corpora and data inspection commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ._common import CONTEXT, Group


@click.group(cls=Group, context_settings=CONTEXT)
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
    from ..demo import build_demo
    from ..demo.tools import MissingTool

    if scale <= 0:
        raise click.BadParameter("must be > 0", param_hint="--scale")
    try:
        summary = build_demo(root, seed=seed, scale=scale, workers=workers)
    except MissingTool as e:
        raise click.ClickException(str(e)) from None
    click.echo(json.dumps(summary["corpora"], indent=2))


@data.command("voices")
@click.argument("root", type=click.Path(file_okay=False, path_type=Path))
@click.option("--minutes", default=30.0, show_default=True, type=float, help="About this much speech in total.")
@click.option("--seed", default=0, show_default=True)
@click.option("--workers", default=2, show_default=True, type=int)
@click.option("--text-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Read sentences from this English text (e.g. cat /usr/share/games/fortunes/* from Debian's "
                   "fortunes) instead of generating them from templates.")
def data_voices(root: Path, minutes: float, seed: int, workers: int, text_file: Path | None) -> None:
    """Speech from flite and Festival voices (vocoded, diphone and unit-selection voices of real
    speakers; more natural than espeak-ng) in the LibriSpeech layout under ROOT/LibriSpeech:
    extra codec training data, and (with --text-file) transcribed speech of varied English."""
    from ..demo import voices

    if minutes <= 0:
        raise click.BadParameter("must be > 0", param_hint="--minutes")
    try:
        utts = voices.build(root, seed=seed, minutes=minutes, workers=workers, text_file=text_file)
    except RuntimeError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"{len(utts)} utterances from {len(voices.VOICES)} voices in {root / 'LibriSpeech'}")


@data.command("real-speech")
@click.argument("root", type=click.Path(file_okay=False, path_type=Path))
@click.option("--source", "sources", multiple=True,
              help="fillets-cs, fillets-nl, fillets-en, ktuberling, klettres (repeatable; default: all).")
@click.option("--debs", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder with the .deb files already downloaded (default: apt-get download them).")
@click.option("--min-rate", default=16000, show_default=True, type=click.IntRange(min=1), help="Leave out recordings below this sample rate.")
def data_real_speech(root: Path, sources: tuple[str, ...], debs: Path | None, min_rate: int) -> None:
    """Real recorded speech shipped in free Debian packages (Fish Fillets NG dialogues in Czech,
    Dutch and English; KTuberling words, KLettres letters and syllables; ~4.7 h) under ROOT, with
    ROOT/manifest.jsonl for the folder recipe: codec training data where no speech corpus can
    be downloaded."""
    from ..demo import debian_speech
    from ..demo.tools import MissingTool

    try:
        summary = debian_speech.build(root, list(sources), debs=debs, min_rate=min_rate)
    except (MissingTool, RuntimeError, ValueError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(json.dumps(summary, indent=2))
    click.echo(f"next: uniaudio pipeline manifest --recipe folder --root {root} --manifest-file manifest.jsonl "
               f"--out {root}.parquet")


@data.command("info")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def data_info(paths: tuple[Path, ...]) -> None:
    """Print header info of audio files (or the reason they cannot be read)."""
    from .. import audio

    bad = 0
    for p in paths:
        try:
            i = audio.info(p)
            click.echo(f"{p}\t{i.format}/{i.subtype}\t{i.sample_rate} Hz\t{i.channels} ch\t{i.duration:.3f} s")
        except audio.AudioError as e:
            bad += 1
            click.echo(f"{p}\tERROR {e.reason}: {e.detail}", err=True)
    sys.exit(1 if bad else 0)


@data.command("cat")
@click.argument("path")
def data_cat(path: str) -> None:
    """Write a file, object (s3://...) or container member to stdout, streamed: e.g. webdataset
    reads shards from any store as `pipe:uniaudio data cat s3://bucket/shards/x-000000.tar`."""
    from .. import storage

    out = sys.stdout.buffer
    if storage.is_member(path):
        out.write(storage.read_member(path))
        return
    with storage.open_stream(path) as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            out.write(chunk)
    out.flush()
