"""SIM: cosine similarity of speaker embeddings, generated vs prompt (Seed-TTS-eval).
Backends: resemblyzer (offline default, its packaged d-vector model), WavLM x-vector
through transformers (`microsoft/wavlm-base-plus-sv` or a local dir), and Seed-TTS-eval's
WavLM-large + ECAPA-TDNN (`wavlm-large-ecapa`: UniSpeech's `wavlm_large_finetune.pth`, see
nets/ecapa_wavlm.py). The model is part of the result: the same audio scores very differently
under different speaker models."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...models import from_pretrained, resolve, resolve_file, size_note
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


ECAPA_FILE = "wavlm_large_finetune.pth"
ECAPA_URL = "https://drive.google.com/file/d/1-aE1NfzpRCLxA4GUxX9ITI3F9LlbtEGP/view"  # Seed-TTS-eval README
ECAPA_FETCH = "pip install gdown && gdown 1-aE1NfzpRCLxA4GUxX9ITI3F9LlbtEGP -O {dest}"


class _WavLMLargeEcapa:
    """Seed-TTS-eval's SIM model. `model`: a checkpoint path or a name under $UNIAUDIO_MODELS
    holding wavlm_large_finetune.pth. A file that also carries `wavlm_config` (a dict of
    transformers WavLMConfig fields) builds that WavLM instead of WavLM-large: how tests load a
    tiny model through the same code; the card then marks it a test model."""

    name = "wavlm-large-ecapa-tdnn"

    def __init__(self, model: str = "wavlm-large-ecapa"):
        import torch

        from ..nets.ecapa_wavlm import PUBLISHED_PARAMS, WavLMEcapa, from_unispeech

        path = resolve_file(model, ECAPA_FILE, ECAPA_URL, fetch=ECAPA_FETCH)
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # never retried with weights_only=False: the file is not ours
            raise MetricError(f"{path}: cannot be read as a weights-only checkpoint ({type(e).__name__}: "
                              f"{str(e).splitlines()[0][:200]})") from None
        state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
        if not isinstance(state, dict):
            raise MetricError(f"{path}: expected a dict with a 'model' state dict")
        self.torch, self.weights = torch, str(path)
        self.net = WavLMEcapa(ckpt.get("wavlm_config"))
        self.ignored = from_unispeech(state, self.net)
        self.net.eval()
        self.note = size_note(sum(p.numel() for p in self.net.parameters()), PUBLISHED_PARAMS)

    def embed(self, wavs):
        out = []
        for w in wavs:  # one utterance per forward, as the reference does (no padding)
            if len(w) < SR * 0.1:
                raise MetricError("less than 0.1 s of audio")
            with self.torch.inference_mode():
                out.append(self.net(self.torch.from_numpy(np.asarray(w, np.float32))[None])[0].double().numpy())
        return out


@register("sim")
class SIM(Metric):
    name = "sim"
    values = {"sim": Value("higher", "cosine")}
    needs = ("prompt_audio", "hyp_audio")

    def __init__(self, backend: str = "resemblyzer", model: str | None = None):
        self.backend = backend
        if backend == "resemblyzer":
            self.encoder = _Resemblyzer()
        elif backend == "wavlm":
            self.encoder = _WavLMXVector(model or "microsoft/wavlm-base-plus-sv")
        elif backend == "wavlm-large-ecapa":  # the seed-tts-eval preset's: missing means NaN, never another model
            self.encoder = _WavLMLargeEcapa(model or "wavlm-large-ecapa")
        else:
            raise ValueError(f"unknown SIM backend {backend!r}: resemblyzer, wavlm, wavlm-large-ecapa")

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
        extra = {}
        if self.backend == "wavlm-large-ecapa":
            extra = dict(self.encoder.note, checkpoint=w, input="16 kHz (soxr HQ resampling; the reference uses "
                         "torchaudio's sinc resampler), whole clip, one utterance per forward",
                         ignored_checkpoint_entries=len(self.encoder.ignored))
        return dict(super().card(), backend=self.backend, model=self.encoder.name,
                    checksum=sha256_of(w) if w else None, compared="generated vs speaker prompt",
                    versions=versions("resemblyzer", "transformers", "torch"), **extra)
