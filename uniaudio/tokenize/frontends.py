"""Text front ends per language: what a transcript becomes before the text BPE sees it, in the
sentence stage (training) and in the generator (a test item's text), one function per name.

- `plain`: the text as written, whitespace collapsed (English and any language whose text the
  byte-level BPE should learn as is);
- `zh-chars`: Mandarin characters: digits and numbers read out as characters (cn2an's an2cn:
  "3本" -> "三本", "2024年" -> "二零二四年"), full-width forms to half-width (NFKC), spaces removed
  (AISHELL's transcripts put word boundaries there);
- `zh-pinyin`: the same, then pinyin with tone numbers (pypinyin, TONE3: "ni3 hao3"), one
  syllable a word: a phone-like input for tts.

A language with no front end configured is not tokenized as another: the sentence stage rejects
its rows (`no_text_frontend`)."""

from __future__ import annotations

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


def for_language(frontends: dict[str, str], language: str | None, default_language: str = "en"):
    """The front end configured for a row's language (None: the default language's), or None when
    that language has none. Language tags compare by their primary subtag (zh-CN -> zh)."""
    name = frontends.get(primary_language(language or default_language))
    return FRONT_ENDS[name] if name else None
