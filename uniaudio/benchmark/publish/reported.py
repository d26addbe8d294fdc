"""Numbers reported in publications, shown beside the measured ones and never mixed with them.

A reported-numbers file (YAML) is a list of entries, one per (system, suite, source):

    - system: UniAudio
      suite: librispeech-test-clean-tts     # a suite name (`benchmark suite list`)
      task: tts                             # optional when the suite has one task
      values: {wer: 2.49, sim: 0.57}        # as the paper prints them: percentages for % metrics
      source: NaturalSpeech 3 (arXiv 2403.03100), Table 1
      note: Sim-O (WavLM-TDNN speaker verification)   # optional: how the paper measured it

`load` checks every entry (a known suite and task, values the task's metrics declare, numbers,
a source) and refuses the file naming the line of the first bad entry. `benchmark publish
--reported FILE` adds each entry to its task's board as a row of kind "reported" (its citation,
no interval), shown in a table of its own under the measured rows of the same suite.
`uniaudio/benchmark/data/reported.yaml` holds the figures the project cites."""

from __future__ import annotations

import math
from pathlib import Path

from .cells import Cell, HeaderCell

SHIPPED = Path(__file__).parents[1] / "data" / "reported.yaml"
FIELDS = {"system", "suite", "task", "values", "source", "note"}


class ReportedError(ValueError):
    """A reported-numbers file that cannot be used; the message names the file and line."""


def _entries_with_lines(path: Path) -> list[tuple[int, object]]:
    import yaml

    from ...config import yaml_load  # the one YAML parser (numbers like 3e-3 read as numbers)

    from ... import storage

    text = storage.read_text(str(path))
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)  # nodes only: each entry's line
        data = yaml_load(text)
    except yaml.YAMLError as e:
        raise ReportedError(f"{path}: not YAML ({str(e).splitlines()[0]})") from None
    if data is None:
        return []
    if not isinstance(data, list):
        raise ReportedError(f"{path} line 1: expected a list of entries (- system: ..., suite: ..., values: ...)")
    return [(node.start_mark.line + 1, item) for node, item in zip(root.value, data)]


def load(path: str | Path) -> list[dict]:
    """The entries of a reported-numbers file, checked; ReportedError names the first bad line."""
    from ..metrics import declared
    from ..suites import SUITES
    from ..tasks import TASKS

    path = Path(path)
    out = []
    for line, e in _entries_with_lines(path):
        where = f"{path} line {line}"
        if not isinstance(e, dict):
            raise ReportedError(f"{where}: an entry is a mapping of {', '.join(sorted(FIELDS))}")
        unknown = set(e) - FIELDS
        missing = {"system", "suite", "values", "source"} - set(e)
        if unknown or missing:
            raise ReportedError(f"{where}: " + "; ".join(
                ([f"unknown field(s) {sorted(unknown)}"] if unknown else [])
                + ([f"missing {sorted(missing)}"] if missing else [])))
        suite = SUITES.get(e["suite"])
        if suite is None:
            raise ReportedError(f"{where}: unknown suite {e['suite']!r} (known: {', '.join(sorted(SUITES))})")
        task = e.get("task") or (suite.tasks[0] if len(suite.tasks) == 1 else None)
        if task not in suite.tasks:
            raise ReportedError(f"{where}: task {e.get('task')!r} is not one of {e['suite']}'s ({', '.join(suite.tasks)})")
        allowed = {k for m, _ in (*TASKS[task].metrics, *TASKS[task].set_metrics) for k in _keys(m)}
        if not isinstance(e["values"], dict) or not e["values"]:
            raise ReportedError(f"{where}: values is a mapping of metric value names to numbers")
        values = {}
        for key, v in e["values"].items():
            if declared(str(key)) is None or (allowed and str(key) not in allowed and not any(
                    str(key).startswith(a + "_") for a in allowed)):
                raise ReportedError(f"{where}: {key!r} is not a value the {task} task reports "
                                    f"({', '.join(sorted(allowed))})")
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ReportedError(f"{where}: the value of {key} is not a number ({v!r})")
            values[str(key)] = round(float(v) / 100, 12) if declared(str(key)).unit == "%" else float(v)
        if not str(e["source"]).strip():
            raise ReportedError(f"{where}: source is empty (the paper and table the numbers come from)")
        out.append({"system": str(e["system"]), "suite": e["suite"], "task": task, "values": values,
                    "source": str(e["source"]).strip(), "note": str(e.get("note") or "").strip() or None,
                    "line": line})
    return out


def _keys(metric: str) -> set[str]:
    """The value names a metric declares (its `values`)."""
    from ..metrics import REGISTRY, SET_METRICS

    cls = REGISTRY[metric] if metric in REGISTRY else SET_METRICS[metric] if metric in SET_METRICS else None
    return set(getattr(cls, "values", None) or {metric})


def rows_for(entries: list[dict], task: str, suites: set[str]) -> tuple[list[dict], int]:
    """(reported rows of `task` on a suite measured here, how many entries of the task were left
    out because their suite was not measured: a reported number sits beside its own test set only)."""
    rows, other = [], 0
    for e in entries:
        if e["task"] != task:
            continue
        if e["suite"] not in suites:
            other += 1
            continue
        values = {k: Cell(HeaderCell.of(k, k), v) for k, v in e["values"].items()}
        rows.append({"kind": "reported", "system": e["system"], "suite": e["suite"], "source": e["source"],
                     "note": e["note"], "values": values})
    return rows, other
