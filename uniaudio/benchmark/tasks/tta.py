"""Text-to-audio: a caption -> sound.
The task, its demo test set and what makes the demo set."""

from __future__ import annotations

from ...manifest import Record
from .base import DemoSuite, Task, metric, register


def demo(s: DemoSuite) -> list[Record]:
    """The evaluation clips of the demo AudioCaps, prompted by their captions."""
    return s.sounds


TASK = register(Task("tta", "audio", (metric("clap"), metric("kl")),
                     "caption -> sound (CLAP and KL per item, FAD and FAD-inf over the set)",
                     {"ref_text": "caption", "ref_audio": "path"}, input="caption", set_metrics=(metric("fad"),),
                     systems=("shuffled", "ground-truth"), demo=demo))
