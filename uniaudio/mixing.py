"""Signal mixing for paired data: the same arithmetic for the benchmark's demo test sets and the
data engine's simulated training pairs (noisy / reverberant / two-speaker speech), so a model
trained on the engine's pairs meets the benchmark's degradations, not look-alikes.

- `add_at_ratio`: a signal + another (noise, an interfering talker) scaled to an exact power
  ratio in dB over the signal's length (the other tiled or cut to fit);
- `room_response` / `reverberate`: a statistical room (Polack's model) of a given RT60, direct
  path at sample 0 so the wet speech stays aligned with the dry one; `measure_rt60` checks it.
Outputs are float32, peak-limited to 0.99 only when they would clip."""

from __future__ import annotations

import numpy as np


def _limit(x: np.ndarray) -> np.ndarray:
    return (x / max(1.0, np.abs(x).max() / 0.99)).astype(np.float32)


def add_at_ratio(signal: np.ndarray, other: np.ndarray, ratio_db: float) -> np.ndarray:
    """signal + other, `other` resized to the signal's length (repeated when shorter) and scaled
    so that power(signal) / power(other) = ratio_db (SNR for noise, SIR for a talker)."""
    other = np.resize(other, len(signal)).astype(np.float64)
    p_other = np.mean(other**2)
    if not p_other > 0:
        raise ValueError("the added signal is silent: no ratio can be set")
    other *= np.sqrt(np.mean(signal**2) / (p_other * 10 ** (ratio_db / 10)))
    return _limit(signal + other)


def room_response(rt60: float, sr: int, seed: int) -> np.ndarray:
    """A room impulse response with reverberation time `rt60`: a direct path, then Gaussian
    noise whose energy decays by 60 dB in `rt60` seconds (Polack's statistical model), 1.2 x
    rt60 long. The direct path is at sample 0, so reverberant speech stays aligned with the dry
    reference (PESQ, STOI and SI-SDR compare them sample by sample)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(1.2 * rt60 * sr)) / sr
    h = rng.standard_normal(len(t)) * np.exp(-3 * np.log(10) * t / rt60)  # amplitude: -60 dB at rt60
    h[0] = 0.0
    h *= 0.6 / np.sqrt(np.sum(h**2))  # reverberant tail at about -4.4 dB against the direct path
    h[0] = 1.0
    return h


def measure_rt60(h: np.ndarray, sr: int) -> float:
    """RT60 of an impulse response by Schroeder backward integration (ISO 3382): the energy
    decay curve's slope between -5 and -25 dB, extrapolated to 60 dB (T20)."""
    energy = np.cumsum(np.asarray(h, np.float64)[::-1] ** 2)[::-1]
    edc = 10 * np.log10(energy / energy[0] + 1e-300)
    i5, i25 = int(np.argmax(edc <= -5)), int(np.argmax(edc <= -25))
    if not 0 < i5 < i25:
        raise ValueError("the decay does not reach -25 dB")
    t = np.arange(i5, i25 + 1) / sr
    slope = np.polyfit(t, edc[i5:i25 + 1], 1)[0]  # dB per second
    return float(-60.0 / slope)


def reverberate(dry: np.ndarray, rt60: float, sr: int, seed: int) -> tuple[np.ndarray, float]:
    """(dry speech in a room of reverberation time rt60, cut to the dry length; the RT60
    measured on the response used)."""
    from scipy.signal import fftconvolve

    h = room_response(rt60, sr, seed)
    wet = fftconvolve(dry.astype(np.float64), h)[: len(dry)]
    return _limit(wet), measure_rt60(h, sr)
