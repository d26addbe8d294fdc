"""SIM: cosine similarity of speaker embeddings, generated vs prompt (Seed-TTS-eval).
Backends: resemblyzer (offline default, its packaged d-vector model) and WavLM x-vector
through transformers (`microsoft/wavlm-base-plus-sv` or a local dir). The model is part of
the result: the same audio scores very differently under different speaker models."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...models import from_pretrained, resolve
from .base import Metric, MetricError, SR, Value, register, sha256_of, versions


class _Resemblyzer:
    name = "resemblyzer-dvector"

    def __init__(self):
        import resemblyzer
        from resemblyzer import VoiceEncoder

        self.enc = VoiceEncoder("cpu", verbose=False)
        self.weights = str(Path(resemblyzer.__file__).parent / "pretrained.pt")

    def embed(self, wavs):
        from resemblyzer import preprocess_wav

        out = []
        for w in wavs:
            x = preprocess_wav(w, SR)  # VAD trims silence; nothing left means no speech
            if len(x) < SR * 0.2:
                raise MetricError("less than 0.2 s of speech after voice-activity trimming")
            out.append(self.enc.embed_utterance(x))
        return out


class _WavLMXVector:
    def __init__(self, model: str):
        import torch
        from transformers import AutoFeatureExtractor, WavLMForXVector

        self.torch, self.name = torch, model
        self.fe = from_pretrained(AutoFeatureExtractor, model)
        self.model = from_pretrained(WavLMForXVector, model).eval()
        local = resolve(model)
        self.weights = local if Path(local).is_dir() else None

    def embed(self, wavs):
        inputs = self.fe(wavs, sampling_rate=SR, return_tensors="pt", padding=True)
        with self.torch.inference_mode():
            emb = self.model(**inputs).embeddings
        return [e.numpy() for e in self.torch.nn.functional.normalize(emb, dim=-1)]


@register("sim")
class SIM(Metric):
    name = "sim"
    values = {"sim": Value("higher", "cosine")}
    needs = ("prompt_audio", "hyp_audio")

    def __init__(self, backend: str = "resemblyzer", model: str = "microsoft/wavlm-base-plus-sv"):
        self.backend = backend
        if backend == "wavlm-large-ecapa":  # named by the seed-tts-eval preset: never replaced by another model
            from ...models import ModelNotFound

            raise ModelNotFound("SIM backend wavlm-large-ecapa (Seed-TTS-eval's WavLM-large + ECAPA-TDNN speaker "
                                "verification, UniSpeech's wavlm_large_finetune.pth from its README's link) is not "
                                "in this uniaudio release yet; the sim of this preset is NaN rather than another "
                                "model's number (sim.backend=wavlm or resemblyzer scores with those, labelled)")
        if backend not in ("resemblyzer", "wavlm"):
            raise ValueError(f"unknown SIM backend {backend!r}: resemblyzer, wavlm, wavlm-large-ecapa")
        self.encoder = _Resemblyzer() if backend == "resemblyzer" else _WavLMXVector(model)

    def score(self, batch):
        out = []
        for s in batch:
            try:
                a, b = self.encoder.embed([s.hyp_audio, s.prompt_audio])
                a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
                out.append({"sim": float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))})
            except Exception as e:
                out.append(e)
        return out

    def card(self):
        w = self.encoder.weights
        return dict(super().card(), backend=self.backend, model=self.encoder.name,
                    checksum=sha256_of(w) if w else None, compared="generated vs speaker prompt",
                    versions=versions("resemblyzer", "transformers", "torch"))
