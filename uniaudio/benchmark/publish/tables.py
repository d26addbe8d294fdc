"""The machine-readable leaderboard files: leaderboard.json (+ its JSON Schema), leaderboard.csv
and leaderboard.md. Everything that came from results (system names, reasons, card strings) is
escaped for its format (the board's cells come filled from collect.py: these only render them): JSON never holds NaN (allow_nan=False), CSV cells that a spreadsheet
would run as a formula get a leading apostrophe, Markdown cells have `|`, newlines and HTML
special characters escaped."""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path

from .cells import to_json

CSV_FORMULA = ("=", "+", "-", "@", "\t", "\r")

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "uniaudio.leaderboard/1",
    "title": "uniaudio leaderboard",
    "type": "object",
    "required": ["schema", "generated", "publisher", "tasks", "refused"],
    "properties": {
        "schema": {"const": "uniaudio.leaderboard/1"},
        "generated": {"type": "string"},
        "publisher": {"type": "object"},
        "refused": {"type": "array", "items": {"type": "object", "required": ["path", "reason"],
                                               "properties": {"path": {"type": "string"}, "reason": {"type": "string"}}}},
        "tasks": {"type": "array", "items": {
            "type": "object", "required": ["task", "columns", "rows"],
            "properties": {
                "task": {"type": "string"}, "description": {"type": ["string", "null"]},
                "primary": {"type": ["string", "null"]},
                "columns": {"type": "array", "items": {"type": "object", "required": ["key", "metric", "direction"],
                                                       "properties": {"direction": {"enum": ["higher", "lower", None]}}}},
                "reported": {"type": "array", "items": {
                    "type": "object", "required": ["kind", "system", "suite", "source", "values"],
                    "properties": {"kind": {"const": "reported"}, "system": {"type": "string"},
                                   "suite": {"type": "string"}, "source": {"type": "string"},
                                   "note": {"type": ["string", "null"]}, "values": {"type": "object"}}}},
                "rows": {"type": "array", "items": {
                    "type": "object", "required": ["system", "values", "items", "run"],
                    "properties": {
                        "kind": {"const": "measured"},
                        "system": {"type": "string"},
                        "values": {"type": "object", "additionalProperties": {
                            "type": "object", "required": ["value", "ci95", "failed"],
                            "properties": {"value": {"type": ["number", "null"]},
                                           "ci95": {"oneOf": [{"type": "null"},
                                                              {"type": "array", "items": {"type": "number"},
                                                               "minItems": 2, "maxItems": 2}]},
                                           "failed": {"type": ["integer", "null"]}}}},
                        "items": {"type": "object"}, "run": {"type": "object"}}}}}}},
    },
}


def json_text(obj) -> str:
    return json.dumps(to_json(obj), indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def csv_cell(x) -> str | float | int:
    if x is None:
        return ""
    if isinstance(x, str) and x.startswith(CSV_FORMULA):
        return "'" + x
    return x


def csv_text(board: dict) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["task", "system", "value_name", "value", "ci95_low", "ci95_high", "ci_method", "n", "failed",
                "direction", "items_expected", "git_commit", "date", "kind", "source"])
    for t in board["tasks"]:
        for r in t["rows"]:
            for c in t["columns"]:
                cell = r["values"].get(c.key)
                if cell is None:
                    continue
                ci = cell.ci95 or [None, None]
                w.writerow([csv_cell(x) for x in (t["task"], r["system"], c.key, cell.value, ci[0], ci[1], cell.method,
                                                  cell.n, cell.failed, c.direction, r["items"]["expected"],
                                                  r["run"].get("git_commit"), r["run"].get("date"), "measured", None)])
        for r in t.get("reported", []):  # a publication's number: no interval, no run, its citation
            for c in t["columns"]:
                cell = r["values"].get(c.key)
                if cell is not None:
                    w.writerow([csv_cell(x) for x in (t["task"], r["system"], c.key, cell.value, None, None, None,
                                                      None, None, c.direction, None, None, None, "reported",
                                                      f"{r['source']} (suite {r['suite']})")])
    return buf.getvalue()


def md_cell(x) -> str:
    s = "" if x is None else str(x)
    s = html.escape(s, quote=False).replace("|", "\\|").replace("\r", " ").replace("\n", " ")
    return s.replace("`", "\\`")


def md_text(board: dict) -> str:
    out = [f"# uniaudio leaderboard\n\nGenerated {md_cell(board['generated'])} by uniaudio "
           f"{md_cell(board['publisher'].get('uniaudio'))}. Values with their 95% interval in brackets; "
           f"`—` = missing (never a made-up number); `n failed` = items a metric could not score.\n"]
    for t in board["tasks"]:
        cols = t["columns"]
        out.append(f"\n## {md_cell(t['task'])}\n\n{md_cell(t.get('description'))}\n")
        out.append("| system | " + " | ".join(md_cell(c.key) + c.arrow for c in cols) + " |")
        out.append("|---" * (len(cols) + 1) + "|")
        for r in t["rows"]:
            cells = []
            for c in cols:
                cell = r["values"].get(c.key)
                if cell is None:
                    cells.append("—")
                    continue
                text = cell.display + (f" {cell.ci_display}" if cell.ci_display else "")
                if cell.failed:
                    text += f" ⚠ {cell.failed} failed"
                cells.append(md_cell(text))
            out.append(f"| {md_cell(r['system'])} | " + " | ".join(cells) + " |")
        if t.get("reported"):
            out.append("\nReported in publications (not measured here, not ranked with the rows above):\n")
            out.append("| system | " + " | ".join(md_cell(c.key) for c in cols) + " | suite | source |")
            out.append("|---" * (len(cols) + 3) + "|")
            for r in t["reported"]:
                cells = [md_cell(r["values"][c.key].display) if c.key in r["values"] else "—" for c in cols]
                out.append(f"| {md_cell(r['system'])} (reported) | " + " | ".join(cells)
                           + f" | {md_cell(r['suite'])} | {md_cell(r['source'])} |")
    if board["refused"]:
        out.append("\n## Refused result files\n")
        out += [f"- `{md_cell(x['path'])}`: {md_cell(x['reason'])}" for x in board["refused"]]
    return "\n".join(out) + "\n"


def write(board: dict, out: Path) -> list[Path]:
    files = {"leaderboard.json": json_text(board), "leaderboard.schema.json": json_text(SCHEMA),
             "leaderboard.csv": csv_text(board), "leaderboard.md": md_text(board)}
    paths = []
    for name, text in files.items():
        p = out / name
        p.write_text(text, encoding="utf-8")
        paths.append(p)
    return paths
