"""Static HTML pages of a leaderboard: index.html (overview), task-{task}.html (the full
table, a plot of each metric with its interval, metric cards, provenance) and one per-item page
per (task, system), worst items first. No framework and no network: one small inline script
sorts a table when a metric header is clicked (best first by the metric's direction, missing
always last; a second click reverses). Every string from results is HTML-escaped; the JSON
embedded in a page has < > & and U+2028/9 escaped, so it cannot close its script tag."""

from __future__ import annotations

import html
import io
import json
import math

from ...files import safe_name
from .cells import Cell, HeaderCell, fmt, to_json

CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222;max-width:1600px}
.tasks{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:0 2em}
.tasks section table{width:100%}dl.card{display:grid;grid-template-columns:max-content 1fr;gap:2px 1em}
dl.card dt{font-weight:600}dl.card dd{margin:0;overflow-wrap:anywhere}.note{color:#b00}
ol.notes pre{white-space:pre-wrap;overflow-wrap:anywhere}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th[data-dir]{cursor:pointer;background:#f3f3f3}th[data-sorted=best]::after{content:" \\25BC"}
th[data-sorted=worst]::after{content:" \\25B2"}td.num{text-align:right;white-space:nowrap}
.ci{color:#777;font-size:12px}.fail{color:#b00;font-weight:600}.missing{color:#999}
pre{background:#f7f7f7;padding:8px;overflow:auto;max-height:400px}code{background:#f3f3f3}"""

SORT_JS = """document.querySelectorAll('table.sortable th[data-dir]').forEach(function (th) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0];
    var idx = Array.prototype.indexOf.call(th.parentNode.children, th);
    var best = th.getAttribute('data-sorted') !== 'best';
    var sign = (th.getAttribute('data-dir') === 'lower' ? 1 : -1) * (best ? 1 : -1);
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var va = a.cells[idx].getAttribute('data-value'), vb = b.cells[idx].getAttribute('data-value');
      var ma = va === null || va === '', mb = vb === null || vb === '';
      if (ma || mb) { return ma === mb ? 0 : (ma ? 1 : -1); }
      return sign * (parseFloat(va) - parseFloat(vb));
    });
    rows.forEach(function (r) { body.appendChild(r); });
    table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('data-sorted'); });
    th.setAttribute('data-sorted', best ? 'best' : 'worst');
  });
});"""


def esc(x) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def script_json(obj) -> str:
    """JSON safe inside <script type="application/json">."""
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, allow_nan=False)
    for a, b in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(a, b)
    return text


def page(title: str, body: str, data=None) -> str:
    data_tag = f'<script type="application/json" id="leaderboard-data">{script_json(data)}</script>\n' if data else ""
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{esc(title)}</title>"
            f"<style>{CSS}</style></head><body>\n{body}\n{data_tag}<script>{SORT_JS}</script></body></html>\n")


def task_page_name(task: str) -> str:
    return f"task-{safe_name(task)}.html"


def items_page_name(task: str, system: str) -> str:
    return f"items-{safe_name(task)}-{safe_name(system)}.html"


def value_cell(cell: Cell | None) -> str:
    if cell is None or cell.value is None:
        why = (cell.error if cell else None) or "no value"
        fail = f' <span class="fail" title="{esc(why)}">⚠ {esc(cell.failed)} failed</span>' \
            if cell and cell.failed else ""
        return f'<td class="num missing" data-value="">—{fail}</td>'
    ci = f'<br><span class="ci" title="{esc(cell.method)}">{esc(cell.ci_display)}</span>' if cell.ci_display else ""
    if cell.seeds_display:  # a sampling system run once per seed: the spread across runs, beside the interval
        per = ", ".join(fmt(x, cell.column.unit) for x in cell.seeds["per_seed"])
        ci += f'<br><span class="seeds" title="per seed: {esc(per)}">{esc(cell.seeds_display)}</span>'
    fail = ""
    if cell.failed:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted((cell.failure_reasons or {}).items()))
        fail = f'<br><span class="fail" title="{esc(reasons)}">⚠ {esc(cell.failed)} failed</span>'
    return f'<td class="num" data-value="{cell.value!r}">{esc(cell.display)}{ci}{fail}</td>'


def header(c: HeaderCell) -> str:
    attr = f' data-dir="{c.direction}"' if c.direction else ""
    return (f'<th{attr} title="{esc(c.metric)}: {esc(c.direction or "no direction")} is better">'
            f'{esc(c.key)}{c.arrow}</th>')


def plot_svg(task: dict) -> str:
    """Bars with 95% intervals, one panel per metric value, systems on the y axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def has_values(c):
        return any(r["values"].get(c.key) is not None and r["values"][c.key].value is not None for r in task["rows"])

    # a metric no system has a value for (its model is missing offline) gets no empty panel
    cols = [c for c in task["columns"] if (c.key == c.metric or c.key.endswith("_ovrl")) and has_values(c)][:6]
    if not cols or not task["rows"]:
        return ""
    with matplotlib.rc_context({"svg.hashsalt": "uniaudio", "svg.fonttype": "none", "text.parse_math": False,
                                "font.size": 9}):
        fig, axes = plt.subplots(1, len(cols), figsize=(3.2 * len(cols), 0.45 * len(task["rows"]) + 1.2),
                                 squeeze=False)
        names = [r["system"] for r in task["rows"]]
        for ax, c in zip(axes[0], cols):
            vals, lo, hi = [], [], []
            for r in task["rows"]:
                cell = r["values"].get(c.key)
                v = cell.value if cell is not None else None
                vals.append(v if v is not None else math.nan)
                ci = cell.ci95 if cell is not None else None
                lo.append(v - ci[0] if v is not None and ci else 0.0)
                hi.append(ci[1] - v if v is not None and ci else 0.0)
            y = range(len(names))
            ax.barh(list(y), [0 if math.isnan(v) else v for v in vals], xerr=[lo, hi], color="#7aa6d6",
                    ecolor="#333", capsize=3)
            for i, v in enumerate(vals):
                if math.isnan(v):
                    ax.text(0, i, " missing", va="center", color="#999")
            ax.set_yticks(list(y))
            ax.set_yticklabels(names if ax is axes[0][0] else [""] * len(names))
            ax.invert_yaxis()
            ax.set_title(f"{c.key} ({c.direction or '?'} is better)")
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
        plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]


def card_html(card) -> str:
    """A metric card as a definition list: plain values as text (not JSON escapes), nested
    ones as indented JSON with their characters as they are."""
    if not isinstance(card, dict) or not card:
        return "<p>(no card)</p>"
    rows = []
    for k, v in sorted(card.items()):
        text = v if isinstance(v, str) else json.dumps(v, indent=2, sort_keys=True, ensure_ascii=False, default=str)
        value = f"<pre>{esc(text)}</pre>" if isinstance(v, (dict, list)) else esc(text)
        rows.append(f"<dt>{esc(k)}</dt><dd>{value}</dd>")
    return f'<dl class="card">{"".join(rows)}</dl>'


def _provenance(r: dict) -> dict:
    """What a row's provenance block shows (its suite card only when the suite was built)."""
    shown = {k: r[k] for k in ("system_card", "test_set", "suite", "run")}
    for k in ("suite_card", "protocol"):
        if r.get(k) and not (k == "protocol" and r[k]["name"] == "offline-defaults"):
            shown[k] = r[k]
    return shown


def reported_table(task: dict) -> str:
    """Publications' numbers on the same suite: a table of their own under the measured one,
    each row marked and cited, no interval, never ranked with the measured rows."""
    if not task.get("reported"):
        return ""
    cols = task["columns"]

    def row(r: dict) -> str:
        note = f"<br><small>{esc(r['note'])}</small>" if r.get("note") else ""
        cells = "".join(value_cell(r["values"].get(c.key)) for c in cols)
        return (f'<tr class="reported"><td>{esc(r["system"])} <span class="mark">reported</span></td>{cells}'
                f'<td>{esc(r["suite"])}</td><td>{esc(r["source"])}{note}</td></tr>')

    rows = "".join(row(r) for r in task["reported"])
    return (f'<h2>Reported in publications</h2><p>As their papers print them, on the same test set; not measured '
            f'here and not ranked with the rows above (their metric models may differ: see each note).</p>'
            f'<table class="reported"><thead><tr><th>system</th>{"".join(header(c) for c in cols)}<th>suite</th>'
            f'<th>source</th></tr></thead><tbody>{rows}</tbody></table>')


def task_page(task: dict) -> str:
    cols = task["columns"]
    rows_html = []
    for r in task["rows"]:
        items = r["items"]
        name = f'<a href="{esc(items_page_name(task["task"], r["system"]))}">{esc(r["system"])}</a>'
        cells = "".join(value_cell(r["values"].get(c.key)) for c in cols)
        rows_html.append(f'<tr><td>{name}</td>{cells}<td class="num" data-value="{items["expected"] or ""}">'
                         f'{esc(items["in_results"])} / {esc(items["expected"])}</td>'
                         f'<td><a href="#run-{esc(safe_name(r["system"]))}">run</a></td></tr>')
    table = (f'<table class="sortable" id="results"><thead><tr><th>system</th>{"".join(header(c) for c in cols)}'
             f'<th>items (results / expected)</th><th>provenance</th></tr></thead>'
             f'<tbody>{"".join(rows_html)}</tbody></table>')
    cards = {}
    for r in task["rows"]:
        for m, card in r["cards"].items():
            cards.setdefault(m, card)
    cards_html = "".join(f"<h3>{esc(m)}</h3>{card_html(c)}" for m, c in sorted(cards.items()))
    prov = "".join(
        f'<h3 id="run-{esc(safe_name(r["system"]))}">{esc(r["system"])}</h3>'
        f'<pre>{esc(json.dumps(_provenance(r), indent=2, sort_keys=True, default=str))}</pre>'
        for r in task["rows"])
    table += reported_table(task)
    suites = sorted({r["suite_card"]["line"] for r in task["rows"] if r.get("suite_card")})
    presets = sorted({(p["name"], p["paper_setting"]) for r in task["rows"] if (p := r.get("protocol"))})
    suite_line = f'<p class="suite">test set: {esc("; ".join(suites))}</p>' if suites else ""
    if presets and any(name != "offline-defaults" for name, _ in presets):  # the demo board stays as it was
        suite_line += "<p class=\"protocol\">protocol: " + esc("; ".join(
            f"{name} ({'the paper setting' if paper else 'not the paper setting'})" for name, paper in presets)) + "</p>"
    body = (f'<p><a href="index.html">all tasks</a></p><h1>{esc(task["task"])}</h1><p>{esc(task.get("description"))}</p>'
            f"{suite_line}"
            f"<p>Click a metric to sort best first (missing last); the interval under each value is its 95% CI "
            f"(hover for the method); ⚠ marks items a metric could not score (hover for reasons).</p>{table}"
            f'<h2>Plot</h2><div class="plot">{plot_svg(task)}</div><h2>Metric cards</h2>{cards_html}'
            f"<h2>Provenance</h2>{prov}")
    return page(f"uniaudio leaderboard: {task['task']}", body, {"task": task["task"], "rows": [
        {k: to_json(r[k]) for k in ("system", "values", "items")} for r in task["rows"]]})


def items_page(task: dict, row: dict, items: list[dict]) -> str:
    """Per-item scores of one system on one task, worst first (failures, then by the primary value).
    A failure reason shared by several items (a metric's model missing offline) is stated once
    above the table and cited by number in the rows."""
    primary = task.get("primary")
    d = next((c.direction for c in task["columns"] if c.key == primary), None)
    keys = sorted({k for it in items for k, v in it["values"].items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)
                   and not k.endswith(("_S", "_D", "_I", "_N"))})

    def badness(it):
        v = it["values"].get(primary)
        ok = isinstance(v, (int, float)) and math.isfinite(v)
        return (0 if it.get("errors") else 1, (v if d == "higher" else -v) if ok else math.inf, it["id"])

    counts: dict[str, int] = {}
    for it in items:
        for reason in it.get("errors", {}).values():
            counts[str(reason)] = counts.get(str(reason), 0) + 1
    shared = {r: n for n, r in enumerate(sorted(r for r, c in counts.items() if c > 1), 1)}
    has_ref = any(it.get("ref") is not None for it in items)
    columns = {k: HeaderCell.of(k, k) for k in keys}
    rows = []
    for it in sorted(items, key=badness):
        hyp = it.get("hyp") if it.get("hyp") is not None else it["values"].get("transcript")
        cells = "".join(value_cell(Cell(columns[k], v if isinstance(v, (int, float)) and math.isfinite(v) else None))
                        for k in keys for v in [it["values"].get(k)])
        errs = "; ".join(f"{k}: " + (f"see note {shared[str(v)]}" if str(v) in shared else str(v))
                         for k, v in sorted(it.get("errors", {}).items()))
        ref = f"<td>{esc(it.get('ref'))}</td>" if has_ref else ""
        rows.append(f"<tr><td>{esc(it['id'])}</td>{ref}<td>{esc(hyp)}</td>{cells}<td class=\"fail\">{esc(errs)}</td></tr>")
    heads = "".join(header(columns[k]) for k in keys)
    notes = "".join(f'<li id="note-{n}"><span class="note">note {n}</span> ({counts[r]} items): <pre>{esc(r)}</pre></li>'
                    for r, n in shared.items())
    ref_head = "<th>reference</th>" if has_ref else ""
    body = (f'<p><a href="{esc(task_page_name(task["task"]))}">{esc(task["task"])}</a> · <a href="index.html">all tasks</a></p>'
            f'<h1>{esc(row["system"])} on {esc(task["task"])}: {len(items)} items</h1>'
            f"<p>Worst first: items with a failure, then by {esc(primary)}.</p>"
            + (f"<h2>Failures shared by several items</h2><ol class=\"notes\">{notes}</ol>" if notes else "")
            + f'<table class="sortable"><thead><tr><th>id</th>{ref_head}<th>output / transcript</th>{heads}'
            f'<th>failures</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')
    return page(f"{row['system']} on {task['task']}", body)


def index_page(board: dict) -> str:
    parts = [f"<h1>uniaudio leaderboard</h1><p>Generated {esc(board['generated'])} by uniaudio "
             f"{esc(board['publisher'].get('uniaudio'))} (commit {esc(board['publisher'].get('git_commit'))}"
             f"{', dirty tree' if board['publisher'].get('git_dirty') else ''}). Data: "
             '<a href="leaderboard.json">JSON</a> (<a href="leaderboard.schema.json">schema</a>), '
             '<a href="leaderboard.csv">CSV</a>, <a href="leaderboard.md">Markdown</a>.</p>']
    sections = []
    for t in board["tasks"]:
        key = t.get("primary")
        col = next((c for c in t["columns"] if c.key == key), None)
        rows = "".join(f'<tr><td><a href="{esc(items_page_name(t["task"], r["system"]))}">{esc(r["system"])}</a></td>'
                       f'{value_cell(r["values"].get(key))}</tr>'
                       for r in t["rows"])
        head = header(col) if col else "<th>value</th>"
        sections.append(f'<section><h2><a href="{esc(task_page_name(t["task"]))}">{esc(t["task"])}</a></h2>'
                        f'<p>{esc(t.get("description"))}</p><table class="sortable"><thead><tr><th>system</th>{head}'
                        f"</tr></thead><tbody>{rows}</tbody></table></section>")
    parts.append(f'<p>Each task shows its first metric, best first (missing last); its page has every metric.</p>'
                 f'<div class="tasks">{"".join(sections)}</div>')
    if board["refused"]:
        parts.append("<h2>Refused result files</h2><ul>" + "".join(
            f"<li><code>{esc(x['path'])}</code>: {esc(x['reason'])}</li>" for x in board["refused"]) + "</ul>")
    return page("uniaudio leaderboard", "\n".join(parts), {"generated": board["generated"],
                                                          "tasks": [t["task"] for t in board["tasks"]]})
