"""Seed-TTS-eval (BytedanceSpeech/seed-tts-eval), the test set as its authors ship it:
`seedtts_testset/{en,zh}/meta.lst` (and `zh/hardcase.lst`), one item a line,
`id|prompt text|prompt wav|target text` (or a fifth field, the target's own recording);
relative wav paths are relative to the list's folder, and a 4-field item's recording, when
shipped, is `wavs/{id}.wav` beside the list (the rule F5-TTS's evaluation follows).

- `seed-tts-eval-en` (test-en, Common Voice, about a thousand items), `seed-tts-eval-zh`
  (test-zh, DiDiSpeech-2, about two thousand), `seed-tts-eval-hard` (zh hard cases).
ROOT is `seedtts_testset` (or the language folder itself); `--list` names another list file in
the same format. An item whose prompt wav is not there is missing (`--allow-missing`); an item
without its own recording keeps the prompt as its reference audio (`extra.has_recording` false)."""

from __future__ import annotations

from pathlib import Path

from ... import audio, storage
from ...manifest import Record
from .base import BuildContext, Built, Suite, SuiteError, register

FORMAT = "meta.lst: one item a line, id|prompt text|prompt wav|target text[|target wav]"
PROTOCOL = {"en": {"wer": {"asr": "whisper-large-v3", "text": "punctuation removed, lower-cased (run_wer.py)"},
                   "sim": {"model": "WavLM-large + ECAPA-TDNN (UniSpeech wavlm_large_finetune.pth)"}},
            "zh": {"cer": {"asr": "paraformer-zh", "text": "zhconv zh-cn, punctuation removed (run_wer.py)"},
                   "sim": {"model": "WavLM-large + ECAPA-TDNN (UniSpeech wavlm_large_finetune.pth)"}}}
PUBLISHED = ("Seed-TTS (arXiv 2406.02430); CosyVoice 3 Table 4: test-en WER / SIM human 2.14 / 0.734, "
             "F5-TTS 1.83 / 0.647; test-zh CER / SIM human 1.26 / 0.755")


def parse_meta(path: Path) -> list[tuple[str, str, str, str, str | None]]:
    """(id, prompt text, prompt wav, target text, target wav or None) of each line, or SuiteError
    naming the first line that does not parse."""
    out = []
    for n, line in enumerate(storage.read_text(str(path)).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) not in (4, 5) or not parts[0].strip() or not parts[2].strip():
            raise SuiteError(f"{path} line {n}: expected {FORMAT}; got {len(parts)} field(s): {line.strip()[:120]!r}")
        out.append((parts[0].strip(), parts[1], parts[2].strip(), parts[3], parts[4].strip() if len(parts) == 5 else None))
    return out


def _builder(lang: str):
    def build(ctx: BuildContext) -> Built:
        lst = ctx.list_file
        here = lst.parent
        out, missing = [], []
        for uid, prompt_text, prompt_wav, text, target_wav in parse_meta(lst):
            prompt = Path(prompt_wav) if Path(prompt_wav).is_absolute() else here / prompt_wav
            target = Path(target_wav) if target_wav and Path(target_wav).is_absolute() else \
                here / (target_wav or f"wavs/{uid}.wav")
            if not prompt.is_file():
                missing.append(uid)
                continue
            has = target.is_file()
            ref = target if has else prompt
            try:
                info = audio.info(ref)
            except audio.AudioError as e:
                raise SuiteError(f"{lst}: item {uid}: {e}") from None
            out.append(Record(id=uid, corpus="seed-tts-eval", split=f"test-{lang}", domain="speech", path=str(ref),
                              duration=info.duration, sample_rate=info.sample_rate, channels=info.channels,
                              text=text.strip(), language=lang,
                              extra={"prompt_path": str(prompt), "prompt_text": prompt_text.strip(),
                                     "has_recording": has}))
        return Built({"tts": out}, missing)
    return build


# item counts: en 1,088 + zh 2,020 = the 3,108 EvalScope's Seed-TTS-Eval page lists for its two default
# subsets; the hard list's count is not checked against a source yet (no published count is claimed)
for _name, _lang, _list, _n, _what in (("seed-tts-eval-en", "en", "en/meta.lst", 1088, "test-en (Common Voice)"),
                                       ("seed-tts-eval-zh", "zh", "zh/meta.lst", 2020, "test-zh (DiDiSpeech-2)"),
                                       ("seed-tts-eval-hard", "zh", "zh/hardcase.lst", None, "test-hard (zh)")):
    register(Suite(_name, ("tts",), "1", f"Seed-TTS-eval {_what}, as shipped (seedtts_testset)",
                   f"seedtts_testset with {_list} (or --list FILE in that format)", "the items of the shipped list",
                   _builder(_lang), published_items={"tts": _n} if _n else {}, protocol=PROTOCOL[_lang],
                   published=PUBLISHED, list_format=FORMAT, list_default=_list,
                   preset="seed-tts-eval" if _lang == "en" else "seed-tts-eval-zh"))
