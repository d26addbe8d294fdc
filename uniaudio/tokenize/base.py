"""The audio tokenizer interface and the registry the pipeline and trainer use."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from .. import audio
from ..registry import Registry


class TokenizerError(ValueError):
    pass


class Tokenizer(ABC):
    """encode(wav, sr) -> int array [n_codebooks, frames]; decode(codes) -> float32 wav."""

    name: str
    version: str = "1"
    sample_rate: int
    frame_rate: float
    n_codebooks: int
    codebook_size: int
    # rows that hold one code for `hold` consecutive frames (a lower-rate stream written on the
    # frame grid, e.g. the factorized tokenizer's 6.25 Hz semantic rows at 12.5 Hz): decode
    # requires them held, so a generator copies them and ends audio only at whole groups
    held_rows: tuple[int, ...] = ()
    hold: int = 1

    def prepare(self, wav: np.ndarray, sr: int) -> np.ndarray:
        """Check and resample input audio: wrong rates are resampled, never rejected."""
        wav = np.asarray(wav, dtype=np.float32)
        if wav.ndim == 2:
            wav = audio.to_mono(wav)
        if wav.ndim != 1 or wav.size == 0:
            raise TokenizerError(f"{self.name}: expected non-empty mono audio, got shape {wav.shape}")
        if not np.isfinite(wav).all():
            raise TokenizerError(f"{self.name}: audio has NaN/Inf samples")
        return audio.resample(wav, sr, self.sample_rate)

    def check_codes(self, codes: np.ndarray) -> np.ndarray:
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[0] != self.n_codebooks:
            raise TokenizerError(f"{self.name}: codes must be [{self.n_codebooks}, frames], got {codes.shape}")
        if codes.size and (codes.min() < 0 or codes.max() >= self.codebook_size):
            raise TokenizerError(f"{self.name}: codes out of range [0, {self.codebook_size}): "
                                 f"min {codes.min()} max {codes.max()}")
        return codes

    @abstractmethod
    def encode(self, wav: np.ndarray, sr: int) -> np.ndarray: ...

    @abstractmethod
    def decode(self, codes: np.ndarray) -> np.ndarray: ...

    def encode_batch(self, wavs: list[np.ndarray], sr: int) -> list[np.ndarray]:
        """Override for batched inference; the default loops."""
        return [self.encode(w, sr) for w in wavs]

    def describe(self) -> dict:
        return {"name": self.name, "version": self.version, "sample_rate": self.sample_rate,
                "frame_rate": self.frame_rate, "n_codebooks": self.n_codebooks, "codebook_size": self.codebook_size}


REGISTRY: Registry[Tokenizer] = Registry("tokenizer")
register, get = REGISTRY.register, REGISTRY.get
