"""Attribute agreement for instructed TTS: does the output have the pitch and speaking rate
the instruction asked for? Measured from the audio: median F0 of the voiced frames (librosa's
pYIN, 50-500 Hz) against the requested pitch band, and speaking rate (words of the requested
text per second of speech, speech = the non-silent intervals at 35 dB below the peak, in
frames of 1024 samples) against
the requested rate band. The bands are part of the protocol and printed in the metric card;
an instruction that names an attribute or a value outside them is an error (NaN + reason)."""

from __future__ import annotations

import numpy as np

from .base import Metric, MetricError, SR, Value, per_item, register, versions

PITCH_BANDS_HZ = {"low": (50.0, 120.0), "medium": (120.0, 200.0), "high": (200.0, 400.0)}
# words per second depends on word length as well as tempo: the bands are wide, their edges
# between the clusters measured on the demo texts (espeak-ng at 80 / 160 / 300 words per minute
# reads 1.9-2.2 / 3.3-4.0 / 5.9-6.6 words per second of speech on the demo suite's sentences)
RATE_BANDS_WPS = {"slow": (0.5, 2.7), "normal": (2.7, 4.9), "fast": (4.9, 9.0)}
BANDS = {"pitch": PITCH_BANDS_HZ, "rate": RATE_BANDS_WPS}
F0_RANGE_HZ = (50.0, 500.0)
SILENCE_TOP_DB = 35.0
SPLIT_FRAME, SPLIT_HOP = 1024, 256  # samples: an interval's edges are padded by half a frame (32 ms)


def median_f0(wav: np.ndarray, sr: int = SR) -> float:
    """Median F0 (Hz) over the frames pYIN calls voiced."""
    import librosa

    if len(wav) < 2048 or not np.any(wav):
        raise MetricError("no voiced frames: the output is silent or too short")
    f0, voiced, _ = librosa.pyin(np.asarray(wav, np.float32), fmin=F0_RANGE_HZ[0], fmax=F0_RANGE_HZ[1], sr=sr,
                                 frame_length=1024)
    f0 = f0[voiced & np.isfinite(f0)]
    if len(f0) == 0:
        raise MetricError("no voiced frames: the output is silent or unvoiced")
    return float(np.median(f0))


def speech_seconds(wav: np.ndarray, sr: int = SR) -> float:
    """Seconds of the non-silent intervals (librosa.effects.split at SILENCE_TOP_DB)."""
    import librosa

    if not np.any(wav):
        raise MetricError("silent output: no speech to time")
    intervals = librosa.effects.split(np.asarray(wav, np.float32), top_db=SILENCE_TOP_DB, frame_length=SPLIT_FRAME,
                                      hop_length=SPLIT_HOP)
    seconds = float(sum(int(b) - int(a) for a, b in intervals)) / sr
    if seconds <= 0:
        raise MetricError("silent output: no speech to time")
    return seconds


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
              "attributes_rate_wps": Value(None, "words/s")}
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
        if "rate" in attrs:
            words = len((s.ref_text or "").split())
            if words == 0:
                raise MetricError("rate: the requested text has no words")
            lo, hi = RATE_BANDS_WPS[attrs["rate"]]
            wps = words / speech_seconds(s.hyp_audio)
            out["attributes_rate_wps"] = wps
            met.append(lo <= wps < hi)
            out["attributes_rate_ok"] = float(met[-1])
        out["attributes"] = float(np.mean(met))
        return out

    def score(self, batch):
        return per_item(batch, self.one)

    def card(self):
        return dict(super().card(), pitch_bands_hz=PITCH_BANDS_HZ, rate_bands_words_per_s=RATE_BANDS_WPS,
                    f0="librosa.pyin, fmin 50 Hz, fmax 500 Hz, frame 1024, median of voiced frames",
                    speech=f"librosa.effects.split top_db={SILENCE_TOP_DB:g}, frame {SPLIT_FRAME}, hop {SPLIT_HOP}", versions=versions("librosa"))
