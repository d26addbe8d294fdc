"""Text normalisation and edit-distance counts for comparing a transcript with a reference:
one place for the benchmark's WER/CER and the data engine's transcript check. Each normaliser's
exact transformation is in NORMALIZERS (the metric card quotes it)."""

from __future__ import annotations

import re

NORMALIZERS = {
    "whisper-english": "openai-whisper's EnglishTextNormalizer (Open ASR Leaderboard): lower-case, bracketed and "
                       "filler words removed, British -> American spellings, numbers written as digits "
                       "(its number standardisation), punctuation removed",
    "whisper-basic": "openai-whisper's BasicTextNormalizer: lower-case, symbols and punctuation to spaces",
    "seed-tts-eval": "Seed-TTS-eval's run_wer.py: every mark of Python's string.punctuation and zhon's Chinese "
                     "punctuation (full-width marks included) removed except the apostrophe, one pass of double "
                     "spaces to single, then lower-case (en) or every character a word (zh: the rate is a CER); "
                     "zh hypotheses first converted to simplified characters (zhconv 'zh-cn', on the ASR output "
                     "only, as run_wer.py does); full-width letters and digits are kept, as there; its reported "
                     "WER is the per-utterance mean (wer_utt_mean here)",
    "zh-cer": "Mandarin CER as AISHELL recipes score it (WeNet's tools/compute-cer.py): <tags> dropped, Latin "
              "letters case-folded, NFKC (full-width forms to half-width), every mark of zhon's Chinese punctuation "
              "and Python's string.punctuation removed, all whitespace removed; transcripts first converted to "
              "simplified characters (zhconv 'zh-cn')",
    "none": "whitespace collapsed, nothing else",
}


_TAG = re.compile(r"<[^<>]*>")  # <unk>, <noise>: markup in Kaldi / WeNet transcripts, not speech
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")  # CJK ideographs (Mandarin characters)


def collapse_spaces(text: str) -> str:
    """Whitespace runs to one space, ends stripped (the `none` normaliser, the `plain` front end)."""
    return " ".join(text.split())


def primary_language(language: str) -> str:
    """A language tag's primary subtag, lower-cased: zh-CN, zh_cn, ZH -> zh."""
    return language.split("-")[0].split("_")[0].lower()


class NormalizerError(RuntimeError):
    """A normaliser that cannot run here (its package missing, a language it does not define)."""


def seed_tts_eval(language: str = "en"):
    """Seed-TTS-eval's text rule (NORMALIZERS["seed-tts-eval"]), from its zhon punctuation set."""
    import string

    try:
        from zhon.hanzi import punctuation
    except ImportError:
        raise NormalizerError("the seed-tts-eval normaliser needs zhon's punctuation set: pip install zhon") from None
    marks = [c for c in punctuation + string.punctuation if c != "'"]
    if language not in ("en", "zh"):
        raise NormalizerError(f"the seed-tts-eval normaliser is defined for en and zh, not {language!r}")

    def normalize(text: str) -> str:
        for c in marks:
            text = text.replace(c, "")
        text = text.replace("  ", " ")
        return text.lower() if language == "en" else " ".join(text)
    return normalize


def hypothesis_rule(name: str, language: str = "en"):
    """What a normaliser does to a hypothesis before normalising it (a transcript, not a
    reference): Seed-TTS-eval converts zh ASR output to simplified characters with zhconv."""
    if (name == "seed-tts-eval" and language == "zh") or name == "zh-cer":
        try:
            import warnings

            with warnings.catch_warnings():  # zhconv imports pkg_resources (deprecated), on purpose of its own
                warnings.simplefilter("ignore")
                import zhconv
        except ImportError:
            raise NormalizerError("the seed-tts-eval zh rule converts transcripts with zhconv: pip install zhconv") \
                from None
        return lambda text: zhconv.convert(text, "zh-cn")
    return lambda text: text


def text_normalizer(name: str, language: str = "en"):
    """The normaliser `name` (a key of NORMALIZERS) as a str -> str function."""
    if name == "seed-tts-eval":
        return seed_tts_eval(language)
    if name in ("whisper-english", "whisper-basic"):
        try:
            from whisper import normalizers
        except ImportError:
            raise NormalizerError(f"the {name} normaliser needs openai-whisper: pip install openai-whisper") from None
        return normalizers.EnglishTextNormalizer() if name == "whisper-english" else normalizers.BasicTextNormalizer()
    if name == "zh-cer":
        import string
        import unicodedata

        try:
            from zhon.hanzi import punctuation
        except ImportError:
            raise NormalizerError("the zh-cer normaliser needs zhon's punctuation set: pip install zhon") from None
        drop = str.maketrans("", "", punctuation + string.punctuation)
        # compute-cer.py strips <unk>-style tags and upper-cases (case-insensitive by default);
        # the width, punctuation and traditional-character folds are ours on top of it
        return lambda s: "".join(_TAG.sub("", unicodedata.normalize("NFKC", s)).lower().translate(drop).split())
    if name == "none":
        return collapse_spaces
    raise KeyError(f"unknown normalizer {name!r}: {', '.join(NORMALIZERS)}")


def error_counts(ref: str, hyp: str, unit: str = "words") -> dict:
    """Substitutions, deletions, insertions and hits of `hyp` against `ref` (both normalised),
    over words or characters (jiwer's alignment). An empty hypothesis deletes every unit."""
    import jiwer

    if not hyp.strip():
        return {"S": 0, "D": len(ref.split()) if unit == "words" else len(ref), "I": 0, "H": 0}
    o = jiwer.process_words(ref, hyp) if unit == "words" else jiwer.process_characters(ref, hyp)
    return {"S": o.substitutions, "D": o.deletions, "I": o.insertions, "H": o.hits}
