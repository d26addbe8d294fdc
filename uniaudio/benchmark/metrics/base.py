"""Metric interface, registry and metric cards.

A metric scores a batch of `Sample`s and returns, per sample, a dict of values or an
exception; the runner turns exceptions into NaN plus the error text. A metric never
returns a made-up number for an input it cannot score."""

from __future__ import annotations

import importlib.metadata
import math
from dataclasses import dataclass, field

import numpy as np

from ...files import sha256_tree
from ...registry import Registry

SR = 16000  # every audio metric here works at 16 kHz unless its card says otherwise


class MetricError(ValueError):
    """An input a metric cannot score; the message is the recorded reason."""


@dataclass
class Sample:
    id: str
    ref_text: str | None = None
    hyp_text: str | None = None
    ref_audio: np.ndarray | None = None
    hyp_audio: np.ndarray | None = None
    prompt_audio: np.ndarray | None = None
    group: str | None = None  # a per-item group (the MMLU subject) for per-group aggregates
    attributes: dict | None = None  # what an instruction asked of the output (instruct_tts: pitch, rate)
    notes: list | None = None  # the score (svs): [{"lyric", "midi", "seconds"}, ...]
    exclude_span: list | None = None  # [start, end] s of the reference a metric leaves out (speech_edit: the edit)
    errors: dict[str, str] = field(default_factory=dict)  # input name -> why it is missing
    # source files, for metrics that need another rate than SR (e.g. CLAP at 48 kHz)
    paths: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Value:
    """What a metric's value means: which side is better ("higher", "lower", or None for a
    measurement shown beside the scores) and its unit ("%": a fraction shown as a percentage)."""
    direction: str | None
    unit: str = ""


class Metric:
    name = ""
    needs: tuple[str, ...] = ()  # sample fields this metric reads
    # every value it reports, by name: a key is covered by its longest declared name that is the
    # key itself or a prefix followed by "_" (wer covers wer_utt_mean). Registering a metric that
    # declares none fails (at import of its module); publish refuses a value no metric declares.
    values: dict[str, Value] = {}
    aggregation = "mean over items with a finite value"

    def score(self, batch: list[Sample]) -> list[dict[str, float] | Exception]:
        raise NotImplementedError

    def card(self) -> dict:
        return {"name": self.name, "aggregation": self.aggregation, "sample_rate": SR}

    def aggregate(self, rows: list[dict]) -> dict[str, float]:
        """rows: per-item value dicts (NaN for failures). Default: mean of each key."""
        keys = sorted({k for r in rows for k in r})
        out = {}
        for k in keys:
            vals = [r[k] for r in rows if k in r and isinstance(r[k], (int, float)) and math.isfinite(r[k])]
            out[k] = float(np.mean(vals)) if vals else float("nan")
        return out


REGISTRY: Registry[Metric] = Registry("metric")
get = REGISTRY.get

# Set-level metrics (FAD, captioning BLEU/CIDEr): one value for a whole test set.
# Interface: `name`, `values`, `card()`, `score_set(rows, sys_dir, cache_dir) -> dict`: rows are
# all test items; an item whose output is missing from sys_dir is left out (and counted by the runner).
SET_METRICS: Registry = Registry("set-level metric")

DECLARED: dict[str, Value] = {}  # every registered metric's values, by name


def _declare(cls) -> None:
    values = getattr(cls, "values", None)
    if not values or not all(isinstance(v, Value) for v in values.values()):
        raise TypeError(f"metric {cls.__name__} declares no values: set `values = {{name: Value(direction, unit)}}` "
                        "for every value it reports (direction: higher, lower or None)")
    for key, v in values.items():
        if v.direction not in ("higher", "lower", None):
            raise TypeError(f"metric {cls.__name__} value {key!r}: direction {v.direction!r} is not higher, lower "
                            "or None")
        if key in DECLARED and DECLARED[key] != v:
            raise TypeError(f"metric {cls.__name__} declares {key!r} as {v}, another metric as {DECLARED[key]}")
        DECLARED[key] = v


def register(name: str, registry: Registry = REGISTRY):
    """Class decorator: register a metric under `name` (in SET_METRICS for set-level ones) after
    checking that it declares its values."""
    def deco(cls):
        _declare(cls)
        return registry.register(name)(cls)
    return deco


def declared(key: str) -> Value | None:
    """The declaration that covers a value key (its longest declared prefix), or None."""
    best = None
    for name in DECLARED:
        if (key == name or key.startswith(name + "_")) and (best is None or len(name) > len(best)):
            best = name
    return DECLARED[best] if best is not None else None


def sha256_of(path: str) -> str:
    """Checksum of a weights file or of all files in a weights folder."""
    return sha256_tree(path)


def versions(*packages: str) -> dict[str, str]:
    out = {}
    for p in packages:
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


def per_item(batch: list[Sample], fn) -> list[dict[str, float] | Exception]:
    """`fn(sample)` for each sample; an exception is that item's result (the runner records it
    as NaN plus the error), so one bad item never costs the batch."""
    out = []
    for s in batch:
        try:
            out.append(fn(s))
        except Exception as e:  # recorded per item by the runner
            out.append(e)
    return out


def align(ref: np.ndarray, hyp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Truncate both to the shorter length (the rule every intrusive metric here uses)."""
    n = min(len(ref), len(hyp))
    return ref[:n], hyp[:n]
