"""Attribute agreement for instructed TTS: does the output have the pitch and speaking rate
the instruction asked for? Measured from the audio (`uniaudio/prosody.py`, the same measures the
data engine writes instructions from): median F0 of the voiced frames (librosa's pYIN, 50-500 Hz)
against the requested pitch band, and speaking rate (words of the requested text per second of
speech, or syllables, i.e. characters, for a Mandarin text; speech = the non-silent intervals at
35 dB below the peak, in frames of 1024 samples) against the requested rate band (Mandarin's own).
The bands are part of the protocol and printed in the metric card; an instruction that names an
attribute or a value outside them is an error (NaN + reason)."""

from __future__ import annotations

import numpy as np

from .base import Metric, MetricError, SR, Value, per_item, register, versions

from ...prosody import (BANDS, PITCH_BANDS_HZ, RATE_BANDS_SPS_ZH, RATE_BANDS_WPS, SILENCE_TOP_DB, SPLIT_FRAME,
                        SPLIT_HOP, ProsodyError, rate_unit)
from ...prosody import median_f0 as _median_f0
from ...prosody import speech_seconds as _speech_seconds


def median_f0(wav: np.ndarray, sr: int = SR) -> float:
    """Median F0 (Hz) over the frames pYIN calls voiced (uniaudio.prosody)."""
    try:
        return _median_f0(wav, sr)
    except ProsodyError as e:
        raise MetricError(f"output: {e}") from None


def speech_seconds(wav: np.ndarray, sr: int = SR) -> float:
    """Seconds of the non-silent intervals (uniaudio.prosody)."""
    try:
        return _speech_seconds(wav, sr)
    except ProsodyError as e:
        raise MetricError(f"output: {e}") from None


def check_attributes(attrs) -> dict[str, str]:
    """The requested attributes, or a MetricError naming what is not in the protocol."""
    if not isinstance(attrs, dict) or not attrs:
        raise MetricError(f"no requested attributes for this item (got {attrs!r})")
    for k, v in attrs.items():
        if k not in BANDS:
            raise MetricError(f"unknown attribute {k!r}; known: {sorted(BANDS)}")
        if v not in BANDS[k]:
            raise MetricError(f"unknown {k} {v!r}; known: {sorted(BANDS[k])}")
    return attrs


@register("attributes")
class AttributeAgreement(Metric):
    name = "attributes"
    values = {"attributes": Value("higher", "share"), "attributes_f0_hz": Value(None, "Hz"),
              "attributes_rate_wps": Value(None, "words/s"), "attributes_rate_sps": Value(None, "syllables/s")}
    needs = ("hyp_audio", "ref_text", "attributes")
    aggregation = "mean over items with a finite value (attributes = share of requested attributes met)"

    def one(self, s) -> dict[str, float]:
        attrs = check_attributes(s.attributes)
        if s.hyp_audio is None:
            raise MetricError("no output audio")
        out, met = {}, []
        if "pitch" in attrs:
            lo, hi = PITCH_BANDS_HZ[attrs["pitch"]]
            f0 = median_f0(s.hyp_audio)
            out["attributes_f0_hz"] = f0
            met.append(lo <= f0 < hi)
            out["attributes_pitch_ok"] = float(met[-1])
        if "rate" in attrs:  # words/s, or syllables/s for a Mandarin text (its own bands)
            unit, count, bands = rate_unit(s.ref_text)
            if count == 0:
                raise MetricError("rate: the requested text has no words")
            lo, hi = bands[attrs["rate"]]
            rate = count / speech_seconds(s.hyp_audio)
            out["attributes_rate_wps" if unit == "words_per_s" else "attributes_rate_sps"] = rate
            met.append(lo <= rate < hi)
            out["attributes_rate_ok"] = float(met[-1])
        out["attributes"] = float(np.mean(met))
        return out

    def score(self, batch):
        return per_item(batch, self.one)

    def card(self):
        return dict(super().card(), pitch_bands_hz=PITCH_BANDS_HZ, rate_bands_words_per_s=RATE_BANDS_WPS,
                    rate_bands_syllables_per_s_zh=RATE_BANDS_SPS_ZH,
                    f0="librosa.pyin, fmin 50 Hz, fmax 500 Hz, frame 1024, median of voiced frames",
                    speech=f"librosa.effects.split top_db={SILENCE_TOP_DB:g}, frame {SPLIT_FRAME}, hop {SPLIT_HOP}", versions=versions("librosa"))
