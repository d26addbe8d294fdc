"""`benchmark publish`: results of any runs -> leaderboards/ (HTML, JSON + schema, CSV, Markdown).

collect.py  read and check aggregate.json + items.jsonl; rows of cells (values, intervals, failures), provenance
cells.py    HeaderCell (key, metric, direction, unit: once per column) and Cell (value, display, interval)
stats.py    95% intervals (mean +- 1.96 SE, seeded bootstraps)
tables.py   leaderboard.json / .schema.json / .csv / .md, escaped per format
html.py     index.html, task pages (sortable tables, plots, cards, provenance), per-item pages"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from ... import storage
from ..tasks import TASKS
from . import html, tables
from .cells import to_json
from .collect import collect, columns, primary, ranked
from .reported import rows_for as reported_rows

MARKER = ".uniaudio-report.json"  # what made a report folder: its sources and its files


class PublishError(ValueError):
    """Nothing to publish, or an output folder that must not be overwritten."""


def publish(paths: list[str | Path], out: str | Path, *, date: str | None = None, force: bool = False,
            names: list[str] | None = None, reported: list[dict] | None = None) -> dict:
    """Merge every run found under `paths` into the report folder `out`; returns the leaderboard
    and the files. `date` pins the generation date (byte-identical reruns); default: today (UTC).

    Nothing is written unless the whole report is: it is built in a staging folder beside
    `out` and swapped in when complete, so a failure leaves an earlier report as it was. A
    folder that holds a report of other results, or files no report made, is refused unless
    `force` (the checkout's committed leaderboards/ must not be replaced by a 3-task run).
    `names`: how the sources are recorded as the report's owners when `paths` are local copies
    of results elsewhere (the s3:// prefixes they mirror); default their paths. `reported`: entries
    of a reported-numbers file (`reported.load`), shown beside measured rows of the same suite."""
    from ..provenance import toolkit

    paths = [Path(p) for p in paths]
    rows, refused = collect(paths)
    if not rows:
        why = "; ".join(f"{x['path']}: {x['reason']}" for x in refused[:5]) or "no results/{task}/{system}/aggregate.json"
        raise PublishError(f"no results to publish in {', '.join(map(str, paths))} ({why}); nothing was written")
    if storage.is_uri(str(out)):  # object storage: built here, then uploaded (`_upload`)
        remote, out = str(out), Path(tempfile.mkdtemp(prefix="uniaudio-publish-")) / "report"
        sources = sorted(names or (str(p.resolve()) for p in paths))
        _check_owner_remote(remote, sources, force)
    else:
        remote, out = None, Path(out)
        sources = sorted(names or {os.path.relpath(p.resolve(), out.resolve()) for p in paths})
        _restore_interrupted(out)
        _check_owner(out, sources, force)
    by_task: dict[str, list[dict]] = {}
    for r in rows:
        by_task.setdefault(r["task"], []).append(r)
    order = list(TASKS) + sorted(set(by_task) - set(TASKS))
    tasks = []
    for name in [t for t in order if t in by_task]:
        cols = columns(by_task[name])
        first = primary(name, cols, by_task[name])
        measured_on = {r["suite_card"]["name"] for r in by_task[name] if r.get("suite_card")}
        beside, elsewhere = reported_rows(reported or [], name, measured_on)
        tasks.append({"task": name, "description": TASKS[name].description if name in TASKS else None,
                      "primary": first, "columns": cols,
                      "rows": [{"kind": "measured", **{k: v for k, v in r.items() if not k.startswith("_")}}
                               for r in ranked(by_task[name], first, cols)],
                      "reported": beside, "reported_not_shown": elsewhere})
    board = {"schema": "uniaudio.leaderboard/1", "generated": date or time.strftime("%Y-%m-%d", time.gmtime()),
             "publisher": toolkit(), "tasks": tasks, "refused": refused}
    pages = {"index.html": html.index_page(board)}
    items_of = {(r["task"], r["system"]): r["_items"] for r in rows}
    for t in tasks:
        pages[html.task_page_name(t["task"])] = html.task_page(t)
        for r in t["rows"]:
            pages[html.items_page_name(t["task"], r["system"])] = html.items_page(t, r, items_of[(t["task"], r["system"])])
    staging = out.parent / f".{out.name}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        names = [p.name for p in tables.write(board, staging)]
        for name, text in pages.items():
            (staging / name).write_text(text, encoding="utf-8")
            names.append(name)
        (staging / MARKER).write_text(json.dumps({"made_by": "uniaudio benchmark publish", "sources": sources,
                                                  "files": sorted(names)}, indent=2) + "\n")
        names.append(MARKER)
        if remote:
            _upload(staging, remote, names)
        else:
            _swap_in(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if remote:
            shutil.rmtree(out.parent, ignore_errors=True)
    if remote:
        return {"board": to_json(board), "files": [storage.join(remote, n) for n in names]}
    return {"board": to_json(board), "files": [out / n for n in names]}


def _upload(staging: Path, remote: str, names: list[str]) -> None:
    """Object storage has no folder rename: every file is uploaded whole, the marker last (a report is
    the files its marker lists), then the previous report's files this one no longer has are deleted."""
    old = _remote_marker(remote)
    for name in sorted(n for n in names if n != MARKER):
        storage.write_bytes(storage.join(remote, name), (staging / name).read_bytes())
    storage.write_bytes(storage.join(remote, MARKER), (staging / MARKER).read_bytes())
    for name in sorted(set((old or {}).get("files", [])) - set(names)):
        storage.delete(storage.join(remote, name))


def _remote_marker(remote: str) -> dict | None:
    if not storage.exists(storage.join(remote, MARKER)):
        return None
    try:
        return json.loads(storage.read_bytes(storage.join(remote, MARKER)))
    except ValueError:
        raise PublishError(f"{storage.join(remote, MARKER)} is unreadable: refusing to replace {remote} without "
                           "--force") from None


def _check_owner_remote(remote: str, sources: list[str], force: bool) -> None:
    present = [n.rsplit("/", 1)[-1] for n in storage.glob(storage.join(remote, "*"))]
    if not present or force:
        return
    made = _remote_marker(remote)
    if made is None:
        raise PublishError(f"{remote} holds objects that no `benchmark publish` made ({', '.join(present[:3])}): "
                           "refusing to replace them; give a new or empty --out prefix, or --force")
    if list(made.get("sources", [])) != sources:
        raise PublishError(f"{remote} holds a report of other results (made from {', '.join(made.get('sources', []))}"
                           f"; this one is from {', '.join(sources)}): publish to another --out, or --force")


def _check_owner(out: Path, sources: list[str], force: bool) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise PublishError(f"{out} is a file, not a report folder")
    present = sorted(p.name for p in out.iterdir())
    if not present or force:
        return
    marker = out / MARKER
    if not marker.is_file():
        raise PublishError(f"{out} holds files that no `benchmark publish` made ({', '.join(present[:3])}"
                           f"{', ...' if len(present) > 3 else ''}): refusing to replace them; give a new or empty "
                           "--out folder, or --force")
    try:
        made = json.loads(marker.read_text())
        old_sources, old_files = list(made["sources"]), set(made["files"])
    except (ValueError, KeyError, TypeError):
        raise PublishError(f"{marker} is unreadable: refusing to replace {out} without --force") from None
    if old_sources != sources:
        raise PublishError(f"{out} holds a report of other results (made from {', '.join(old_sources)}, relative to "
                           f"it; this one is from {', '.join(sources)}): publish to another --out folder, or --force "
                           "to replace it")
    extra = [n for n in present if n not in old_files and n != MARKER]
    if extra:
        raise PublishError(f"{out} holds files its report did not make ({', '.join(extra[:3])}): move them, or "
                           "--force")


def _swap_in(staging: Path, out: Path) -> None:
    """Replace `out` by the finished `staging` folder: two renames, the old report removed last."""
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        os.replace(out, old)
    os.replace(staging, out)
    shutil.rmtree(old, ignore_errors=True)


def _restore_interrupted(out: Path) -> None:
    """A publish killed between the two renames of `_swap_in` left the old report aside: put it back."""
    if out.exists():
        return
    olds = sorted(out.parent.glob(f".{out.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if olds:
        os.replace(olds[-1], out)
