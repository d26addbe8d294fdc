"""ASR: speech -> transcript, scored by WER and CER.
The task, its demo test set and what makes the demo set."""

from __future__ import annotations

from ...manifest import Record
from .base import DemoSuite, Task, metric, register


def demo(s: DemoSuite) -> list[Record]:
    """The demo speech test utterances, and ljspeech-mini's real speech when it is found."""
    from ...pipeline.recipes import records

    out = list(s.speech)
    if s.ljspeech_mini is not None:
        out += list(records("ljspeech", s.ljspeech_mini, split="test"))
    return out


TASK = register(Task("asr", "text", (metric("wer"), metric("cer")), "speech -> transcript",
                     {"ref_text": "text"},
                     systems=("whisper-tiny", "ground-truth", "shuffled"), demo=demo))
