"""Speaking style measured from audio, and the words that name it: median F0 (librosa's pYIN over
voiced frames, 50-500 Hz) and speaking rate (words per second of speech, syllables for Mandarin;
speech = the non-silent intervals 35 dB below the peak). One definition for the two places that
must agree: the data engine's `measure: [prosody]` step, whose bands become the instructions of
instruct_tts training sentences, and the benchmark's `attributes` metric, which checks an
instructed output against the same bands (Parler-TTS's Data-Speech annotates corpora the same way:
binned measurements, then words)."""

from __future__ import annotations

import numpy as np

from .textnorm import HAN

PITCH_BANDS_HZ = {"low": (50.0, 120.0), "medium": (120.0, 200.0), "high": (200.0, 400.0)}
# words per second depends on word length as well as tempo: the bands are wide, their edges
# between the clusters measured on the demo texts (espeak-ng at 80 / 160 / 300 words per minute
# reads 1.9-2.2 / 3.3-4.0 / 5.9-6.6 words per second of speech on the demo suite's sentences)
RATE_BANDS_WPS = {"slow": (0.5, 2.7), "normal": (2.7, 4.9), "fast": (4.9, 9.0)}
# Mandarin, in syllables (characters) per second of speech: the English bands carried over by
# Pellegrino, Coupe & Marsico (2011, Language 87(3)): read Mandarin 5.18 syllables/s vs English
# 6.19, and English ~1.5 syllables a word, so 2.7 / 4.9 words/s -> 3.4 / 6.2 syllables/s.
# espeak-ng's cmn-latn-pinyin voice at 120 / 220 / 300 words per minute reads 2.3-2.7 / 4.4-5.4 /
# 6.5-7.7 syllables/s on the demo's Mandarin sentences: one band each.
RATE_BANDS_SPS_ZH = {"slow": (0.5, 3.4), "normal": (3.4, 6.2), "fast": (6.2, 12.0)}
BANDS = {"pitch": PITCH_BANDS_HZ, "rate": RATE_BANDS_WPS}
F0_RANGE_HZ = (50.0, 500.0)
SILENCE_TOP_DB = 35.0
SPLIT_FRAME, SPLIT_HOP = 1024, 256  # samples: an interval's edges are padded by half a frame (32 ms)

# how an instruction says each band (the benchmark's instruct_tts test set uses the same words)
PITCH_WORDS = {"low": "a low-pitched male", "medium": "a medium-pitched", "high": "a high-pitched female"}
RATE_WORDS = {"slow": "slowly", "normal": "at a normal pace", "fast": "quickly"}


class ProsodyError(ValueError):
    pass


def median_f0(wav: np.ndarray, sr: int) -> float:
    """Median F0 (Hz) over the frames pYIN calls voiced."""
    import librosa

    if len(wav) < 2048 or not np.any(wav):
        raise ProsodyError("no voiced frames: silent or too short")
    f0, voiced, _ = librosa.pyin(np.asarray(wav, np.float32), fmin=F0_RANGE_HZ[0], fmax=F0_RANGE_HZ[1], sr=sr,
                                 frame_length=1024)
    f0 = f0[voiced & np.isfinite(f0)]
    if len(f0) == 0:
        raise ProsodyError("no voiced frames: silent or unvoiced")
    return float(np.median(f0))


def speech_seconds(wav: np.ndarray, sr: int) -> float:
    """Seconds of the non-silent intervals (librosa.effects.split at SILENCE_TOP_DB)."""
    import librosa

    if not np.any(wav):
        raise ProsodyError("silent: no speech to time")
    intervals = librosa.effects.split(np.asarray(wav, np.float32), top_db=SILENCE_TOP_DB, frame_length=SPLIT_FRAME,
                                      hop_length=SPLIT_HOP)
    seconds = float(sum(int(b) - int(a) for a, b in intervals)) / sr
    if seconds <= 0:
        raise ProsodyError("silent: no speech to time")
    return seconds


def band(kind: str, value: float, bands: dict | None = None) -> str | None:
    """The band of BANDS[kind] (or of `bands`) that holds `value`, or None (outside every band)."""
    for name, (lo, hi) in (bands or BANDS[kind]).items():
        if lo <= value < hi:
            return name
    return None


def rate_unit(text: str | None) -> tuple[str, int, dict]:
    """How a transcript's speaking rate is counted: (measure name, count, rate bands). A Mandarin
    transcript (any Han character) counts syllables: a character is one, a run of other letters
    or digits one more; other transcripts count words."""
    han = len(HAN.findall(text or ""))
    if han:
        return "syllables_per_s", han + len(HAN.sub(" ", text).split()), RATE_BANDS_SPS_ZH
    return "words_per_s", len((text or "").split()), RATE_BANDS_WPS


def instruction(attrs: dict[str, str]) -> str:
    """`Say it quickly in a high-pitched female voice.` from {"pitch": ..., "rate": ...}."""
    return f"Say it {RATE_WORDS[attrs['rate']]} in {PITCH_WORDS[attrs['pitch']]} voice."


def measure(wav: np.ndarray, sr: int, text: str | None) -> dict:
    """The data engine's prosody measures of one utterance: f0_hz, speech_s, words_per_s (with a
    transcript) and their bands; a measure that cannot be taken is `prosody_error` (the item is
    kept: a missing measure only means no instruction can be written for it)."""
    out: dict = {}
    try:
        out["f0_hz"] = round(median_f0(wav, sr), 2)
        out["pitch"] = band("pitch", out["f0_hz"])
        out["speech_s"] = round(speech_seconds(wav, sr), 3)
        unit, count, bands = rate_unit(text)
        if count:
            out[unit] = round(count / out["speech_s"], 3)
            out["rate"] = band("rate", out[unit], bands)
    except ProsodyError as e:
        out["prosody_error"] = str(e)
    return out
