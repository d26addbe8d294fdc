"""Instructed TTS: text + a spoken-style instruction (pitch, rate) -> speech.
The task, its demo test set and what makes the demo set."""

from __future__ import annotations

from pathlib import Path

from ... import audio
from ...prosody import instruction
from ...manifest import Record
from .base import DemoSuite, Task, metric, output_file, register


# instruct_tts: how espeak-ng realises each requested attribute (voice, -p pitch 0-99, -s words
# per minute), and the words of the instruction. Measured on espeak-ng 1.51: -p 30 -> ~88 Hz,
# -p 90 -> ~155 Hz, +f3 -p 60 -> ~230 Hz median F0; -s 80 / 160 / 300 -> 1.9-2.2 / 3.3-4.0 / 5.9-6.6
# words/s on the demo texts (the rate bands of metrics/prosody.py sit between).
ESPEAK_PITCH = {"low": ("en-us", 30), "medium": ("en-us", 90), "high": ("en-us+f3", 60)}
ESPEAK_RATE = {"slow": 80, "normal": 160, "fast": 300}


def render_instructed(text: str, attrs: dict[str, str], dest: Path) -> Path:
    """The reference for an instruction: espeak-ng with the voice, pitch and rate it names."""
    from ...demo.tools import espeak

    voice, pitch = ESPEAK_PITCH[attrs["pitch"]]
    wav, sr = espeak(text.lower(), voice, pitch=pitch, rate=ESPEAK_RATE[attrs["rate"]])
    return audio.save(dest, wav, sr)


def demo(s: DemoSuite) -> list[Record]:
    """Every pitch with every rate, cycled over the test texts; the reference is espeak-ng
    speaking as instructed."""
    out = []
    for k, r in enumerate(s.speech):
        attrs = {"pitch": ("low", "medium", "high")[k % 3], "rate": ("slow", "normal", "fast")[(k // 3) % 3]}
        ref = render_instructed(r.text, attrs, output_file(s.root / "instruct_tts_ref", r.id, ".wav"))
        out.append(Record(**{**r.__dict__, "path": str(ref), "speaker": None, "extra": {
            "instruction": instruction(attrs), "attributes": attrs, "source_id": r.id}}))
    return out


TASK = register(Task("instruct_tts", "audio", (metric("wer"), metric("attributes")),
                     "text + a spoken-style instruction (pitch, rate) -> speech (WER by ASR; whether the "
                     "median F0 and the speaking rate measured from the output fall in the requested bands)",
                     {"ref_text": "text", "attributes": "extra:attributes"}, input="text",
                     systems=("espeak", "ground-truth", "shuffled"), demo=demo))
