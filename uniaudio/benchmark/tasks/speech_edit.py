"""Speech editing: speech + an edited transcript (one word replaced) -> the edited speech.
The task, its demo test set and what makes the demo set."""

from __future__ import annotations

from pathlib import Path

from ... import audio
from ...manifest import Record
from .base import DemoSuite, Task, metric, output_file, register


def speech_edit_records(speech: list[Record], suite: Path) -> list[Record]:
    """One word of each test sentence replaced (espeak-ng voices in turn): `path` is the reference
    edit, `text` the edited transcript; extra: input_path (the original speech), original_text,
    old_word, new_word, edit_span_s (the edited region of the reference, seconds)."""
    from ...demo import edited_speech as se

    out = []
    for k, r in enumerate(speech):
        taken = {w.lower() for w in r.text.split()}
        new = next(w for j in range(len(se.REPLACEMENTS))
                   if (w := se.REPLACEMENTS[(k + j) % len(se.REPLACEMENTS)]) not in taken)
        voice = se.VOICES[k % len(se.VOICES)]
        pair = se.edit_pair(r.text, new, voice)
        uid = f"edit-{r.id}"
        original = audio.save(output_file(suite / "speech_edit_input", uid, ".wav"), pair["original"], 16000)
        edited = audio.save(output_file(suite / "speech_edit_ref", uid, ".wav"), pair["edited"], 16000)
        out.append(Record(id=uid, corpus="demo-speech-edit", split="test", domain="speech", path=str(edited),
                          text=pair["edited_text"], speaker=voice, language="en", extra={
                              "input_path": str(original), "original_text": pair["original_text"],
                              "old_word": pair["old_word"], "new_word": pair["new_word"],
                              "edit_span_s": [round(v, 4) for v in pair["span_s"]], "source_id": r.id}))
    return out


def demo(s: DemoSuite) -> list[Record]:
    return speech_edit_records(s.speech, s.root)


TASK = register(Task("speech_edit", "audio", (metric("wer"), metric("sim"), metric("mcd"), metric("dnsmos")),
                     "speech + its transcript + an edited transcript (one word replaced) -> the edited speech "
                     "(WER vs the edited transcript, SIM vs the original speech, MCD vs the reference edit "
                     "outside the edited word, DNSMOS)",
                     {"ref_text": "text", "ref_audio": "path", "prompt_audio": "extra:input_path",
                     "exclude_span": "extra:edit_span_s"}, input="extra:input_path",
                     systems=("passthrough", "ground-truth", "espeak", "shuffled"), demo=demo))
