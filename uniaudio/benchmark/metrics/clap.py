"""CLAP score: cosine of L2-normalised CLAP text and audio embeddings, paired per item, mean
over items (LAION CLAP through transformers.ClapModel, 48 kHz). Audio longer than the
model's 10 s window is split into 10 s windows whose embeddings are averaged, so the score is
deterministic (the unfused models' processor would otherwise crop at random)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ... import audio
from ...models import from_pretrained, resolve, size_note
from .base import Metric, MetricError, SR, Value, register, sha256_of, versions

CLAP_SR = 48000
WINDOW = 10 * CLAP_SR
CLAP_PARAMS = 153_000_000  # laion/clap-htsat-unfused, approximately


@register("clap")
class CLAPScore(Metric):
    name = "clap"
    values = {"clap": Value("higher", "cosine")}
    aggregation = "mean over items of cos(text, audio) with L2-normalised embeddings"

    def __init__(self, model: str = "laion/clap-htsat-unfused", text: str = "ref_text", audio_field: str = "hyp_audio",
                 batch_size: int = 8):
        import torch
        from transformers import ClapModel, ClapProcessor

        self.torch, self.model_name = torch, model
        self.processor = from_pretrained(ClapProcessor, model)
        self.model = from_pretrained(ClapModel, model).eval()
        self.text_field, self.audio_field, self.batch_size = text, audio_field, batch_size
        self.needs = (text, audio_field)
        local = resolve(model)
        self.weights = local if Path(local).is_dir() else None

    def _audio_48k(self, s) -> np.ndarray:
        path = s.paths.get(self.audio_field)
        if path and Path(path).exists():
            return audio.load(path, CLAP_SR)[0]  # the original file at CLAP's rate, not a 16 kHz copy
        return audio.resample(getattr(s, self.audio_field), SR, CLAP_SR)

    def window_embeddings(self, wav48: np.ndarray):
        """One CLAP audio embedding per 10 s window of 48 kHz audio, [n_windows, dim] (torch, float32)."""
        windows = [wav48[i:i + WINDOW] for i in range(0, max(len(wav48), 1), WINDOW)]
        windows = [w for w in windows if len(w) >= CLAP_SR // 10] or windows[:1]
        feats = self.processor(audio=windows, sampling_rate=CLAP_SR, return_tensors="pt")
        with self.torch.inference_mode():
            out = self.model.get_audio_features(input_features=feats["input_features"], is_longer=feats.get("is_longer"))
        return getattr(out, "pooler_output", out).float()

    def _embed_audio(self, wav: np.ndarray) -> np.ndarray:
        emb = self.torch.nn.functional.normalize(self.window_embeddings(wav), dim=-1).mean(0)
        return self.torch.nn.functional.normalize(emb, dim=0).numpy()

    def _embed_text(self, texts: list[str]) -> np.ndarray:
        # cap at the text encoder's positions (RoBERTa reserves 2): long captions are truncated, not fatal
        limit = min(self.processor.tokenizer.model_max_length, self.model.config.text_config.max_position_embeddings - 2)
        tok = self.processor(text=texts, return_tensors="pt", padding=True, truncation=True, max_length=limit)
        with self.torch.inference_mode():
            out = self.model.get_text_features(input_ids=tok["input_ids"], attention_mask=tok.get("attention_mask"))
        return self.torch.nn.functional.normalize(getattr(out, "pooler_output", out).float(), dim=-1).numpy()

    def score(self, batch):
        out: list = [None] * len(batch)
        ok = []
        for i, s in enumerate(batch):
            text = getattr(s, self.text_field)
            if not text or not text.strip():
                out[i] = MetricError("empty text")
            elif len(getattr(s, self.audio_field)) < SR // 10:
                out[i] = MetricError("audio shorter than 0.1 s")
            else:
                ok.append(i)
        if ok:
            try:
                texts = self._embed_text([getattr(batch[i], self.text_field) for i in ok])
                for t, i in zip(texts, ok):
                    out[i] = {"clap": float(t @ self._embed_audio(self._audio_48k(batch[i])))}
            except Exception as e:  # a model failure fails these items, with the reason
                for i in ok:
                    out[i] = out[i] if isinstance(out[i], dict) else e
        return out

    def card(self):
        return dict(super().card(), model=self.model_name, checksum=sha256_of(self.weights) if self.weights else None,
                    sample_rate=CLAP_SR, text=self.text_field, audio=self.audio_field,
                    windowing="10 s windows, embeddings averaged", paper_setting="LAION CLAP 630k-audioset-best",
                    versions=versions("transformers", "torch"),
                    **size_note(sum(p.numel() for p in self.model.parameters()), CLAP_PARAMS))
