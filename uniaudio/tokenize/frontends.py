"""Text front ends per language: what a transcript becomes before the text BPE sees it, in the
sentence stage (training) and in the generator (a test item's text), one function per name.

- `plain`: the text as written, whitespace collapsed (English and any language whose text the
  byte-level BPE should learn as is);
- `zh-chars`: Mandarin characters: digits and numbers read out as characters (cn2an's an2cn:
  "3本" -> "三本", "2024年" -> "二零二四年"), full-width forms to half-width (NFKC), spaces removed
  (AISHELL's transcripts put word boundaries there);
- `zh-pinyin`: the same, then pinyin with tone numbers (pypinyin, TONE3: "ni3 hao3"), one
  syllable a word: a phone-like input for tts;
- `espeak-VOICE`: espeak-ng's phonemes (IPA, through phonemizer) in any language espeak-ng speaks,
  e.g. `espeak-cmn-latn-pinyin` (Mandarin, tones as digits; after zh-chars' number reading),
  `espeak-en-us`, `espeak-fr-fr`: phones space-separated, `|` between words. A voice that switches
  language inside a text (espeak-ng 1.51's plain `cmn` reads the pinyin it makes as English) is an
  error naming the voice to use, never English phones for Mandarin.

A language with no front end configured is not tokenized as another: the sentence stage rejects
its rows (`no_text_frontend`)."""

from __future__ import annotations

import functools
import re
import unicodedata

from ..textnorm import HAN, collapse_spaces, primary_language


class FrontEndError(ValueError):
    """A text that a front end cannot take, or a front end that cannot run here."""


plain = collapse_spaces  # the text as written, whitespace collapsed


def zh_chars(text: str) -> str:
    try:
        import cn2an
    except ImportError:
        raise FrontEndError("the zh front ends read numbers with cn2an: pip install cn2an") from None
    text = unicodedata.normalize("NFKC", text)
    try:
        text = cn2an.transform(text, "an2cn")
    except (ValueError, KeyError) as e:  # cn2an refuses some digit strings (e.g. very long ones)
        raise FrontEndError(f"cn2an could not read the numbers in {text[:40]!r}: {e}") from None
    return "".join(text.split())


def zh_pinyin(text: str) -> str:
    try:
        from pypinyin import Style, lazy_pinyin
    except ImportError:
        raise FrontEndError("the zh-pinyin front end needs pypinyin: pip install pypinyin") from None
    return " ".join(lazy_pinyin(zh_chars(text), style=Style.TONE3, neutral_tone_with_five=True))


ESPEAK = "espeak-"  # the prefix of the phoneme front ends: espeak-{espeak-ng voice}
_ZH_VOICES = ("cmn", "yue", "hak")  # Chinese voices: numbers are read as characters first


def espeak_phones(text: str, voice: str) -> str:
    from .phonemes import WORD, PhonemizerMissing, phonemize

    if voice.split("-")[0] in _ZH_VOICES:
        text = zh_chars(text)
    try:
        (phones,) = phonemize([text], voice)
    except PhonemizerMissing as e:
        raise FrontEndError(str(e)) from None
    except RuntimeError as e:  # phonemizer: a voice espeak-ng does not have
        raise FrontEndError(f"espeak-ng cannot phonemize with voice {voice!r}: {e}") from None
    if not [p for p in phones if p != WORD]:
        raise FrontEndError(f"espeak-ng ({voice}) made no phones of {text[:40]!r}")
    switched = sorted({p for p in phones if p.startswith("(")})
    if switched:  # e.g. Debian's espeak-ng 1.51 `cmn`: Han -> pinyin, then the pinyin read as English
        raise FrontEndError(f"espeak-ng's {voice} voice read {text[:40]!r} partly in another language "
                            f"({', '.join(switched)}): for Mandarin use {ESPEAK}cmn-latn-pinyin")
    return " ".join(phones)


_LATIN = re.compile(r"[A-Za-z]")


def script_mismatch(text: str, language: str) -> bool:
    """A transcript in another script than its language: Mandarin without a single Han character,
    or an English one holding Han characters (a mislabelled row; counted by the sentence stage)."""
    lang = primary_language(language)
    if lang == "zh":
        return not HAN.search(text)
    if lang == "en":
        return bool(HAN.search(text)) or not _LATIN.search(text)
    return False


FRONT_ENDS = {"plain": plain, "zh-chars": zh_chars, "zh-pinyin": zh_pinyin}
DEFAULT = {"en": "plain", "zh": "zh-chars"}


@functools.lru_cache(maxsize=None)  # once per name: the sentence stage asks for every row
def get(name: str):
    """The front end of a configured name: one of FRONT_ENDS, or `espeak-VOICE` with a voice
    espeak-ng has (checked here, so a config naming a missing voice fails when it is loaded)."""
    if name in FRONT_ENDS:
        return FRONT_ENDS[name]
    voice = name[len(ESPEAK):] if name.startswith(ESPEAK) else ""
    if not voice:
        raise FrontEndError(f"unknown front end {name!r}; known: {', '.join(FRONT_ENDS)}, "
                            f"{ESPEAK}VOICE (an espeak-ng voice, e.g. {ESPEAK}cmn-latn-pinyin)")
    try:
        from phonemizer.backend import EspeakBackend

        known = EspeakBackend.supported_languages()
    except (ImportError, RuntimeError) as e:
        raise FrontEndError(f"{name}: espeak-ng is not usable here ({e}): apt-get install espeak-ng") from None
    if voice not in known:
        raise FrontEndError(f"{name}: espeak-ng has no voice {voice!r} (`espeak-ng --voices` lists them)")
    return functools.partial(espeak_phones, voice=voice)


def for_language(frontends: dict[str, str], language: str | None, default_language: str = "en"):
    """The front end configured for a row's language (None: the default language's), or None when
    that language has none. Language tags compare by their primary subtag (zh-CN -> zh)."""
    name = frontends.get(primary_language(language or default_language))
    return get(name) if name else None
