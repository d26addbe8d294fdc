"""Audio-tagging classifiers for KL: `logits(wav, sr) -> [n_classes]` (pre-softmax).

- cnn14: PANNs CNN14 from its checkpoint file (audioldm_eval's choice; 32 kHz, or 16 kHz with
  `sample_rate=16000`). Paper setting for AudioLDM-style KL.
- ast: Audio Spectrogram Transformer through transformers (`ASTForAudioClassification`),
  16 kHz, AudioSet-finetuned by default.
PaSST (audiocraft's choice) has no maintained package that installs here; its numbers are
close to but not interchangeable with these, so the card always names the tagger."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import audio
from ..models import from_pretrained, resolve, resolve_file, size_note
from ..registry import Registry
from .metrics.base import sha256_of

TAGGERS: Registry = Registry("audio tagger")

CNN14_FILES = {32000: ("Cnn14_mAP=0.431.pth", "https://zenodo.org/record/3987831/files/Cnn14_mAP%3D0.431.pth"),
               16000: ("Cnn14_16k_mAP=0.438.pth", "https://zenodo.org/record/3987831/files/Cnn14_16k_mAP%3D0.438.pth")}
CNN14_PARAMS = 80_753_615


@TAGGERS.register("cnn14")
class Cnn14Tagger:
    def __init__(self, model: str = "panns-cnn14", sample_rate: int = 32000):
        import torch

        from .nets.cnn14 import Cnn14

        if sample_rate not in CNN14_FILES:
            raise ValueError(f"cnn14: sample_rate must be one of {sorted(CNN14_FILES)}, got {sample_rate}")
        path = resolve_file(model, *CNN14_FILES[sample_rate])
        self.torch = torch
        self.net = Cnn14.from_state_dict(torch.load(path, map_location="cpu", weights_only=True), sample_rate)
        self.sample_rate, self.name, self.path = sample_rate, f"panns-cnn14-{sample_rate // 1000}k", str(path)
        # five 2x2 poolings: fewer than 32 STFT frames leave nothing to pool
        self.min_seconds = self.net.hop * 2 ** (len(self.net.blocks) - 1) / sample_rate

    def forward(self, wav: np.ndarray, sr: int):
        x = self.torch.from_numpy(audio.resample(wav, sr, self.sample_rate).astype(np.float32))[None]
        with self.torch.inference_mode():
            return self.net(x)

    def logits(self, wav: np.ndarray, sr: int) -> np.ndarray:
        return self.forward(wav, sr)[0][0].double().numpy()

    def card(self) -> dict:
        n = sum(p.numel() for p in self.net.parameters())
        return {"tagger": self.name, "checkpoint": self.path, "checksum": sha256_of(self.path),
                "tagger_sample_rate": self.sample_rate, **size_note(n, CNN14_PARAMS)}


@TAGGERS.register("ast")
class ASTTagger:
    PARAMS = 86_600_000

    def __init__(self, model: str = "MIT/ast-finetuned-audioset-10-10-0.4593"):
        import torch
        from transformers import ASTFeatureExtractor, ASTForAudioClassification

        self.torch, self.model_name = torch, model
        self.fe = from_pretrained(ASTFeatureExtractor, model)
        self.net = from_pretrained(ASTForAudioClassification, model).eval()
        self.sample_rate, self.name = self.fe.sampling_rate, f"ast:{model}"
        self.min_seconds = 0.1
        local = resolve(model)
        self.weights = local if Path(local).is_dir() else None

    def logits(self, wav: np.ndarray, sr: int) -> np.ndarray:
        x = audio.resample(wav, sr, self.sample_rate)
        feats = self.fe(x, sampling_rate=self.sample_rate, return_tensors="pt")
        with self.torch.inference_mode():
            return self.net(**feats).logits[0].double().numpy()

    def card(self) -> dict:
        n = sum(p.numel() for p in self.net.parameters())
        return {"tagger": self.name, "checksum": sha256_of(self.weights) if self.weights else None,
                "tagger_sample_rate": self.sample_rate, **size_note(n, self.PARAMS)}


def get(name: str, **kw):
    return TAGGERS.get(name, **kw)
