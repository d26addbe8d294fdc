"""Mel-cepstral distortion (MCD) and F0 error against a reference: VERSA's `mcd_f0` protocol
(from ESPnet / S3PRL-VC) at 16 kHz.

Both signals: WORLD analysis (pyworld: Harvest F0 in 40-800 Hz, CheapTrick envelope, FFT 1024,
5 ms frames), mel-cepstrum by pysptk.sp2mc with ESPnet's 16 kHz setting (order 23, alpha 0.42),
frames more than 20 dB below the utterance's mean power dropped, then DTW between the two
mel-cepstrum sequences (exact DTW by librosa; VERSA uses fastdtw's approximation of it).
- MCD (dB) = mean over aligned frame pairs of 10/ln 10 * sqrt(2 * sum_d (c_d - c'_d)^2), all 24
  coefficients (c0 included, as ESPnet's evaluate_mcd); a gain g on the output reads
  10/ln 10 * sqrt(2) * |ln g| (c0 is the log gain).
- F0 RMSE (cents) over aligned pairs voiced in both: sqrt(mean (1200 log2(f_hyp / f_ref))^2), i.e.
  ESPnet's log-F0 RMSE x 1200 / ln 2. V/UV error: share of aligned pairs voiced in one only.
A reference span to leave out (speech edit: the edited word) drops the pairs whose reference
frame lies in it. An output shorter than half or longer than twice the reference is "wrong
length" (an alignment across that is not a measurement), a silent one is an error."""

from __future__ import annotations

import hashlib
import math
import warnings

import numpy as np

from .base import Metric, MetricError, SR, Value, per_item, register, versions

F0_FLOOR, F0_CEIL = 40.0, 800.0
FRAME_MS = 5.0
FFT_SIZE = 1024
MCEP_ORDER, MCEP_ALPHA = 23, 0.42  # ESPnet's _get_best_mcep_params(16000)
POWER_THRESHOLD_DB = -20.0
LENGTH_RATIO = (0.5, 2.0)
MCD_CONST = 10.0 / math.log(10.0) * math.sqrt(2.0)
CENTS_PER_LN = 1200.0 / math.log(2.0)

_cache: dict[bytes, dict] = {}


def analyse(wav: np.ndarray, sr: int = SR) -> dict:
    """WORLD F0 (Hz, 0 = unvoiced), mel-cepstrum [frames, 24] and the frames kept by the power
    threshold, for one signal (cached by content: F0 and MCD of the same pair analyse once)."""
    x = np.ascontiguousarray(wav, dtype=np.float64)
    key = hashlib.blake2b(x.tobytes(), digest_size=16).digest() + sr.to_bytes(4, "little")
    if key in _cache:
        return _cache[key]
    if len(x) < sr // 10:
        raise MetricError(f"too short: {len(x) / sr:.3f} s (at least 0.1 s)")
    if not np.any(x):
        raise MetricError("silent audio: no spectrum to compare")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyworld imports pkg_resources
        import pysptk
        import pyworld

    f0, t = pyworld.harvest(x, sr, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=FRAME_MS)
    sp = pyworld.cheaptrick(x, f0, t, sr, fft_size=FFT_SIZE)
    power = sp.mean(axis=1)
    npow = 10 * np.log10(power / power.mean())
    keep = np.flatnonzero(npow > POWER_THRESHOLD_DB)
    out = {"f0": f0, "mcep": pysptk.sp2mc(sp, MCEP_ORDER, MCEP_ALPHA), "keep": keep, "seconds": len(x) / sr}
    if len(_cache) >= 128:  # a task run's references stay cached across its systems
        _cache.clear()
    _cache[key] = out
    return out


def aligned(ref: np.ndarray, hyp: np.ndarray, exclude_s=None) -> tuple[dict, dict, np.ndarray]:
    """(ref analysis, hyp analysis, [pairs, 2] frame indices (ref, hyp) of the DTW path)."""
    import librosa

    a, b = analyse(ref), analyse(hyp)
    ratio = b["seconds"] / a["seconds"]
    if not LENGTH_RATIO[0] <= ratio <= LENGTH_RATIO[1]:
        raise MetricError(f"wrong length: output {b['seconds']:.2f} s vs reference {a['seconds']:.2f} s "
                          f"(ratio {ratio:.2f}, allowed {LENGTH_RATIO})")
    if len(a["keep"]) < 2 or len(b["keep"]) < 2:
        raise MetricError("fewer than 2 frames above the power threshold")
    _, wp = librosa.sequence.dtw(X=a["mcep"][a["keep"]].T, Y=b["mcep"][b["keep"]].T, metric="euclidean")
    pairs = np.stack([a["keep"][wp[::-1, 0]], b["keep"][wp[::-1, 1]]], axis=1)
    if exclude_s is not None:
        lo, hi = _span(exclude_s)
        t_ref = pairs[:, 0] * FRAME_MS / 1000.0
        pairs = pairs[(t_ref < lo) | (t_ref > hi)]
        if len(pairs) == 0:
            raise MetricError(f"nothing left outside the excluded span {lo:.2f}-{hi:.2f} s")
    return a, b, pairs


def _span(span) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in span)
    except (TypeError, ValueError):
        raise MetricError(f"the excluded span must be [start, end] in seconds, got {span!r}") from None
    if not 0 <= lo < hi:
        raise MetricError(f"the excluded span must have 0 <= start < end, got {span!r}")
    return lo, hi


def mcd(ref: np.ndarray, hyp: np.ndarray, exclude_s=None) -> float:
    a, b, pairs = aligned(ref, hyp, exclude_s)
    diff = a["mcep"][pairs[:, 0]] - b["mcep"][pairs[:, 1]]
    return float(np.mean(MCD_CONST * np.sqrt(np.sum(diff**2, axis=1))))


def f0_errors(ref: np.ndarray, hyp: np.ndarray) -> dict[str, float]:
    a, b, pairs = aligned(ref, hyp)
    fr, fh = a["f0"][pairs[:, 0]], b["f0"][pairs[:, 1]]
    vr, vh = fr > 0, fh > 0
    if not vr.any():
        raise MetricError("the reference has no voiced frames")
    both = vr & vh
    if not both.any():
        raise MetricError("no frame is voiced in both the output and the reference")
    return {"f0_rmse_cents": float(np.sqrt(np.mean((CENTS_PER_LN * np.log(fh[both] / fr[both])) ** 2))),
            "f0_vuv_error": float(np.mean(vr != vh))}


def _protocol() -> dict:
    return {"analysis": f"pyworld Harvest F0 {F0_FLOOR:g}-{F0_CEIL:g} Hz, CheapTrick FFT {FFT_SIZE}, {FRAME_MS:g} ms frames",
            "mel_cepstrum": f"pysptk.sp2mc order {MCEP_ORDER}, alpha {MCEP_ALPHA}",
            "frames": f"dropped below {POWER_THRESHOLD_DB:g} dB of the mean power",
            "alignment": "DTW on the mel-cepstra (librosa.sequence.dtw, exact; VERSA: fastdtw)",
            "wrong_length": f"output/reference duration outside {LENGTH_RATIO} is an error",
            "reference": "VERSA mcd_f0 (ESPnet / S3PRL-VC evaluate_mcd, evaluate_f0)",
            "versions": versions("pyworld", "pysptk", "librosa")}


@register("mcd")
class MelCepstralDistortion(Metric):
    name = "mcd"
    values = {"mcd": Value("lower", "dB")}
    needs = ("ref_audio", "hyp_audio")

    def one(self, s) -> dict[str, float]:
        return {"mcd": mcd(s.ref_audio, s.hyp_audio, s.exclude_span)}

    def score(self, batch):
        return per_item(batch, self.one)

    def card(self):
        return dict(super().card(), **_protocol(), unit="dB", lower_is_better=True,
                    definition="mean 10/ln10 sqrt(2 sum_d (c_d - c'_d)^2) over DTW-aligned frames, c0..c23",
                    excluded_span="where the item names one (speech_edit: the edited word), reference frames in it "
                                  "are left out")


@register("f0")
class F0Error(Metric):
    """F0 RMSE in cents and V/UV error against the reference singing. The item must carry its
    score (svs): an item without notes is not a singing item, and gets NaN with that reason."""
    name = "f0"
    values = {"f0": Value("lower", "cents / share")}
    needs = ("ref_audio", "hyp_audio")

    def one(self, s) -> dict[str, float]:
        from ...demo.singing import ScoreError, check_score

        try:
            check_score(s.notes)
        except ScoreError as e:
            raise MetricError(str(e)) from None
        return f0_errors(s.ref_audio, s.hyp_audio)

    def score(self, batch):
        return per_item(batch, self.one)

    def card(self):
        return dict(super().card(), **_protocol(), values={"f0_rmse_cents": "lower is better",
                                                           "f0_vuv_error": "share of aligned frames, lower is better"},
                    definition="over DTW-aligned frames voiced in both: sqrt(mean (1200 log2(f_hyp/f_ref))^2)")
