"""Voice conversion: source speech + a target-speaker prompt -> the source words in the target voice.
The task, its demo test set and what makes the demo set."""

from __future__ import annotations

from ...manifest import Record
from .base import DemoSuite, Task, metric, register


def demo(s: DemoSuite) -> list[Record]:
    """Utterance of speaker A to be spoken in the voice of speaker B (prompt: a B utterance)."""
    out = []
    for k, r in enumerate(s.speech):
        prompt = s.other_speaker(k, r)
        out.append(Record(**{**r.__dict__, "extra": {**r.extra, "prompt_path": prompt.path, "prompt_id": prompt.id}}))
    return out


TASK = register(Task("vc", "audio", (metric("wer"), metric("sim"), metric("utmos"), metric("dnsmos")),
                     "source speech + target-speaker prompt -> the source words in the target voice "
                     "(WER vs the source transcript, SIM vs the prompt)",
                     {"ref_text": "text", "prompt_audio": "extra:prompt_path"},
                     systems=("passthrough",), demo=demo))
