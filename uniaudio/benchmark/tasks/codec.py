"""Codec resynthesis: speech -> tokens -> speech.
The task, its demo test set and what makes the demo set."""

from __future__ import annotations

from ...manifest import Record
from .base import DemoSuite, Task, metric, register


def demo(s: DemoSuite) -> list[Record]:
    """The speech test utterances: each is its own reference."""
    return list(s.speech)


TASK = register(Task("codec", "audio", (metric("pesq"), metric("stoi"), metric("visqol"), metric("mel_distance")),
                     "speech -> tokens -> speech (resynthesis)", {"ref_audio": "path"},
                     systems=("codec:uniaudio-codec", "ground-truth", "passthrough"), demo=demo))
