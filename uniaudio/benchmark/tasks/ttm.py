"""Text-to-music: a music description -> music.
The task, its demo test set and what makes the demo set."""

from __future__ import annotations

from ...manifest import Record
from .base import DemoSuite, Task, metric, register


def demo(s: DemoSuite) -> list[Record]:
    """The demo MusicCaps clips, prompted by their descriptions."""
    from ...pipeline.recipes import records

    return list(records("musiccaps", s.corpora / "musiccaps"))


TASK = register(Task("ttm", "audio", (metric("clap"), metric("kl")), "music description -> music (CLAP, KL, FAD)",
                     {"ref_text": "caption", "ref_audio": "path"}, input="caption", set_metrics=(metric("fad"),),
                     systems=("shuffled", "ground-truth"), demo=demo))
