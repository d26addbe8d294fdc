"""Run tasks for a system: produce outputs if needed, decode each audio once, score every
metric in batches, write per-utterance JSONL (resumable) and an aggregate JSON with a
metric card per metric."""

from __future__ import annotations

import json
import math
import platform
import time
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from .. import __version__, audio, manifest
from ..files import atomic_write_text, safe_name, sha256_file
from ..models import ModelNotFound
from . import metrics as M
from . import protocols, provenance
from .suites import card_line, read_card
from . import systems as S
from .results import check_aggregate, check_item
from .tasks import TASKS, Task, output_file, row_value

NAN = float("nan")


def _load_audio(path: str | None, what: str, sample) -> object:
    if path is None:
        sample.errors[what] = "missing: no path"
        return None
    try:
        return audio.load(path, M.base.SR)[0]
    except audio.AudioError as e:
        sample.errors[what] = f"{e.reason}: {e.detail}"
        return None


def _load_text(path: Path, what: str, sample) -> str | None:
    try:
        return path.read_bytes().decode("utf-8").strip()
    except FileNotFoundError:
        sample.errors[what] = f"missing: {path.name}"
    except UnicodeDecodeError as e:
        sample.errors[what] = f"not valid UTF-8 at byte {e.start}"
    return None


def make_sample(task: Task, row: dict, outdir: Path, failed: str | None = None) -> M.Sample:
    """Decode everything one item needs, once, for all metrics. `failed`: why the system
    could not produce this item (its output then counts as missing, with that reason)."""
    s = M.Sample(id=row["id"])
    for field, how in task.refs.items():
        value = row_value(row, how)
        if field.endswith("audio"):
            setattr(s, field, _load_audio(value, field, s))
            if value:
                s.paths[field] = value
        else:
            setattr(s, field, value)
    hyp = "hyp_text" if task.output == "text" else "hyp_audio"
    p = output_file(outdir, row["id"], ".txt" if task.output == "text" else ".wav")
    if failed and not p.exists():
        s.errors[hyp] = f"system_failed: {failed}"
    elif task.output == "text":
        s.hyp_text = _load_text(p, "hyp_text", s)
    else:
        s.hyp_audio = _load_audio(str(p) if p.exists() else None, "hyp_audio", s)
        s.paths["hyp_audio"] = str(p)
        if not p.exists():
            s.errors["hyp_audio"] = f"missing: {p.name}"
    return s


def _details(outdir: Path, uid: str) -> dict | None:
    """A system's per-item record beside a text output (`{name}.json`: e.g. MMLU's four
    log-likelihoods and the pick, as lm-eval keeps per sample), kept in items.jsonl."""
    p = output_file(outdir, uid, ".json")
    if not p.is_file():
        return None
    try:
        obj = json.loads(p.read_text())
    except (ValueError, UnicodeDecodeError):
        return {"unreadable": p.name}
    return obj if isinstance(obj, dict) else {"value": obj}


def produce(system: S.System, task: Task, rows: list[dict], outdir: Path) -> dict[str, str]:
    """Let the system write its outputs; returns id -> reason for the items it could not
    produce. A system that raises is retried one item at a time, so one bad item fails
    alone and the rest are scored."""
    system.__dict__.setdefault("failures", {})
    try:
        system.produce(task, rows, outdir)
    except Exception as e:  # noqa: BLE001 - adapters are other people's code
        ext = ".txt" if task.output == "text" else ".wav"
        if len(rows) == 1:
            system.failures[rows[0]["id"]] = f"{type(e).__name__}: {e}"
        else:
            for r in rows:
                if not output_file(outdir, r["id"], ext).exists() and r["id"] not in system.failures:
                    produce(system, task, [r], outdir)
    return {r["id"]: system.failures[r["id"]] for r in rows if r["id"] in system.failures}


class MetricPool:
    """One instance per (metric, options) for the whole run: models load once.
    `overrides` ({"wer": {"asr_backend": "openai-whisper"}}) apply to every task's metric;
    keyed by the metric's registry name or its result name (e.g. "estoi")."""

    def __init__(self, overrides: dict[str, dict] | None = None, protocol: dict | None = None):
        self._m: dict[tuple, M.Metric] = {}
        self.overrides = overrides or {}
        self.protocol = protocol  # the preset these options come from (protocols.resolve), for the results

    def get(self, name: str, kw: tuple) -> M.Metric:
        """The metric, or an Unavailable stand-in when its model cannot be loaded (offline,
        missing weights): every item then records NaN and that reason; the run goes on."""
        merged = dict(kw)
        merged.update(self.overrides.get(name, {}))
        if name == "stoi" and merged.get("extended"):
            merged.update(self.overrides.get("estoi", {}))
        kw = tuple(sorted(merged.items()))
        key = (name, kw)
        if key not in self._m:
            try:
                self._m[key] = M.get(name, **dict(kw))
            except (ModelNotFound, OSError, ImportError) as e:
                self._m[key] = Unavailable(name, f"{type(e).__name__}: {e}")
        return self._m[key]


class Unavailable(M.Metric):
    """Stands in for a metric whose model could not be loaded."""

    def __init__(self, name: str, reason: str):
        self.name, self.reason, self.needs = name, reason, ()

    def score(self, batch):
        return [RuntimeError(f"metric unavailable: {self.reason}") for _ in batch]

    def card(self):
        return dict(super().card(), unavailable=self.reason)


def _needs_met(metric: M.Metric, s: M.Sample) -> str | None:
    """None when the metric can run on s, else the reason it cannot."""
    for need in metric.needs:
        if need == "hyp_text" and s.hyp_text is None and s.hyp_audio is not None:
            continue  # WER/CER transcribe the audio
        if getattr(s, need) is None:
            alt = "hyp_audio" if need == "hyp_text" else need
            return s.errors.get(need) or s.errors.get(alt) or f"missing: {need}"
    return None


def _read_done(items_path: Path) -> set[str]:
    """Ids already scored. A run killed mid-write can leave a torn last line: it is dropped
    (that item is scored again), so a resume never loses or duplicates an item."""
    lines = items_path.read_text().splitlines()
    good = []
    for n, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            good.append(json.loads(line))
        except json.JSONDecodeError:
            if n != len(lines) - 1:
                raise RuntimeError(f"{items_path} line {n + 1} is corrupt (not the last line); "
                                   "remove the file to rescore") from None
            items_path.write_text("".join(json.dumps(g) + "\n" for g in good))
    return {g["id"] for g in good}


def run_task(task: Task, system: S.System, suite_dir: Path, out: Path, pool: MetricPool, *, resume: bool,
             batch_size: int = 16, progress: bool = True, overall: tqdm | None = None) -> dict:
    rows = manifest.read_rows(suite_dir / f"{task.name}.parquet")  # paths resolved against the suite folder
    sys_dir = out / "outputs" / safe_name(system.name) / task.name
    res_dir = out / "results" / task.name / safe_name(system.name)  # system names are untrusted too
    if not isinstance(system, S.Folder):
        sys_dir.mkdir(parents=True, exist_ok=True)
    res_dir.mkdir(parents=True, exist_ok=True)
    items_path = res_dir / "items.jsonl"
    test_sha = sha256_file(suite_dir / f"{task.name}.parquet")
    done = set()
    if resume and items_path.exists() and _scored_on(res_dir / "aggregate.json") not in (None, test_sha):
        _note(overall, f"{task.name}: the test set changed since {system.name} was scored: scoring again")
        items_path.unlink()
    if resume and items_path.exists():
        done = _read_done(items_path)
    elif items_path.exists():
        items_path.unlink()
    todo = [r for r in rows if r["id"] not in done]

    failures: dict[str, str] = {}
    if isinstance(system, S.Folder):
        sys_dir = system.path / task.name  # score the user's outputs in place
    else:
        card = system.card() if hasattr(system, "card") else {"name": system.name}  # adapters may lack one
        card = {k: v for k, v in card.items() if k not in getattr(system, "run_state", ())}
        _outputs_for(sys_dir, {"test_set_sha256": test_sha, "system_card": card})
        ext = ".txt" if task.output == "text" else ".wav"
        missing_outputs = [r for r in todo if not output_file(sys_dir, r["id"], ext).exists()]
        if missing_outputs:
            _note(overall, f"{task.name}: {system.name} producing {len(missing_outputs)} output(s)")
            if hasattr(system, "see_test_set"):  # in-context examples come from the whole set
                system.see_test_set(task, rows)
            failures = produce(system, task, missing_outputs, sys_dir)

    _note(overall, f"{task.name}: loading metrics {', '.join(n for n, _ in task.metrics)}")
    metrics = [pool.get(n, kw) for n, kw in task.metrics]
    if overall is not None:
        overall.update(len(rows) - len(todo))  # already scored (resume)
    bar = tqdm(total=len(todo), desc=f"{task.name}/{system.name}", unit="item", disable=not progress,
               leave=overall is None, position=1 if overall is not None else None)
    with open(items_path, "a") as f:
        for i in range(0, len(todo), batch_size):
            batch = [make_sample(task, r, sys_dir, failures.get(r["id"])) for r in todo[i:i + batch_size]]
            values = {s.id: {} for s in batch}
            errors = {s.id: {} for s in batch}
            for m in metrics:
                ready = []
                for s in batch:
                    why = _needs_met(m, s)
                    if why:
                        values[s.id][m.name] = NAN
                        errors[s.id][m.name] = why
                    else:
                        ready.append(s)
                if not ready:
                    continue
                for s, r in zip(ready, m.score(ready)):
                    if isinstance(r, Exception):
                        values[s.id][m.name] = NAN
                        errors[s.id][m.name] = f"{type(r).__name__}: {r}"
                    else:
                        values[s.id].update(r)
            for s in batch:
                item = {"id": s.id, "task": task.name, "system": system.name, "values": values[s.id],
                        "errors": errors[s.id]}
                if task.output == "text":  # what was compared, for per-item pages (lm-eval keeps samples)
                    item["hyp"], item["ref"] = s.hyp_text, s.ref_text
                elif s.ref_text is not None:  # the words or caption the audio should carry
                    item["ref"] = s.ref_text
                details = _details(sys_dir, s.id) if task.output == "text" else None
                if details is not None:
                    item["output"] = details
                check_item(item)  # the results schema (results.py), on write as on publish
                f.write(json.dumps(item) + "\n")
            f.flush()
            bar.update(len(batch))
            if overall is not None:
                overall.update(len(batch))
    bar.close()
    if task.set_metrics:
        _note(overall, f"{task.name}: set-level metrics {', '.join(n for n, _ in task.set_metrics)}")
    result = aggregate(task, system, items_path, metrics, res_dir / "aggregate.json", suite_dir, scored_now=len(todo),
                       protocol=pool.protocol)
    if task.set_metrics:
        result["metrics"].update(set_metrics(task, rows, sys_dir, pool, out / "cache"))
        save_aggregate(result, res_dir / "aggregate.json")
    return result


def _scored_on(aggregate: Path) -> str | None:
    """The sha256 of the test set an earlier run's aggregate.json was scored on (None: unknown)."""
    try:
        return json.loads(aggregate.read_text())["test_set"]["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _outputs_for(sys_dir: Path, made_for: dict) -> None:
    """A built-in system's outputs are reused by later runs only if they were made for the same
    test set by the same system (card): otherwise (a rebuilt suite, another checkpoint) they are
    removed first, so no stale output is ever scored as this run's."""
    stamp = sys_dir.with_name(f"{sys_dir.name}.made-for.json")  # beside the folder: it holds outputs only
    text = json.dumps(made_for, sort_keys=True, default=str)
    try:
        same = stamp.read_text() == text
    except OSError:
        same = not any(sys_dir.iterdir())
    if not same:
        for p in sys_dir.iterdir():
            if p.is_file() and p.suffix in (".wav", ".txt", ".json"):
                p.unlink()
        S.generation_log(sys_dir).unlink(missing_ok=True)
    stamp.write_text(text)


def set_metrics(task: Task, rows: list[dict], sys_dir: Path, pool: "MetricPool", cache_dir: Path) -> dict:
    """Set-level metrics over all items whose output exists (FAD, captioning scores). A
    failure records NaN and the reason; missing outputs are counted."""
    from .metrics import captioning, fad  # noqa: F401  (register the set-level metrics)
    from .metrics.base import SET_METRICS

    ext = ".txt" if task.output == "text" else ".wav"
    present = [r for r in rows if output_file(sys_dir, r["id"], ext).exists()]
    out = {}
    for name, kw in task.set_metrics:
        kw = {**dict(kw), **pool.overrides.get(name, {})}
        entry = {"items_missing": len(rows) - len(present), "items": len(present)}
        try:
            m = SET_METRICS.get(name, **kw)
            entry["card"] = m.card()
            entry["value"] = m.score_set(rows, sys_dir, cache_dir)
        except Exception as e:  # never a made-up number: NaN and why
            entry["value"] = {name: NAN}
            entry["error"] = f"{type(e).__name__}: {e}"
        out[name] = entry
    return out


def aggregate(task: Task, system: S.System, items_path: Path, metrics: list[M.Metric], dest: Path,
              suite_dir: Path, scored_now: int = 1, protocol: dict | None = None) -> dict:
    """aggregate.json from items.jsonl. A resume that scored nothing keeps the previous run's
    date, so republishing unchanged results gives the same bytes."""
    items = [json.loads(line) for line in items_path.read_text().splitlines() if line.strip()]
    system_card = system.card() if hasattr(system, "card") else {"name": system.name}  # adapters may lack one
    test_set = suite_dir / f"{task.name}.parquet"
    card = read_card(suite_dir)  # a built suite's name, version and counts ('N of M items' when some are missing)
    result = {"task": task.name, "system": system.name, "system_card": system_card, "suite": str(suite_dir),
              "suite_card": {"name": card["name"], "version": card["version"], "line": card_line(card),
                             "missing": card["missing"]["count"], "published_items": card.get("published_items")}
              if card else None,
              "protocol": protocol,
              "test_set": {"file": test_set.name, "sha256": sha256_file(test_set) if test_set.exists() else None,
                           "items": manifest.count(test_set) if test_set.exists() else None},
              "items": len(items),
              "metrics": {}, "run": {"uniaudio": __version__, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                     "host": platform.node(), "python": platform.python_version(),
                                     "machine": platform.machine(), **provenance.toolkit(),
                                     "device": provenance.device(), "libraries": provenance.libraries()}}
    if not scored_now and dest.exists():
        try:
            result["run"]["date"] = json.loads(dest.read_text())["run"]["date"]
        except (ValueError, KeyError):
            pass
    for m in metrics:
        rows = [it["values"] for it in items]
        failed = [it for it in items if m.name in it["errors"]]
        reasons = Counter(it["errors"][m.name].split(":")[0] for it in failed)
        value = m.aggregate([{k: v for k, v in r.items() if k == m.name or k.startswith(m.name + "_")} for r in rows])
        if len(value) > 1 and is_nan(value.get(m.name)):
            del value[m.name]  # only the failed items' marker (the metric's values have other names: f0_*)
        result["metrics"][m.name] = {
            "value": value,
            "items_scored": len(items) - len(failed),
            "items_failed": len(failed),
            "failure_reasons": dict(reasons),
            "card": m.card(),
        }
    save_aggregate(result, dest)
    return result


def save_aggregate(result: dict, dest: Path) -> None:
    """Validate and write an aggregate.json whole (a temporary sibling, then a rename)."""
    check_aggregate(result)
    atomic_write_text(dest, json.dumps(result, indent=2, default=float))


def run(task_names: list[str] | None, system_spec: str | None, suite: str, data_root: Path | None, out: Path, *,
        resume: bool = False, progress: bool = True, metric_options: dict[str, dict] | None = None,
        all_builtins: bool = False, after_task=None, protocol: str | None = None, seeds: int = 1,
        system_options: dict | None = None) -> list[dict]:
    """Score `system_spec` on each task (None: every task the suite has); with no system, each
    task's baseline, or with `all_builtins` every built-in system that applies (floors, ceilings,
    baselines).
    `after_task()` is called after each scored (task, system) (the CLI publishes an s3:// out).
    `protocol`: a preset of `protocols.PROTOCOLS` (default: the suite card's, else the offline
    defaults); `metric_options` override it and are recorded as such. `seeds`: a system that samples
    (`stochastic`) runs once per seed 0..seeds-1; seed 0's result is the row, the others go under
    OUT/seeds/seed-K/ and their spread into its aggregate (`seeds`). `system_options` go to the
    system (`lm-ckpt:` takes shots and its sampling settings)."""
    if seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {seeds}")
    if protocol is not None and protocol not in protocols.PROTOCOLS:  # before any suite is built
        raise ValueError(f"unknown protocol {protocol!r}; known: {', '.join(protocols.PROTOCOLS)}")
    from .suites import load as load_suite

    suite_dir = load_suite(suite, data_root, progress=progress, tasks=task_names)
    if task_names is None:  # `--task all`: every task the suite has a test set for
        task_names = [t for t in TASKS if (suite_dir / f"{t}.parquet").exists()]
    options, record = protocols.resolve(protocol, read_card(suite_dir), metric_options)
    pool = MetricPool(options, record)
    for name in task_names:
        if not (suite_dir / f"{name}.parquet").exists():
            raise FileNotFoundError(f"suite {suite_dir} has no test set for task {name!r}")
    plan = [(name, spec) for name in task_names
            for spec in ([system_spec] if system_spec else S.applicable(name) if all_builtins else [S.baseline(name)])]
    sizes = {name: manifest.count(suite_dir / f"{name}.parquet") for name in task_names}
    overall = tqdm(total=sum(sizes[n] for n, _ in plan), desc=f"benchmark ({len(plan)} runs)", unit="item",
                   disable=not progress, position=0) if progress and len(plan) > 1 else None
    results = []
    try:
        for k, (name, spec) in enumerate(plan):
            task = TASKS[name]
            if overall is not None:
                overall.set_description(f"benchmark: {name} {spec} ({k + 1}/{len(plan)})")
            system = S.load(spec, **(system_options or {}))
            if not S.serves(system, name):
                if progress:
                    say = overall.write if overall is not None else print
                    say(f"skip {name}: system {system.name!r} produces only {', '.join(S.served(system))}")
                if overall is not None:
                    overall.update(sizes[name])
                continue
            result = run_task(task, system, suite_dir, out, pool, resume=resume, progress=progress, overall=overall)
            if seeds > 1 and getattr(system, "stochastic", False):
                result = _with_seeds(result, task, system, suite_dir, out, pool, seeds, resume=resume,
                                     progress=progress)
            results.append(result)
            if after_task is not None:
                after_task()
    finally:
        if overall is not None:
            overall.close()
    return results


def _with_seeds(result: dict, task: Task, system: S.System, suite_dir: Path, out: Path, pool: MetricPool,
                seeds: int, *, resume: bool, progress: bool) -> dict:
    """Runs 1..seeds-1 of a sampling system (run 0 is `result`), each under OUT/seeds/seed-K/; the
    mean, standard deviation and per-seed values of every scalar metric value go into run 0's
    aggregate.json as `seeds`, beside the within-run intervals the leaderboard computes."""
    runs = [result]
    try:
        for k in range(1, seeds):
            system.run_seed = k
            runs.append(run_task(task, system, suite_dir, out / "seeds" / f"seed-{k}", pool, resume=resume,
                                 progress=progress))
    finally:
        system.run_seed = 0
    spread = {}
    for metric, entry in result["metrics"].items():
        for key, v in entry["value"].items():
            per = [r["metrics"].get(metric, {}).get("value", {}).get(key) for r in runs]
            if all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in per):
                mean = sum(per) / len(per)
                std = math.sqrt(sum((x - mean) ** 2 for x in per) / (len(per) - 1))
                spread[key] = {"mean": mean, "std": std, "per_seed": per}
    result["seeds"] = {"n": seeds, "folders": [f"seeds/seed-{k}" for k in range(1, seeds)], "values": spread}
    save_aggregate(result, out / "results" / task.name / safe_name(system.name) / "aggregate.json")
    return result


def _note(overall: tqdm | None, text: str) -> None:
    """A status line for the silent phases (model loads, output production) of a long run."""
    if overall is not None:
        overall.set_postfix_str(text[:60])


def is_nan(x) -> bool:
    return isinstance(x, float) and math.isnan(x)
