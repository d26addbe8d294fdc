"""Reference-based signal metrics: PESQ (wb 16 kHz, nb 8 kHz), STOI, ESTOI, SI-SDR, mel distance.

All compare the hypothesis with the reference after the same steps: decode to 16 kHz mono
(the runner), truncate both to the shorter length. PESQ-nb resamples both to 8 kHz."""

from __future__ import annotations

import numpy as np

from ... import audio, dsp
from .base import Metric, MetricError, SR, Value, align, per_item, register, versions


class _Pairwise(Metric):
    needs = ("ref_audio", "hyp_audio")

    def pair(self, ref: np.ndarray, hyp: np.ndarray) -> dict[str, float]:
        raise NotImplementedError

    def score(self, batch):
        return per_item(batch, lambda s: self.pair(*align(s.ref_audio, s.hyp_audio)))

    def card(self):
        return dict(super().card(), alignment="both truncated to the shorter length; no delay compensation")


@register("pesq")
class PESQ(_Pairwise):
    name = "pesq"
    values = {"pesq": Value("higher", "MOS-LQO")}

    def __init__(self, mode: str = "wb"):
        if mode not in ("wb", "nb"):
            raise ValueError("PESQ mode is 'wb' (16 kHz) or 'nb' (8 kHz)")
        self.mode = mode
        self.name = "pesq" if mode == "wb" else "pesq_nb"

    def pair(self, ref, hyp):
        from pesq import pesq
        from pesq.cypesq import PesqError

        fs = 16000 if self.mode == "wb" else 8000
        if fs != SR:
            ref, hyp = audio.resample(ref, SR, fs), audio.resample(hyp, SR, fs)
        if len(ref) < fs // 4:
            raise MetricError(f"PESQ needs at least 0.25 s of audio, got {len(ref) / fs:.3f} s")
        try:
            return {self.name: float(pesq(fs, ref, hyp, self.mode))}
        except PesqError as e:
            raise MetricError(f"pesq: {type(e).__name__}: {e}") from None

    def card(self):
        return dict(super().card(), library="pesq (ITU-T P.862 reference code)", mode=self.mode,
                    sample_rate=16000 if self.mode == "wb" else 8000, versions=versions("pesq"))


@register("stoi")
class STOI(_Pairwise):
    name = "stoi"
    values = {"stoi": Value("higher", "index"), "estoi": Value("higher", "index")}

    def __init__(self, extended: bool = False):
        self.extended = extended
        self.name = "estoi" if extended else "stoi"

    def pair(self, ref, hyp):
        from pystoi import stoi

        if len(ref) < SR * 0.4:  # pystoi warns and returns ~1e-5 for too-short input: refuse it
            raise MetricError(f"{self.name} needs at least 0.4 s of audio, got {len(ref) / SR:.3f} s")
        return {self.name: float(stoi(ref, hyp, SR, extended=self.extended))}

    def card(self):
        return dict(super().card(), library="pystoi", extended=self.extended, versions=versions("pystoi"))


def log_mel(x: np.ndarray, sr: int = SR, n_fft: int = 1024, hop: int = 256, n_mels: int = 80) -> np.ndarray:
    if len(x) < n_fft:
        raise MetricError(f"mel distance needs at least {n_fft} samples, got {len(x)}")
    return dsp.log_mel(x, sr, n_fft, hop, n_mels)


@register("mel_distance")
class MelDistance(_Pairwise):
    name = "mel_distance"
    values = {"mel_distance": Value("lower", "log-mel L1")}

    def pair(self, ref, hyp):
        return {"mel_distance": float(np.mean(np.abs(log_mel(ref) - log_mel(hyp))))}

    def card(self):
        return dict(super().card(), definition="mean |log10 mel(ref) - log10 mel(hyp)|, 80 mels, n_fft 1024, "
                                               "hop 256, floor 1e-10", lower_is_better=True)


@register("si_sdr")
class SISDR(_Pairwise):
    """Scale-invariant SDR (Le Roux et al., 2019), both signals made zero-mean, in dB, with
    torchmetrics' stabiliser: eps (float32's, 1.19e-7) added to both inner products of the
    scale and to both energies of the ratio. So an output equal to the reference scores a large
    finite value (a ceiling of ~80-100 dB for speech, set by its energy) instead of infinity,
    the same number torchmetrics' `scale_invariant_signal_distortion_ratio` gives."""
    name = "si_sdr"
    values = {"si_sdr": Value("higher", "dB")}
    EPS = float(np.finfo(np.float32).eps)

    def pair(self, ref, hyp):
        ref = ref.astype(np.float64) - ref.mean()
        hyp = hyp.astype(np.float64) - hyp.mean()
        energy = ref @ ref
        if energy <= 0:
            raise MetricError("SI-SDR is undefined for a silent reference")
        target = (hyp @ ref + self.EPS) / (energy + self.EPS) * ref
        noise = target - hyp
        return {"si_sdr": float(10 * np.log10((target @ target + self.EPS) / (noise @ noise + self.EPS)))}

    def card(self):
        return dict(super().card(), definition="10 log10 (|a s|^2 + eps) / (|a s - y|^2 + eps), "
                    "a = (<y,s> + eps) / (|s|^2 + eps), zero-mean signals, eps = 1.19e-7 (as torchmetrics)",
                    unit="dB")


@register("lsd")
class LogSpectralDistance(_Pairwise):
    """Log-spectral distance (dB): per STFT frame, the RMS over frequency bins of the difference
    of the two log power spectra; mean over frames. 0 for identical signals; a gain of g on the
    whole output reads |20 log10 g| exactly (where both spectra are above the floor)."""
    name = "lsd"
    values = {"lsd": Value("lower", "dB")}
    n_fft, hop, floor = 2048, 512, 1e-10

    def power(self, x: np.ndarray) -> np.ndarray:
        if len(x) < self.n_fft:
            raise MetricError(f"LSD needs at least {self.n_fft} samples, got {len(x)}")
        frames = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), self.n_fft)[:: self.hop]
        return np.abs(np.fft.rfft(frames * np.hanning(self.n_fft), axis=-1)) ** 2

    def pair(self, ref, hyp):
        if not np.any(ref) or not np.any(hyp):
            raise MetricError("LSD is undefined for a silent reference or output")
        diff = 10 * np.log10(self.power(ref) + self.floor) - 10 * np.log10(self.power(hyp) + self.floor)
        return {"lsd": float(np.mean(np.sqrt(np.mean(diff**2, axis=-1))))}

    def card(self):
        return dict(super().card(), definition="mean_t sqrt(mean_f (10 log10 P_ref - 10 log10 P_hyp)^2)",
                    stft=f"Hann {self.n_fft}, hop {self.hop}, power floor {self.floor:g}", unit="dB")


@register("visqol")
class ViSQOL(_Pairwise):
    """ViSQOL v3 (Google's Virtual Speech Quality Objective Listener) through `visqol-python`, a
    port of the C++ tool that ships its models: speech mode at 16 kHz, MOS-LQO 1..5. The
    polynomial quality mapper by default (the C++ tool defaults to its lattice model, which needs
    `visqol-python[lattice]`: mapper=lattice; never a silent swap between them)."""
    name = "visqol"
    values = {"visqol": Value("higher", "MOS-LQO")}

    def __init__(self, mapper: str = "polynomial"):
        if mapper not in ("polynomial", "lattice"):
            raise ValueError("ViSQOL mapper is 'polynomial' or 'lattice'")
        from visqol.api import VisqolApi  # ImportError: the metric is unavailable, items NaN with why

        self.mapper = mapper
        self.api = VisqolApi()
        self.api.create(mode="speech", use_lattice_model=mapper == "lattice")

    def pair(self, ref, hyp):
        import math

        r = self.api.measure_from_arrays(ref.astype(np.float64), hyp.astype(np.float64), SR)
        if not math.isfinite(r.moslqo):
            raise MetricError(f"ViSQOL gave {r.moslqo}")
        return {"visqol": float(r.moslqo)}

    def card(self):
        return dict(super().card(), mode="speech (16 kHz)", mapper=self.mapper, paper_setting="ViSQOL v3 speech mode",
                    versions=versions("visqol-python"))
