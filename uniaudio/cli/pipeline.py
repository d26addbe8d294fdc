"""Data engine commands: manifest, run, verify."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .. import storage
from ._common import CONTEXT, Group, Location


@click.group(cls=Group, context_settings=CONTEXT)
def pipeline() -> None:
    """Ray data engine: recipes -> manifests -> streaming stages -> WebDataset shards."""


@pipeline.command("manifest")
@click.option("--recipe", required=True, help="Corpus layout: librispeech, libritts, ljspeech, vctk, librilight, "
              "audiocaps, clotho, musiccaps, folder.")
@click.option("--root", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--split", default=None, help="Only this split (e.g. test-clean).")
@click.option("--manifest-file", default=None, help="folder recipe: a JSONL/CSV listing the items.")
@click.option("--serial", is_flag=True, help="Read audio headers in this process (default: Ray tasks once there "
              "are more than a few hundred files).")
@click.option("--num-cpus", type=int, default=None, help="CPUs for the local Ray (default: all).")
@click.option("--ray-address", default=None, help="Join this Ray cluster (default: RAY_ADDRESS, else a local Ray).")
def pipeline_manifest(recipe: str, root: Path, out: Path, split: str | None, manifest_file: str | None, serial: bool,
                      num_cpus: int | None, ray_address: str | None) -> None:
    """Write a Parquet manifest of a corpus (lazy: streams rows; the files' audio headers are
    read in batches as Ray tasks)."""
    from ..manifest import write_manifest
    from ..pipeline.cluster import cluster_map, serial_map
    from ..pipeline.cluster import RaySpec
    from ..pipeline.recipes import RECIPES, records

    if recipe not in RECIPES:
        raise click.BadParameter(f"unknown recipe; known: {', '.join(sorted(RECIPES))}", param_hint="--recipe")
    kw = {"manifest": manifest_file} if manifest_file else {}
    map_fn = serial_map if serial else cluster_map(RaySpec(address=ray_address, num_cpus=num_cpus))
    from tqdm import tqdm

    rows = records(recipe, root, split, map_fn=map_fn, **kw)
    n = write_manifest(out, tqdm(rows, desc=recipe, unit="row"), strict=False)
    click.echo(f"{n} rows -> {out}")


def _ray_options(data: dict, address: str | None, num_cpus: int | None) -> None:
    for key, val in (("address", address), ("num_cpus", num_cpus)):
        if val is not None:
            data.setdefault("ray", {})[key] = val


def _input_spec(text: str) -> dict:
    """RECIPE:ROOT[:SPLIT] (ROOT may be a URI or, for wds/parquet, a glob) or a manifest .parquet."""
    from ..pipeline.recipes import RECIPES

    recipe, sep, rest = text.partition(":")
    if not sep or recipe not in RECIPES:
        if text.endswith(".parquet"):
            return {"manifest": text}
        raise click.BadParameter(f"{text!r}: expected RECIPE:ROOT[:SPLIT] (recipes: {', '.join(sorted(RECIPES))}) "
                                 "or a manifest .parquet", param_hint="--input")
    head, sep, tail = rest.rpartition(":")
    if sep and head and "/" not in tail and not head.endswith(":"):  # a trailing :SPLIT (not a URI's scheme)
        return {"recipe": recipe, "root": head, **({"split": tail} if tail else {})}
    return {"recipe": recipe, "root": rest}


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
@click.option("--rehash", is_flag=True, help="On resume, re-hash every finished shard instead of trusting an "
              "unchanged size + mtime.")
def pipeline_run(config: Path | None, inputs: tuple[str, ...], out: str | None, tokenizer: str | None,
                 tok_opts: tuple[str, ...], sample_rate: int | None, shard_samples: int | None, ray_address: str | None,
                 num_cpus: int | None, rehash: bool) -> None:
    """Corpora -> WebDataset shards. Rerun the same command to resume after a crash."""
    from ..config import ConfigError, from_dict, yaml_load
    from ..pipeline.config import PipelineConfig
    from ..pipeline.run import run

    data = yaml_load(config.read_text()) if config else {}
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
        data.setdefault("tokenizer_options", {})[key] = yaml_load(val)
    _ray_options(data, ray_address, num_cpus)
    try:
        cfg = from_dict(PipelineConfig, data)
    except ConfigError as e:
        raise click.ClickException(str(e)) from None
    try:
        report = run(cfg, rehash=rehash)
    except RuntimeError as e:
        raise click.ClickException(str(e)) from None
    click.echo(json.dumps({k: report[k] for k in ("samples", "rejected", "rejects_by_reason", "hours_out",
                                                 "shards", "wall_seconds", "throughput_audio_s_per_s")}, indent=2))
    click.echo(f"report: {storage.join(cfg.output, 'report.json')}")


@pipeline.command("sentences")
@click.argument("config", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--shards", "tokens", default=None, help="A finished token-shard output (`pipeline run --tokenizer ...`).")
@click.option("--out", default=None, help="Output folder (shards/, index.parquet, sequences.parquet, rejects.parquet, "
              "report.json, vocab.json, text_tokenizer.json).")
@click.option("--layout", default=None, type=click.Choice(["uniaudio", "multistream"]),
              help="uniaudio: [rows, K] frames; multistream: [rows, K+1] (UniAudio 2.0).")
@click.option("--context", default=None, type=int, help="Rows per packed bundle (default 2048).")
@click.option("--ray-address", default=None, help="Join this Ray cluster (default: RAY_ADDRESS, else local Ray).")
@click.option("--num-cpus", default=None, type=int, help="CPUs of the local Ray.")
def pipeline_sentences(config: Path | None, tokens: str | None, out: str | None, layout: str | None,
                       context: int | None, ray_address: str | None, num_cpus: int | None) -> None:
    """Token shards -> auditory-sentence bundles (packed, exactly once). Rerun to resume."""
    from ..config import ConfigError, from_dict, yaml_load
    from ..pipeline.sentences import SentenceConfig, run

    data = yaml_load(config.read_text()) if config else {}
    if not isinstance(data, dict):
        raise click.ClickException(f"{config}: top level must be a mapping")
    for key, val in (("tokens", tokens), ("output", out), ("layout", layout), ("context", context)):
        if val is not None:
            data[key] = val
    _ray_options(data, ray_address, num_cpus)
    try:
        cfg = from_dict(SentenceConfig, data)
    except ConfigError as e:
        raise click.ClickException(str(e)) from None
    report = run(cfg)
    click.echo(json.dumps({k: report[k] for k in ("bundles", "sequences", "rows", "fill", "padding_baseline_fill",
                                                 "left_out_by_reason", "tasks", "shards", "wall_seconds")}, indent=2))
    click.echo(f"report: {storage.join(cfg.output, 'report.json')}")


@pipeline.command("inspect")
@click.argument("target")
@click.option("--limit", default=3, show_default=True, help="Bundles to show when no KEY is given.")
def pipeline_inspect(target: str, limit: int) -> None:
    """Print auditory-sentence bundles: SHARD.tar (the first --limit) or SHARD.tar:KEY."""
    from ..pipeline.sentences.inspect import describe

    click.echo(describe(target, limit=limit))


@pipeline.command("verify")
@click.argument("out", type=Location(exists=True, marker="config.json"))
@click.option("--records-only", is_flag=True, help="Check the done records and index.parquet (ids in their "
              "planned shards, no id twice, index agreement) without re-reading the tars: minutes, not hours, at 50M rows.")
def pipeline_verify(out: str, records_only: bool) -> None:
    """Re-read every shard: checksums, keys, decodability, index agreement, no duplicate ids."""
    from ..pipeline.verify import verify

    res = verify(out, tars=not records_only)
    for p in res["problems"]:
        click.echo(f"PROBLEM {p}", err=True)
    click.echo(f"{res['shards']} shards, {res['samples']} samples, {len(res['problems'])} problems")
    sys.exit(1 if res["problems"] else 0)


@pipeline.command("export")
@click.argument("out", type=Location(exists=True, marker="index.parquet"))
@click.option("--lhotse", "lhotse_dir", required=True, type=Location(),
              help="Write recordings / supervisions / cuts .jsonl.gz (Lhotse's layout) into this folder.")
def pipeline_export(out: str, lhotse_dir: str) -> None:
    """A finished `pipeline run` output's items (those in its shards) as Lhotse manifests."""
    from ..pipeline.lhotse_export import export

    res = export(out, lhotse_dir)
    click.echo(f"{res['cuts']} cuts, {res['supervisions']} supervisions, {res['recordings']} recordings -> "
               f"{res['folder']}")
    if res["shar_cuts"]:
        click.echo(f"{res['shar_cuts']} cuts from tar / Parquet members (their audio inside) -> "
                   f"{storage.join(res['folder'], 'shar')} (CutSet.from_shar)")
