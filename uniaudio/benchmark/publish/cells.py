"""Leaderboard cells, as HELM has them: a `HeaderCell` holds a column's key, metric, direction and
unit once; a `Cell` holds one value with its display text, 95% interval (and its display and
method) and failures, filled once by collect.py. The writers (html.py, tables.py) only render
them; `to_json` turns a board holding them into leaderboard.json (schema uniaudio.leaderboard/1,
where each value also repeats its column's direction)."""

from __future__ import annotations

from dataclasses import dataclass, field


def fmt(value: float | None, unit: str = "") -> str:
    """Display text of a value: "—" when missing, a percentage for values declared in "%" (error
    rates, accuracies: stored as fractions), else 3 decimals (4 significant digits from 1000)."""
    if value is None:
        return "—"
    if unit == "%":
        return f"{100 * value:.2f}%"
    return f"{value:.3f}" if abs(value) < 1000 else f"{value:.4g}"


@dataclass(frozen=True)
class HeaderCell:
    key: str  # the value's name (wer, wer_utt_mean, dnsmos_ovrl)
    metric: str  # the metric that reports it
    direction: str | None  # "higher" / "lower" is better, None: a measurement, not sortable by quality
    unit: str = ""  # from the metric's declaration (`Metric.values`)

    @classmethod
    def of(cls, key: str, metric: str) -> "HeaderCell":
        """The column of a value, its direction and unit from the metric that declares it."""
        from ..metrics import declared

        v = declared(key)
        return cls(key, metric, v.direction if v else None, v.unit if v else "")

    @property
    def arrow(self) -> str:
        return {"higher": " ↑", "lower": " ↓"}.get(self.direction, "")

    def to_json(self) -> dict:
        return {"key": self.key, "metric": self.metric, "direction": self.direction}


@dataclass
class Cell:
    column: HeaderCell
    value: float | None
    ci95: list[float] | None = None
    method: str | None = None  # how the interval was made
    n: int | None = None  # items behind the value
    failed: int | None = None  # items the metric could not score
    failure_reasons: dict = field(default_factory=dict)
    error: str | None = None  # a set-level metric that failed as a whole
    seeds: dict | None = None  # {n, mean, std, per_seed} across the runs of a sampling system (--seeds)
    display: str = field(init=False)
    ci_display: str | None = field(init=False)
    seeds_display: str | None = field(init=False)

    def __post_init__(self):
        unit = self.column.unit
        self.display = fmt(self.value, unit)
        self.ci_display = f"[{fmt(self.ci95[0], unit)}, {fmt(self.ci95[1], unit)}]" if self.ci95 else None
        self.seeds_display = (f"{fmt(self.seeds['mean'], unit)} ± {fmt(self.seeds['std'], unit)} over "
                              f"{self.seeds['n']} seeds") if self.seeds else None

    def to_json(self) -> dict:
        out = {"metric": self.column.metric, "value": self.value, "direction": self.column.direction,
               "ci95": self.ci95, "n": self.n, "method": self.method, "failed": self.failed,
               "failure_reasons": self.failure_reasons}
        if self.error is not None:
            out["error"] = self.error
        if self.seeds is not None:
            out["seeds"] = self.seeds
        return out


def to_json(obj):
    """A board (dicts and lists holding cells) as plain JSON data."""
    if isinstance(obj, (Cell, HeaderCell)):
        return obj.to_json()
    if isinstance(obj, dict):
        return {k: to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json(v) for v in obj]
    return obj
