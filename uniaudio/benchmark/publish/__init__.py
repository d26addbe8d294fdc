"""`benchmark publish`: results of any runs -> leaderboards/ (HTML, JSON + schema, CSV, Markdown).

collect.py  read and check aggregate.json + items.jsonl; rows with values, intervals, provenance
stats.py    95% intervals (mean +- 1.96 SE, seeded bootstraps)
tables.py   leaderboard.json / .schema.json / .csv / .md, escaped per format
html.py     index.html, task pages (sortable tables, plots, cards, provenance), per-item pages"""

from __future__ import annotations

import time
from pathlib import Path

from ..tasks import TASKS
from . import html, tables
from .collect import collect, columns, primary


def publish(paths: list[str | Path], out: str | Path, *, date: str | None = None) -> dict:
    """Merge every run found under `paths` into `out`; returns the leaderboard and the files.
    `date` pins the generation date (byte-identical reruns); default: today (UTC)."""
    from ..provenance import toolkit

    rows, refused = collect([Path(p) for p in paths])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    by_task: dict[str, list[dict]] = {}
    for r in rows:
        by_task.setdefault(r["task"], []).append(r)
    order = list(TASKS) + sorted(set(by_task) - set(TASKS))
    tasks = []
    for name in [t for t in order if t in by_task]:
        cols = columns(by_task[name])
        tasks.append({"task": name, "description": TASKS[name].description if name in TASKS else None,
                      "primary": primary(name, cols, by_task[name]), "columns": cols,
                      "rows": [{k: v for k, v in r.items() if not k.startswith("_")} for r in by_task[name]]})
    board = {"schema": "uniaudio.leaderboard/1", "generated": date or time.strftime("%Y-%m-%d", time.gmtime()),
             "publisher": toolkit(), "tasks": tasks, "refused": refused}
    files = tables.write(board, out)
    pages = {"index.html": html.index_page(board)}
    items_of = {(r["task"], r["system"]): r["_items"] for r in rows}
    for t in tasks:
        pages[html.task_page_name(t["task"])] = html.task_page(t)
        for r in t["rows"]:
            pages[html.items_page_name(t["task"], r["system"])] = html.items_page(t, r, items_of[(t["task"], r["system"])])
    for name, text in pages.items():
        (out / name).write_text(text, encoding="utf-8")
        files.append(out / name)
    return {"board": board, "files": files}
