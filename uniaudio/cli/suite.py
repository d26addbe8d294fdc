"""`benchmark suite ...`: build published test sets from downloaded corpora, list and show them."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ._common import CONTEXT, Group


@click.group("suite", cls=Group, context_settings=CONTEXT)
def suite() -> None:
    """Published test sets: `suite list`, `suite build NAME --root CORPUS --out DIR`, `suite show DIR`."""


@suite.command("list")
def suite_list() -> None:
    """The suites `suite build` makes: tasks, source, item rule, published item counts."""
    from ..benchmark.suites import SUITES

    click.echo("demo: every task, built offline from the demo corpora (the default --suite); "
               "`--suite demo-zh` builds demo-zh (below) from the same corpora")
    for s in SUITES.values():
        counts = ", ".join(f"{t} {n:,}" for t, n in s.published_items.items())
        click.echo(f"{s.name} ({', '.join(s.tasks)}): {s.source}\n  items: {s.rule}"
                   f"{f' (published: {counts})' if counts else ''}\n  --root: {s.layout}"
                   + (f"\n  --list: {s.list_format}" if s.list_format else ""))


@suite.command("build")
@click.argument("name")
@click.option("--root", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The corpus folder as downloaded (`suite list` says which layout each suite reads).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The suite folder to write ({task}.parquet + suite.json): give it to `benchmark run --suite`.")
@click.option("--list", "list_file", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="The published item list, for suites built from one.")
@click.option("--allow-missing", is_flag=True,
              help="Build without the listed items the corpus lacks (recorded: results say 'N of M items').")
@click.option("--seed", default=0, show_default=True, help="For suites whose rule picks (prompts, enrollments).")
def suite_build(name: str, root: Path, out: Path, list_file: Path | None, allow_missing: bool, seed: int) -> None:
    """Build suite NAME from the corpus at --root into --out."""
    from ..benchmark.suites import build, card_line

    card = build(name, root, out, list_file=list_file, allow_missing=allow_missing, seed=seed)
    counts = ", ".join(f"{t}: {n:,} items" for t, n in card["tasks"].items())
    click.echo(f"{card_line(card)}: {counts} -> {out}")
    if card["list"] and card["list"]["is_published"] is False:
        click.echo(f"note: {card['list']['file']} is not the published list (sha256 differs): results on it are not "
                   "comparable with the published tables", err=True)
    if card["missing"]["count"]:
        click.echo(f"left out {card['missing']['count']} listed item(s) the corpus lacks, e.g. "
                   f"{', '.join(card['missing']['ids'][:5])}", err=True)
    click.echo(f"score it: uniaudio benchmark run --task {','.join(card['tasks'])} --suite {out} --system ...")


@suite.command("show")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
def suite_show(folder: Path) -> None:
    """A suite folder's card (suite.json)."""
    from ..benchmark.suites import read_card

    card = read_card(folder)
    if card is None:
        sets = sorted(p.stem for p in folder.glob("*.parquet"))
        raise click.ClickException(f"{folder} has no suite.json (not built by `benchmark suite build`); its test "
                                   f"sets: {', '.join(sets) or 'none'}")
    click.echo(json.dumps(card, indent=2, ensure_ascii=False))
