"""Benchmark commands: run, mmlu (also the `benchmark` script)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ._common import CONTEXT, Group, Location, debug_option


@click.group(cls=Group, context_settings=CONTEXT)  # also the entry point of the `benchmark` script
@debug_option
def benchmark() -> None:
    """Score systems on tasks and publish leaderboards (`benchmark run --task all`)."""


@benchmark.command("tasks")
def benchmark_tasks() -> None:
    """The registered tasks: what each maps to what, its metrics and built-in systems (baseline first)."""
    from ..benchmark.tasks import TASKS

    for t in TASKS.values():
        metrics = ", ".join(m for m, _ in (*t.metrics, *t.set_metrics))
        click.echo(f"{t.name}: {t.description}\n  metrics: {metrics}\n  systems: {', '.join(t.systems)}")


@benchmark.command("protocols")
def benchmark_protocols() -> None:
    """The protocol presets `benchmark run --protocol` takes: what each sets and where it comes from."""
    from ..benchmark.protocols import PROTOCOLS

    for p in PROTOCOLS.values():
        opts = "; ".join(f"{m}: {', '.join(f'{k}={v}' for k, v in o.items())}" for m, o in p.metric_options.items())
        click.echo(f"{p.name}{'' if p.paper_setting else ' (not a paper setting)'}: {p.description}\n"
                   f"  source: {p.source}" + (f"\n  sets: {opts}" if opts else ""))


@benchmark.command("run")
@click.option("--task", "task", default="all", show_default=True,
              help="Task names, comma-separated (`benchmark tasks` lists them), or all.")
@click.option("--system", default=None, help="Outputs folder (DIR/{task}/{id}.wav|txt), a built-in (ground-truth, "
              "whisper-tiny, espeak, passthrough, shuffled, chance-lm, codec:TOKENIZER, lm:MODEL, lm-ckpt:CHECKPOINT) "
              "or pkg.module:Class. "
              "Default: every built-in system that applies, then leaderboards.")
@click.option("--suite", default="demo", show_default=True,
              help="'demo' (built offline), a suite folder (`benchmark suite build`), a folder of {task}.parquet "
                   "or an s3:// prefix.")
@click.option("--data-root", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Where suites are built/cached (default: $UNIAUDIO_BENCHMARK_DATA or ~/.cache/uniaudio/benchmark).")
@click.option("--out", default="benchmark-results", show_default=True, type=Location(),
              help="Results folder or s3:// prefix: results/{task}/{system}/ (items.jsonl, aggregate.json) and, "
                   "without --system, leaderboards/. A prefix is worked on in a local copy (~/.cache/uniaudio/remote) "
                   "that is uploaded after each task.")
@click.option("--resume", is_flag=True, help="Skip items already scored in OUT on the same test set (a changed test "
              "set is scored again).")
@click.option("--metric-option", "metric_opts", multiple=True, metavar="METRIC.KEY=VALUE",
              help="e.g. wer.asr_backend=openai-whisper wer.asr_model=large-v3, sim.backend=wavlm (repeatable).")
@click.option("--publish", "publish_to", default=None,
              help="Also publish leaderboards here, a folder or an s3:// prefix (default without --system: "
                   "OUT/leaderboards).")
@click.option("--date", default=None, help="Pin the leaderboards' generation date (YYYY-MM-DD).")
@click.option("--protocol", default=None, metavar="PRESET",
              help="A publication's metric settings: offline-defaults, open-asr-leaderboard, seed-tts-eval, lm-eval "
                   "(default: the suite's, from its suite.json, else offline-defaults; --metric-option overrides).")
@click.option("--system-option", "system_opts", multiple=True, metavar="KEY=VALUE",
              help="Options of the system: lm-ckpt: takes shots=K (K solved items of the test set before each item, "
                   "in-context), temperature, top_k, top_p (repeatable).")
@click.option("--seeds", default=1, show_default=True, type=click.IntRange(min=1),
              help="Run a system that samples (lm-ckpt:, adapters with `stochastic = True`) once per seed: the row "
                   "is seed 0, the mean and spread across seeds are shown beside its interval.")
def benchmark_run(task: str, system: str | None, suite: str, data_root: Path | None, out: str, resume: bool,
                  metric_opts: tuple[str, ...], publish_to: str | None, date: str | None,
                  protocol: str | None, seeds: int, system_opts: tuple[str, ...]) -> None:
    """Score a system on tasks: per-utterance JSONL + aggregate JSON with metric cards. Without
    --system: every built-in system that applies to each task (baselines, floors, ceilings),
    then the leaderboards in OUT/leaderboards."""
    import math

    from ..benchmark import require_bench

    require_bench("benchmark run")
    from ..benchmark.runner import run
    from ..benchmark.tasks import TASKS

    names = None if task == "all" else [t.strip() for t in task.split(",")]  # all: the suite's tasks
    bad = [n for n in names or () if n not in TASKS]
    if bad:
        raise click.BadParameter(f"unknown task(s) {bad}; known: {', '.join(TASKS)}, all", param_hint="--task")
    from ..config import yaml_load

    options: dict[str, dict] = {}
    for opt in metric_opts:
        lhs, sep, val = opt.partition("=")
        metric, dot, key = lhs.partition(".")
        if not sep or not dot:
            raise click.BadParameter(f"{opt!r}: expected METRIC.KEY=VALUE", param_hint="--metric-option")
        options.setdefault(metric, {})[key] = yaml_load(val)
    sys_options = {}
    for opt in system_opts:
        key, sep, val = opt.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{opt!r}: expected KEY=VALUE", param_hint="--system-option")
        sys_options[key] = yaml_load(val)
    if sys_options and not system:
        raise click.BadParameter("system options need a --system", param_hint="--system-option")
    from .. import storage
    from ..mirror import Mirror

    remote = Mirror(out).pull() if storage.is_uri(out) else None  # the store's results: --resume and publish see them
    work = remote.local if remote else Path(out)
    try:
        results = run(names, system, suite, data_root, work, resume=resume, metric_options=options,
                      all_builtins=system is None, after_task=remote.push if remote else None, protocol=protocol,
                      seeds=seeds, system_options=sys_options)
    except (ValueError, FileNotFoundError, RuntimeError, KeyError, TypeError) as e:
        raise click.ClickException(str(e)) from None
    tw = max([len(r["task"]) for r in results] + [6]) + 2  # task column: the longest name, then a gap
    click.echo(f"{'task':{tw}}{'system':18}{'metric':34}{'value':>10}{'failed':>8}")
    for r in results:
        for name, m in r["metrics"].items():
            failed = m.get("items_failed", m.get("items_missing", 0))
            for key, v in m["value"].items():
                if key.endswith(("_errors", "_ref_words", "_ref_characters", "_frames", "_cached")) or \
                        isinstance(v, (str, dict, list, bool)):
                    continue
                shown = "NaN" if isinstance(v, float) and math.isnan(v) else f"{v:.4f}"
                click.echo(f"{r['task']:{tw}}{r['system'][:17]:18}{key:34}{shown:>10}{failed:>8}")
            if m.get("error"):
                click.echo(f"{'':{tw + 18}}{name}: {m['error'][:200]}")
    click.echo(f"results: {storage.join(out, 'results')}")
    if system is None or publish_to:
        from ..benchmark.publish import PublishError, publish

        dest = publish_to or storage.join(out, "leaderboards")
        dest = dest if storage.is_uri(dest) else Path(dest)
        try:
            res = publish([work], dest, date=date, names=[out] if remote else None)
        except PublishError as e:
            raise click.ClickException(f"{e}\n(the results are in {storage.join(out, 'results')}; `benchmark "
                                       f"publish {work} --out DIR` publishes them elsewhere)") from None
        click.echo(f"leaderboards: {storage.join(str(dest), 'index.html')} ({len(res['files'])} files)")


@benchmark.command("publish")
@click.argument("results", nargs=-1, type=Location(exists=True))
@click.option("--out", default=None,
              help="Report folder, or an object-storage prefix (s3://bucket/leaderboards) (default: "
                   "RESULTS/leaderboards of the first results folder, as `benchmark run` writes it). Built beside it "
                   "and swapped in when complete (on object storage: uploaded, its marker last).")
@click.option("--date", default=None, help="Pin the generation date (YYYY-MM-DD) for byte-identical reruns.")
@click.option("--force", is_flag=True, help="Replace a report of other results (or a folder of other files) at --out.")
@click.option("--reported", "reported_file", default=None,
              help="A reported-numbers YAML (system, suite, values, source): shown beside measured rows of the same "
                   "suite, marked and cited. `cited` = the figures uniaudio ships (benchmark/data/reported.yaml).")
def benchmark_publish(results: tuple[str, ...], out: str | None, date: str | None, force: bool,
                      reported_file: str | None) -> None:
    """Leaderboards from `benchmark run` outputs (default: ./benchmark-results): index.html, a page per
    task and per (task, system), leaderboard.json (+ schema), .csv and .md."""
    from ..benchmark import require_bench

    require_bench("benchmark publish")
    from ..benchmark.publish import PublishError, publish

    from .. import storage
    from ..mirror import Mirror

    given = list(results) or ["benchmark-results"]
    if not results and not Path(given[0]).is_dir():
        raise click.ClickException("no ./benchmark-results here: give the `benchmark run --out` folder(s) to publish")
    # results in object storage: read from a local copy, recorded under their URIs
    sources = [Mirror(r).pull().local if storage.is_uri(r) else Path(r) for r in given]
    remote = any(storage.is_uri(r) for r in given)
    out = out or storage.join(given[0], "leaderboards")
    out = out if storage.is_uri(out) else Path(out)
    from ..benchmark.publish.reported import SHIPPED, ReportedError, load

    try:
        reported = load(SHIPPED if reported_file == "cited" else reported_file) if reported_file else None
    except (ReportedError, OSError) as e:
        raise click.ClickException(str(e)) from None
    try:
        res = publish(sources, out, date=date, force=force, reported=reported,
                      names=[r if storage.is_uri(r) else str(Path(r).resolve()) for r in given] if remote else None)
    except PublishError as e:
        raise click.ClickException(str(e)) from None
    board = res["board"]
    for x in board["refused"]:
        click.echo(f"REFUSED {x['path']}: {x['reason']}", err=True)
    n_rows = sum(len(t["rows"]) for t in board["tasks"])
    if reported is not None:
        shown = sum(len(t.get("reported", [])) for t in board["tasks"])
        hidden = sum(t.get("reported_not_shown", 0) for t in board["tasks"])
        click.echo(f"{shown} reported row(s) beside measured rows of their suite"
                   + (f"; {hidden} on suites not measured here (not shown)" if hidden else ""))
    index = storage.join(out, "index.html") if isinstance(out, str) else out / "index.html"
    click.echo(f"{n_rows} results in {len(board['tasks'])} tasks -> {index} ({len(res['files'])} files)")


@benchmark.command("mmlu")
@click.option("--data", default=None, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="MMLU root with data/dev/*_dev.csv and data/test/*_test.csv (default: the packaged 15-question "
                   "demo set in MMLU's layout, which is not MMLU).")
@click.option("--model", required=True, help="transformers causal LM: local dir, $UNIAUDIO_MODELS name or HF id; or "
              "chance-lm (a seeded random tiny Llama, built offline: the chance floor).")
@click.option("--subject", "subjects", multiple=True, help="Only these subjects (repeatable).")
@click.option("--shots", default=5, show_default=True)
@click.option("--limit", default=None, type=int, help="At most this many test questions per subject.")
@click.option("--out", default=None, type=click.Path(dir_okay=False, path_type=Path), help="Write results JSON here.")
@click.option("--max-length", default=None, type=click.IntRange(min=2),
              help="Context window in tokens (default: the model config's, as lm-eval).")
@click.option("--softmax-dtype", default=None, type=click.Choice(["float32", "float64", "bfloat16", "float16"]),
              help="dtype of the log-softmax (default: the model's own, as lm-eval).")
@click.option("--add-bos-token/--no-add-bos-token", default=None,
              help="Always / never prepend BOS (default: lm-eval 0.4.13's rule, the tokenizer's own default; "
                   "--no-add-bos-token is the rule of lm-eval before 0.4.13 for non-Gemma models).")
def benchmark_mmlu(data: Path | None, model: str, subjects: tuple[str, ...], shots: int, limit: int | None,
                   out: Path | None, max_length: int | None, softmax_dtype: str | None, add_bos_token: bool | None) -> None:
    """MMLU accuracy exactly as lm-eval-harness scores it (prompt, encoding, truncation:
    see uniaudio/benchmark/tasks/mmlu.py); argmax log-likelihood of " A".." D". Offline try-out:
    `benchmark mmlu --model chance-lm` (the packaged demo questions, a random tiny model)."""
    from ..benchmark.tasks import mmlu
    from ..benchmark.systems import ChanceLM
    from ..models import ModelNotFound

    if data is None:
        click.echo(f"data: the packaged demo set ({mmlu.DEMO}): 15 questions in MMLU's layout, not MMLU", err=True)
    try:
        ds = mmlu.load(data or mmlu.DEMO, list(subjects) or None)
        objects = ChanceLM.objects() if model == ChanceLM.name else None  # a built-in name is never a hub id
        lm = mmlu.HFCausalLM(model, objects=objects, max_length=max_length, softmax_dtype=softmax_dtype,
                             add_bos_token=add_bos_token)
        res = mmlu.evaluate(lm, ds, shots=shots, limit=limit)
    except (FileNotFoundError, mmlu.MMLUFormatError, ModelNotFound) as e:
        raise click.ClickException(str(e)) from None
    res["model"] = model
    res["scoring"] = lm.settings()
    res["n_parameters"] = sum(p.numel() for p in lm.model.parameters())  # tiny test models show as such
    for subject, r in res["per_subject"].items():
        click.echo(f"{subject:40}{r['accuracy']:8.4f}{r['questions']:6d}")
    click.echo(f"{'micro average':40}{res['accuracy']:8.4f}{res['questions']:6d}")
    click.echo(f"model {model} ({res['n_parameters']:,} parameters)")
    if out:
        out.write_text(json.dumps(res, indent=2))


from .suite import suite  # noqa: E402  (`benchmark suite ...`: its own module)

benchmark.add_command(suite)
