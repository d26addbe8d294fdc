"""Sequence packing: best-fit decreasing inside a bounded buffer.

Sequences are never cut. Each buffered batch is placed longest first into the open bin
whose free space fits it most tightly (a new bin when none does); a bin is closed when it is
full to `close_at`, and when more than `max_open` bins are open the fullest are closed, so
memory holds at most `buffer` sequences and `max_open` contexts. Short *filler* sequences
(text-only) are kept aside and poured into each bin's gap as it closes, largest that fits
first (UniAudio 2.0 tops batches up with text-only data); fillers left at the end form bins of
their own only when those bins come out at least `filler_fill` full, the rest are returned as
unused (counted by the caller).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Bin:
    context: int
    items: list[tuple[int, Any]] = field(default_factory=list)  # (length, payload) in placement order
    used: int = 0

    @property
    def free(self) -> int:
        return self.context - self.used

    def put(self, length: int, payload: Any) -> None:
        self.items.append((length, payload))
        self.used += length


class Packer:
    def __init__(self, context: int, *, buffer: int = 1024, max_open: int = 64, close_at: float = 0.995,
                 filler_fill: float = 0.9):
        if context < 1 or buffer < 1 or max_open < 1:
            raise ValueError("context, buffer and max_open must be >= 1")
        self.context, self.buffer, self.max_open = context, buffer, max_open
        self.close_at, self.filler_fill = close_at, filler_fill
        self._pending: list[tuple[int, Any]] = []
        self._fillers: list[tuple[int, int, Any]] = []  # sorted (length, arrival, payload); bounded by the shard
        self._arrival = 0
        self._open: list[Bin] = []

    def add(self, length: int, payload: Any, *, filler: bool = False) -> list[Bin]:
        """Queue a sequence of `length` rows (1 <= length <= context); returns bins closed now."""
        if not 1 <= length <= self.context:
            raise ValueError(f"sequence of {length} rows does not fit a context of {self.context}")
        if filler:
            bisect.insort(self._fillers, (length, self._arrival, payload), key=lambda x: x[:2])
            self._arrival += 1
            return []
        self._pending.append((length, payload))
        return self._place() if len(self._pending) >= self.buffer else []

    def finish(self) -> tuple[list[Bin], list[Any]]:
        """Place everything left; returns (the remaining bins, payloads of unused fillers)."""
        closed = self._place(final=True)
        for b in sorted(self._open, key=lambda b: -b.used):  # the fullest first: their gaps are the smallest
            self._top_up(b)
        closed += self._open
        self._open = []
        rest = [(length, payload) for length, _, payload in self._fillers]
        self._fillers = []
        has_main = bool(closed)
        unused: list[Any] = []
        for b in self._pack_new(rest):  # a text-only corpus keeps them all
            if not has_main or b.used >= self.filler_fill * self.context:
                closed.append(b)
            else:
                unused += [p for _, p in b.items]
        return closed, unused

    # --- internals -------------------------------------------------------------------
    def _top_up(self, b: Bin) -> None:
        """Pour fillers into a bin's gap, the largest that still fits each time."""
        while self._fillers and b.free >= self._fillers[0][0]:
            i = bisect.bisect_right(self._fillers, b.free, key=lambda x: x[0]) - 1
            length, _, payload = self._fillers.pop(i)
            b.put(length, payload)

    def _best_fit(self, length: int) -> Bin | None:
        best = None
        for b in self._open:
            if b.free >= length and (best is None or b.free < best.free):
                best = b
        return best

    def _pack_new(self, items: list[tuple[int, Any]]) -> list[Bin]:
        bins: list[Bin] = []
        for length, payload in sorted(items, key=lambda x: -x[0]):
            fits = [b for b in bins if b.free >= length]
            if fits:
                min(fits, key=lambda b: b.free).put(length, payload)
            else:
                b = Bin(self.context)
                b.put(length, payload)
                bins.append(b)
        return bins

    def _place(self, final: bool = False) -> list[Bin]:
        for length, payload in sorted(self._pending, key=lambda x: -x[0]):
            b = self._best_fit(length)
            if b is None:
                b = Bin(self.context)
                self._open.append(b)
            b.put(length, payload)
        self._pending = []
        closed = [b for b in self._open if b.used >= self.close_at * self.context]
        self._open = [b for b in self._open if b.used < self.close_at * self.context]
        if len(self._open) > self.max_open and not final:
            self._open.sort(key=lambda b: b.used)
            cut = len(self._open) - self.max_open
            closed += self._open[-cut:]
            self._open = self._open[:-cut]
        for b in closed:
            self._top_up(b)
        return closed


def padding_fill_sums(lengths: list[int], batch: int = 8) -> tuple[int, int]:
    """What a plain padding batcher makes of the same sequences: batches of `batch` sequences
    in arrival order, each padded to its longest. Returns (useful rows, padded rows)."""
    useful = padded = 0
    for i in range(0, len(lengths), batch):
        chunk = lengths[i:i + batch]
        useful += sum(chunk)
        padded += max(chunk) * len(chunk)
    return useful, padded
