"""Phonemes with phonemizer + espeak-ng: text -> IPA phones (word boundary "|"), and a
closed phone inventory (fit on text, saved as JSON) that maps phones to ids."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

WORD = "|"
UNK = "<unk>"


class PhonemizerMissing(RuntimeError):
    pass


def phonemize(texts: list[str], language: str = "en-us") -> list[list[str]]:
    """One phone list per text, "|" between words (espeak-ng via phonemizer)."""
    try:
        from phonemizer.separator import Separator
    except ImportError:
        raise PhonemizerMissing("pip install phonemizer (and apt-get install espeak-ng)") from None
    try:
        backend = _backend(language)
    except RuntimeError as e:
        raise PhonemizerMissing(f"espeak-ng is not usable: {e}; apt-get install espeak-ng") from None
    out = backend.phonemize(list(texts), separator=Separator(phone=" ", word=f" {WORD} ", syllable=""), strip=True)
    return [[p for p in s.split(" ") if p] for s in out]


_BACKENDS: dict = {}


def _backend(language: str):
    from phonemizer.backend import EspeakBackend

    if language not in _BACKENDS:
        # words_mismatch: Mandarin has no spaces, so its word count never matches (a warning per call)
        _BACKENDS[language] = EspeakBackend(language, preserve_punctuation=False, with_stress=False,
                                            words_mismatch="ignore")
    return _BACKENDS[language]


class PhonemeTokenizer:
    name = "phoneme"

    def __init__(self, inventory: list[str], language: str = "en-us"):
        self.inventory = [UNK, WORD] + [p for p in inventory if p not in (UNK, WORD)]
        self.index = {p: i for i, p in enumerate(self.inventory)}
        self.language = language

    @classmethod
    def fit(cls, texts: Iterable[str], language: str = "en-us") -> "PhonemeTokenizer":
        phones: set[str] = set()
        for seq in phonemize(list(texts), language):
            phones.update(seq)
        return cls(sorted(phones), language)

    @property
    def vocab_size(self) -> int:
        return len(self.inventory)

    def phones(self, text: str) -> list[str]:
        return phonemize([text], self.language)[0]

    def encode(self, text: str) -> list[int]:
        return [self.index.get(p, 0) for p in self.phones(text)]

    def encode_phones(self, phones: list[str]) -> list[int]:
        return [self.index.get(p, 0) for p in phones]

    def decode(self, ids: list[int]) -> list[str]:
        bad = [i for i in ids if not 0 <= i < len(self.inventory)]
        if bad:
            raise ValueError(f"phoneme ids out of range [0, {len(self.inventory)}): {bad[:5]}")
        return [self.inventory[i] for i in ids]

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(json.dumps({"language": self.language, "inventory": self.inventory}, ensure_ascii=False))
        return p

    @classmethod
    def load(cls, path: str | Path) -> "PhonemeTokenizer":
        d = json.loads(Path(path).read_text())
        return cls(d["inventory"], d["language"])
