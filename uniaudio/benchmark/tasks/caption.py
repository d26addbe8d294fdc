"""Audio captioning: audio -> a caption.
The task, its demo test set and what makes the demo set."""

from __future__ import annotations

from ...manifest import Record
from .base import DemoSuite, Task, metric, register


def demo(s: DemoSuite) -> list[Record]:
    """The evaluation clips of the demo AudioCaps, all their captions as references."""
    return s.sounds


TASK = register(Task("caption", "text", (metric("clap", text="hyp_text", audio_field="ref_audio"),),
                     "audio -> caption (BLEU-1..4, CIDEr, ROUGE-L over the set vs all reference captions; "
                     "CLAP of the generated caption vs the audio)",
                     {"ref_audio": "path"}, input="path", set_metrics=(metric("captioning"),),
                     systems=("shuffled", "ground-truth"), demo=demo))
