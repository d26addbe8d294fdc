"""What every task module holds in common: the `Task` record, the registry (`TASKS`, in the
order leaderboards show tasks), `register`, and what a task's demo builder is handed (`DemoSuite`).

A task is defined in one place, its own module in this folder: what a system reads and writes,
the metrics that score it, the built-in systems a demo run scores on it (its baseline first),
and how its demo test set is made. The CLI's task lists, the demo suite, `--task all` and the
leaderboards all read the registry; metrics declare their own direction and unit
(`metrics.base.Metric.values`). Test sets are ordinary manifests (uniaudio.manifest);
task-specific inputs live in `extra`."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ...files import safe_name
from ...manifest import Record


def output_file(outdir: Path, uid: str, ext: str) -> Path:
    """Where a system's output for test item `uid` lives: `files.safe_name(uid)` + ext, so an
    untrusted id never names a path outside `outdir`."""
    return Path(outdir) / f"{safe_name(uid)}{ext}"


def row_value(row: dict, how: str):
    """A test row's field: "text", "path", or "extra:<key>" (extra is a JSON object)."""
    if how in ("text", "path", "caption"):
        return row[how]
    extra = row.get("extra")
    extra = json.loads(extra) if isinstance(extra, str) and extra else (extra or {})
    return extra.get(how.split(":", 1)[1])


@dataclass
class DemoSuite:
    """What a task's demo builder gets: the suite folder (its files go under it, named with
    `output_file`), the demo corpora and the seed. The speech test utterances are read once and
    shared by the tasks built on them."""
    root: Path
    corpora: Path
    seed: int = 0
    ljspeech_mini: Path | None = None  # real held-out speech for asr, when ../shared has it

    @functools.cached_property
    def speech(self) -> list[Record]:
        """The demo LibriSpeech test-clean utterances, by id."""
        from ...pipeline.recipes import records

        return sorted(records("librispeech", self.corpora / "LibriSpeech", split="test-clean"), key=lambda r: r.id)

    @functools.cached_property
    def by_speaker(self) -> dict[str, list[Record]]:
        out: dict[str, list[Record]] = {}
        for r in self.speech:
            out.setdefault(r.speaker, []).append(r)
        return out

    def other_speaker(self, k: int, r: Record) -> Record:
        """For the k-th test utterance r, an utterance of the next speaker (vc's target voice, tse's
        interferer)."""
        speakers = sorted(self.by_speaker)
        other = self.by_speaker[speakers[(speakers.index(r.speaker) + 1) % len(speakers)]]
        return other[k % len(other)]

    @functools.cached_property
    def sounds(self) -> list[Record]:
        """The evaluation (val and test) clips of the demo AudioCaps."""
        from ...pipeline.recipes import records

        return [r for r in records("audiocaps", self.corpora / "audiocaps") if r.split in ("val", "test")]


def metric(name: str, **kw) -> tuple[str, tuple]:
    """A metric of a task: (registry name, sorted options)."""
    return name, tuple(sorted(kw.items()))


@dataclass(frozen=True)
class Task:
    name: str
    output: str  # "audio" (outputs/{task}/{id}.wav) or "text" ({id}.txt)
    metrics: tuple[tuple[str, tuple], ...]  # (metric name, sorted kwargs items): `metric(...)`
    description: str
    # how a test row fills a Sample: sample field -> "text" | "caption" | "path" | "extra:<key>"
    refs: dict = field(default_factory=dict)
    # what a system reads: "path" (the row's audio), "text", or "extra:<key>"
    input: str = "path"
    # set-level metrics (one value for the whole test set), e.g. FAD
    set_metrics: tuple[tuple[str, tuple], ...] = ()
    # the built-in systems `benchmark run --task all` scores on it, its baseline first (what a
    # plain `benchmark run --task NAME` scores): floors, ceilings, baselines
    systems: tuple[str, ...] = ()
    # the demo test set: DemoSuite -> its records (None: the task has no demo set)
    demo: Callable[[DemoSuite], list[Record]] | None = field(default=None, compare=False)


TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    """Add a task to the registry (its name must be new; a task needs at least one system)."""
    if task.name in TASKS:
        raise ValueError(f"task {task.name!r} is registered twice")
    if not task.systems:
        raise ValueError(f"task {task.name!r} names no built-in system (its baseline first)")
    if task.output not in ("audio", "text"):
        raise ValueError(f"task {task.name!r}: output must be audio or text, got {task.output!r}")
    TASKS[task.name] = task
    return task
