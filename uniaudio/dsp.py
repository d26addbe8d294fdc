"""Small signal-processing helpers shared by metrics and codec training."""

from __future__ import annotations

import numpy as np


def mel_filterbank(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Area-normalised triangular filters on the HTK mel scale, [n_mels, n_fft // 2 + 1]."""
    def hz2mel(f):
        return 2595 * np.log10(1 + f / 700)

    def mel2hz(m):
        return 700 * (10 ** (m / 2595) - 1)

    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    edges = mel2hz(np.linspace(hz2mel(0), hz2mel(sr / 2), n_mels + 2))
    fb = np.zeros((n_mels, len(freqs)))
    for i in range(n_mels):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        fb[i] = np.clip(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), 0, None)
        fb[i] *= 2 / (hi - lo)
    return fb


def log_mel(x: np.ndarray, sr: int, n_fft: int, hop: int, n_mels: int) -> np.ndarray:
    """log10 mel power of Hann-windowed frames x[i*hop : i*hop + n_fft] (no padding: the caller
    pads for centring), floored at 1e-10 -> [frames, n_mels]. len(x) must be >= n_fft."""
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop] * np.hanning(n_fft)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    return np.log10(np.maximum(power @ mel_filterbank(sr, n_fft, n_mels).T, 1e-10))
