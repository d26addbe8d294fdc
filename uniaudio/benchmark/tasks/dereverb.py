"""Dereverberation: reverberant speech -> dry speech.
The task, its demo test set and what makes the demo set."""

from __future__ import annotations

import numpy as np

from ... import audio
from ...manifest import Record
from .base import DemoSuite, Task, metric, output_file, register


DEREVERB_RT60 = (0.4, 0.7, 1.0)  # seconds, cycled over the test utterances


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
    return (wet / max(1.0, np.abs(wet).max() / 0.99)).astype(np.float32), measure_rt60(h, sr)


def demo(s: DemoSuite) -> list[Record]:
    """Each test utterance in a room of RT60 0.4, 0.7 or 1.0 s (in turn)."""
    out = []
    for k, r in enumerate(s.speech):
        dry, sr = audio.load(r.path, 16000)
        rt60 = DEREVERB_RT60[k % len(DEREVERB_RT60)]
        wet, measured = reverberate(dry, rt60, sr, s.seed * 1000 + k)
        path = audio.save(output_file(s.root / "dereverb_wet", r.id, ".wav"), wet, sr)
        out.append(Record(**{**r.__dict__, "extra": {**r.extra, "input_path": str(path), "rt60_s": rt60,
                                                    "rt60_measured_s": round(measured, 3)}}))
    return out


TASK = register(Task("dereverb", "audio", (metric("pesq"), metric("stoi"), metric("si_sdr"), metric("dnsmos")),
                     "reverberant speech (room response of a measured RT60) -> dry speech "
                     "(PESQ-wb, STOI, SI-SDR vs the dry reference; DNSMOS)", {"ref_audio": "path"},
                     input="extra:input_path",
                     systems=("passthrough", "ground-truth"), demo=demo))
