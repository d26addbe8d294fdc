"""`demo-zh`: the demo's Mandarin test set, asr and tts, built offline from the demo corpora's
AISHELL-layout speech (espeak-ng's Mandarin voice; the two held-out test speakers, whom no demo
training set holds). `benchmark run --suite demo-zh` builds it from the demo suite's corpora (a cache,
like `demo`); `benchmark suite build demo-zh --root DEMO/aishell` builds it from a demo folder
`uniaudio data demo` wrote. Its preset `demo-zh` scores asr by CER on characters and tts by CER
of Paraformer-zh's transcript (Seed-TTS-eval's zh setting: NaN with the fetch step where FunASR
or its model is missing)."""

from __future__ import annotations

from ...manifest import Record
from ..tasks.tts import prompted
from .aishell import test_rows
from .base import BuildContext, Built, Suite, register

LAYOUT = "the demo's Mandarin corpus (`uniaudio data demo DIR` writes DIR/aishell/data_aishell in AISHELL-1's layout)"


def _build(ctx: BuildContext) -> Built:
    rows = test_rows(ctx, "demo-zh", LAYOUT)
    by_speaker: dict[str, list[Record]] = {}
    for r in rows:
        by_speaker.setdefault(r.speaker, []).append(r)
    return Built({"asr": rows, "tts": prompted(by_speaker)})


SUITE = register(Suite("demo-zh", ("asr", "tts"), "1",
                       "the demo's Mandarin speech (espeak-ng cmn-latn-pinyin), its test speakers", LAYOUT,
                       "every test utterance; tts prompted by the speaker's next utterance", _build,
                       protocol={"cer": {"text": "zh-cer: punctuation and spaces removed, full-width to half-width, "
                                                 "transcripts to simplified characters"},
                                 "wer": {"text": "Seed-TTS-eval's zh rule: every character a word (a CER)",
                                         "asr": "Paraformer-zh (FunASR) for tts, as Seed-TTS-eval test-zh"}},
                       preset="demo-zh"))
