"""`demo-zh`: the demo's Mandarin test set, asr and tts, built offline from the demo corpora's
AISHELL-layout speech (espeak-ng's Mandarin voice; the held-out test speaker, whom no demo training
set holds). `benchmark run --suite demo-zh` builds it from the demo suite's corpora (a cache,
like `demo`); `benchmark suite build demo-zh --root DEMO/aishell` builds it from a demo folder
`uniaudio data demo` wrote. Its preset `demo-zh` scores asr by CER on characters and tts by CER
of Paraformer-zh's transcript (Seed-TTS-eval's zh setting: NaN with the fetch step where FunASR
or its model is missing)."""

from __future__ import annotations

from ...manifest import Record
from .base import BuildContext, Built, Suite, SuiteError, register

LAYOUT = "the demo's Mandarin corpus (`uniaudio data demo DIR` writes DIR/aishell/data_aishell in AISHELL-1's layout)"


def _build(ctx: BuildContext) -> Built:
    from ...pipeline.recipes import RecipeError, records
    from ...pipeline.recipes.common import REJECT_KEY

    base = ctx.root / "data_aishell" if (ctx.root / "data_aishell").is_dir() else ctx.root
    ctx.check_layout((base / "wav" / "test").is_dir(), LAYOUT)
    try:
        rows = sorted((r for r in records("aishell", ctx.root, split="test") if REJECT_KEY not in r.extra),
                      key=lambda r: r.id)
    except (RecipeError, FileNotFoundError) as e:
        raise SuiteError(f"{ctx.root}: {e} (expected {LAYOUT})") from None
    rows = [Record(**{**r.__dict__, "corpus": "demo-zh"}) for r in rows]
    by_speaker: dict[str, list[Record]] = {}
    for r in rows:
        by_speaker.setdefault(r.speaker, []).append(r)
    tts = []
    for utts in by_speaker.values():  # the prompt: the speaker's next utterance (another one when it has two)
        for i, r in enumerate(utts):
            prompt = utts[(i + 1) % len(utts)]
            tts.append(Record(**{**r.__dict__, "extra": {**r.extra, "prompt_path": prompt.path,
                                                           "prompt_id": prompt.id}}))
    return Built({"asr": rows, "tts": tts})


SUITE = register(Suite("demo-zh", ("asr", "tts"), "1",
                       "the demo's Mandarin speech (espeak-ng cmn-latn-pinyin), its test speaker", LAYOUT,
                       "every test utterance; tts prompted by the speaker's next utterance", _build,
                       protocol={"cer": {"text": "zh-cer: punctuation and spaces removed, full-width to half-width, "
                                                 "transcripts to simplified characters"},
                                 "wer": {"text": "Seed-TTS-eval's zh rule: every character a word (a CER)",
                                         "asr": "Paraformer-zh (FunASR) for tts, as Seed-TTS-eval test-zh"}},
                       preset="demo-zh"))
