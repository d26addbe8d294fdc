"""Speech-edit pairs with a known edited region: one word of a sentence replaced.

espeak-ng speaks the words before the edit, the word, and the words after it as three pieces
(silences trimmed, joined by GAP_S of silence). The original and the reference edit share the
first and last pieces sample for sample, so the edited region of the reference is known exactly
(from the end of the first piece to the start of the last) and everything outside it is the
original's audio."""

from __future__ import annotations

import numpy as np

from .tools import espeak

GAP_S = 0.08
# espeak-ng voices whisper tiny.en reads best (WER 0.09-0.17 on demo sentences; +f2 / +f4 /
# +f1 / +m2 read 0.29-0.63 and were left out)
VOICES = ("en-us", "en-us+m3", "en-gb+f3", "en+m7", "en-gb", "en+m1")
# replacement words, cycled: common, easy for ASR, and none of them in the demo sentences' vocabulary
REPLACEMENTS = ("purple", "paper", "candle", "yellow", "rocket", "pencil", "basket", "tiger", "honey", "blanket",
                "orange", "cotton")


def _piece(text: str, voice: str, sr: int) -> np.ndarray:
    import librosa

    if not text:
        return np.zeros(0, np.float32)
    wav, _ = espeak(text.lower(), voice, sample_rate=sr)
    trimmed, _ = librosa.effects.trim(wav, top_db=40, frame_length=512, hop_length=128)
    return trimmed.astype(np.float32)


def edit_word_index(words: list[str]) -> int:
    """The word to replace: the longest inner word (not the first or last) nearest the middle,
    so there is original speech on both sides of the edit."""
    mid = (len(words) - 1) / 2
    return max(range(1, len(words) - 1), key=lambda i: (len(words[i].strip(".,;:!?'\"")), -abs(i - mid)))


def edit_pair(text: str, new_word: str, voice: str, sr: int = 16000) -> dict:
    """{original, edited (float32 at sr), original_text, edited_text, old_word, new_word,
    span_s: (start, end) of the edited region in the edited audio}."""
    words = text.split()
    if len(words) < 3:
        raise ValueError(f"need at least 3 words to edit one in the middle, got {text!r}")
    k = edit_word_index(words)
    old = words[k].strip(".,;:!?'\"")
    if old.lower() == new_word.lower():
        raise ValueError(f"the replacement {new_word!r} equals the word it replaces")
    head, tail = _piece(" ".join(words[:k]), voice, sr), _piece(" ".join(words[k + 1:]), voice, sr)
    gap = np.zeros(int(GAP_S * sr), np.float32)

    def join(word: np.ndarray) -> np.ndarray:
        return np.concatenate([head, gap, word, gap, tail])

    new_audio = _piece(new_word, voice, sr)
    start = len(head)  # the region: the word and the gaps around it
    end = start + len(gap) + len(new_audio) + len(gap)
    new_word = new_word.upper() if old.isupper() else new_word  # the transcript's case (LibriSpeech: upper)
    edited_words = words[:k] + [words[k].replace(old, new_word)] + words[k + 1:]
    return {"original": join(_piece(old, voice, sr)), "edited": join(new_audio), "original_text": text,
            "edited_text": " ".join(edited_words), "old_word": old, "new_word": new_word,
            "span_s": (start / sr, end / sr)}
