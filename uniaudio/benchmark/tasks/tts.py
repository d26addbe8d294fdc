"""TTS: text + a speaker prompt -> speech.
The task, its demo test set and what makes the demo set."""

from __future__ import annotations

from ...manifest import Record
from .base import DemoSuite, Task, metric, register


def prompted(by_speaker: dict[str, list[Record]]) -> list[Record]:
    """Each utterance, prompted by the speaker's next utterance (`extra.prompt_path`, `prompt_id`)."""
    out = []
    for spk_utts in by_speaker.values():
        for i, r in enumerate(spk_utts):
            prompt = spk_utts[(i + 1) % len(spk_utts)]
            extra = {**r.extra, "prompt_path": prompt.path, "prompt_id": prompt.id}
            out.append(Record(**{**r.__dict__, "extra": extra}))
    return out


def demo(s: DemoSuite) -> list[Record]:
    """Each test utterance, prompted by another utterance of the same speaker."""
    return prompted(s.by_speaker)


TASK = register(Task("tts", "audio", (metric("wer"), metric("sim"), metric("utmos"), metric("dnsmos")),
                     "text + speaker prompt -> speech (WER by ASR, SIM vs prompt, UTMOS, DNSMOS)",
                     {"ref_text": "text", "prompt_audio": "extra:prompt_path"}, input="text",
                     systems=("espeak", "ground-truth", "shuffled"), demo=demo))
