"""Read `benchmark run` results (aggregate.json + items.jsonl per task and system), check them,
and build the leaderboard: one row per (task, system) with every value, its 95% interval
recomputed from the per-item scores, items expected / scored / failed with reasons, the system
and metric cards and the run's provenance.

Result files are data from elsewhere: a run whose files do not validate, or whose aggregate
disagrees with its own items, is refused with the reason and the others are published.
Missing values are None (JSON null), never -1 or NaN."""

from __future__ import annotations

import dataclasses

import json
import math
from pathlib import Path

from ..metrics import declared
from ..results import ResultError, check_aggregate, check_item
from ..tasks import TASKS
from .cells import Cell, HeaderCell
from .stats import mean_ci, ratio_ci

SCHEMA_ID = "uniaudio.leaderboard/1"
# bookkeeping values of an aggregate that are not scores
SKIP_SUFFIXES = ("_errors", "_ref_words", "_ref_characters", "_frames", "_cached", "_slope", "_r2", "_se", "_S", "_D",
                 "_I", "_N", "items_scored")
ERROR_RATES = ("wer", "cer")


def direction(key: str) -> str | None:
    """"higher" or "lower" is better, or None (a measurement beside the scores, or a value no
    metric declares): from the declaration of the metric that reports it (`Metric.values`)."""
    v = declared(key)
    return v.direction if v is not None else None


def finite(x) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def find_runs(paths: list[Path]) -> list[Path]:
    """Every results/{task}/{system}/aggregate.json under the given folders (a `benchmark run
    --out` folder, its results/ folder, or one task/system folder)."""
    found = []
    for p in paths:
        p = Path(p)
        if (p / "aggregate.json").is_file():
            found.append(p / "aggregate.json")
        found += sorted(p.glob("results/*/*/aggregate.json")) + sorted(p.glob("*/*/aggregate.json"))
    return sorted(set(found))


def _read_items(path: Path) -> list[dict]:
    if not path.is_file():
        raise ResultError(f"{path.name} is missing")
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            it = json.loads(line)
        except ValueError:
            raise ResultError(f"{path.name} line {n} is not JSON") from None
        check_item(it, n)
        items.append(it)
    return items


def _values(metric: str, entry: dict, items: list[dict]) -> dict[str, Cell]:
    """The row's cells for one metric: each score key with its value, interval and failures."""
    set_level = "items_scored" not in entry and "items_failed" not in entry
    out = {}
    for key, raw in sorted(entry["value"].items()):
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or key.endswith(SKIP_SUFFIXES):
            continue
        column = HeaderCell.of(key, metric)
        if declared(key) is None:
            raise ResultError(f"value {key!r} of metric {metric!r} is declared by no registered metric (a metric "
                              "declares each value's direction and unit in `Metric.values`)")
        value, recomputed = finite(raw), None
        if set_level:
            ci, n = None, entry.get("items")
            se = finite(entry["value"].get(f"{key}_se"))
            if value is not None and se is not None:  # an extrapolated value (FAD-inf): the fit's own error
                ci = [value - 1.96 * se, value + 1.96 * se]
                method = ("value +- 1.96 standard errors of a fitted extrapolation (FAD-inf: the intercept of FAD "
                          "vs 1/n); below 0 means about 0 within this interval")
            else:
                method = "set-level value: no per-item scores, no interval"
        else:
            if key in ERROR_RATES and key == metric:
                ok = [it["values"] for it in items if finite(it["values"].get(key)) is not None
                      and all(f"{key}_{c}" in it["values"] for c in "SDIN")]
                stats = ratio_ci([v[f"{key}_S"] + v[f"{key}_D"] + v[f"{key}_I"] for v in ok],
                                 [v[f"{key}_N"] for v in ok])
            else:
                per_item = metric if key == f"{metric}_utt_mean" else key
                stats = mean_ci([it["values"].get(per_item) for it in items])
            ci, n, method, recomputed = stats["ci95"], stats["n"], stats["method"], stats["value"]
        if value is not None and recomputed is not None and abs(recomputed - value) > 1e-6 * max(1.0, abs(value)):
            raise ResultError(f"aggregate {key} = {value} but its items give {recomputed}")
        if value is None and recomputed is not None:
            raise ResultError(f"aggregate {key} is missing but its items give {recomputed}")
        error = str(entry["error"])[:500] if entry.get("error") else None
        out[key] = Cell(column, value, ci95=ci, method=method, n=n,
                        failed=entry.get("items_failed", entry.get("items_missing")),
                        failure_reasons={"set metric error": 1} if error else entry.get("failure_reasons", {}),
                        error=error)
    return out


def load_run(agg_path: Path) -> dict:
    """One (task, system) row, or ResultError with the reason it cannot be published."""
    try:
        agg = json.loads(agg_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ResultError(f"aggregate.json is not valid JSON: {e}") from None
    check_aggregate(agg)
    items = _read_items(agg_path.with_name("items.jsonl"))
    values, cards = {}, {}
    for metric, entry in sorted(agg["metrics"].items()):
        values.update(_values(metric, entry, items))
        cards[metric] = entry.get("card", {})
    seeds = agg.get("seeds") or {}
    for key, spread in (seeds.get("values") or {}).items():  # run 0 is the value; the spread across runs beside it
        if key in values:
            values[key] = dataclasses.replace(values[key], seeds={"n": seeds["n"], **spread})
    run = agg["run"]
    test_set = agg.get("test_set") or {}
    expected = test_set.get("items") if isinstance(test_set.get("items"), int) else agg.get("items")
    failed_items = sorted({it["id"] for it in items if it.get("errors")})
    return {"task": agg["task"], "system": agg["system"], "system_card": agg.get("system_card", {}),
            "suite": agg.get("suite"), "suite_card": agg.get("suite_card"), "protocol": agg.get("protocol"),
            "test_set": test_set,
            "items": {"expected": expected, "in_results": len(items), "with_a_failure": len(failed_items)},
            "values": values, "cards": cards,
            "run": {k: run.get(k) for k in ("uniaudio", "git_commit", "git_dirty", "date", "python", "machine",
                                            "device", "libraries")},
            "_items": items, "_source": str(agg_path.parent)}


def collect(paths: list[Path]) -> tuple[list[dict], list[dict]]:
    """(rows, refused) from every run found under `paths`; duplicates of a (task, system)
    keep the most recent run and refuse the others with the reason."""
    rows, refused = {}, []
    for agg in find_runs(paths):
        try:
            row = load_run(agg)
        except ResultError as e:
            refused.append({"path": str(agg.parent), "reason": str(e)})
            continue
        key = (row["task"], row["system"])
        if key in rows:
            old = rows[key]
            keep, drop = (row, old) if (row["run"].get("date") or "") > (old["run"].get("date") or "") else (old, row)
            refused.append({"path": drop["_source"], "reason": f"another run of {key[1]} on {key[0]} is newer: "
                                                               f"{keep['_source']}"})
            rows[key] = keep
        else:
            rows[key] = row
    return [rows[k] for k in sorted(rows)], refused


def columns(rows: list[dict]) -> list[HeaderCell]:
    """A task's columns: every value key any of its rows has, metrics in task order."""
    seen: dict[str, HeaderCell] = {}
    for r in rows:
        for key, cell in r["values"].items():
            seen.setdefault(key, cell.column)
    task = TASKS.get(rows[0]["task"]) if rows else None
    order = [m for m, _ in task.metrics] + [m for m, _ in task.set_metrics] if task else []
    return sorted(seen.values(), key=lambda c: (order.index(c.metric) if c.metric in order else len(order),
                                                c.metric, c.key != c.metric, c.key))


def primary(task: str, cols: list[HeaderCell], rows: list[dict]) -> str | None:
    """The value a task's overview shows: its first metric's own value that some row has (an
    offline run may lack a metric's model, e.g. CLAP: then the next metric)."""
    t = TASKS.get(task)
    names = [m for m, _ in t.metrics] + [m for m, _ in t.set_metrics] if t else []
    keys = [c.key for c in cols]
    for name in names + keys:
        if name in keys and any(r["values"].get(name) is not None and r["values"][name].value is not None
                                for r in rows):
            return name
    return keys[0] if keys else None


def ranked(rows: list[dict], key: str | None, cols: list[HeaderCell]) -> list[dict]:
    """A task's rows best first by `key` in its column's direction, missing values last, ties
    (and keys without a direction) by system name: the order of every format's table."""
    direction = next((c.direction for c in cols if c.key == key), None)

    def order(r):
        cell = r["values"].get(key) if key else None
        v = cell.value if cell is not None else None
        if v is None:
            return (1, 0.0, r["system"])
        return (0, -v if direction == "higher" else v if direction == "lower" else 0.0, r["system"])

    return sorted(rows, key=order)
