"""8-bit mu-law sample tokenizer (WaveNet's): one codebook of 256 codes per sample.

A cheap, exact reference tokenizer: useful before a codec is trained and as the
simplest case of the interface."""

from __future__ import annotations

import numpy as np

from .base import Tokenizer, register


@register("mulaw")
class MuLawTokenizer(Tokenizer):
    name = "mulaw"
    version = "1"
    n_codebooks = 1
    codebook_size = 256

    def __init__(self, sample_rate: int = 16000):
        self.sample_rate = sample_rate
        self.frame_rate = float(sample_rate)

    def encode(self, wav: np.ndarray, sr: int) -> np.ndarray:
        x = np.clip(self.prepare(wav, sr), -1.0, 1.0)
        mu = self.codebook_size - 1
        y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
        return np.rint((y + 1) / 2 * mu).astype(np.int16)[None, :]

    def decode(self, codes: np.ndarray) -> np.ndarray:
        mu = self.codebook_size - 1
        y = self.check_codes(codes)[0].astype(np.float32) / mu * 2 - 1
        return (np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu).astype(np.float32)
