"""KL metric: label distributions of an audio tagger on the reference and the generated clip
of the same item, KL(reference || generated) with softmax (audiocraft / audioldm_eval
`kl_softmax`), mean over pairs. An item without its generated clip is unpaired: NaN + reason,
counted as failed in the aggregate, never dropped silently."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ... import audio
from ..kl import kl, softmax
from .base import SR, Metric, MetricError, register, versions


@register("kl")
class KLMetric(Metric):
    name = "kl"
    needs = ("ref_audio", "hyp_audio")
    aggregation = "mean over paired items of KL(softmax(ref logits) || softmax(generated logits))"

    def __init__(self, tagger: str = "cnn14", model: str | None = None):
        from .. import taggers

        self.tagger = taggers.get(tagger, **({"model": model} if model else {}))

    def _wav(self, s, field):
        path = s.paths.get(field)
        if path and Path(path).exists():  # the source file at the tagger's rate, not a 16 kHz copy
            return audio.load(path, self.tagger.sample_rate)[0], self.tagger.sample_rate
        return getattr(s, field), SR

    def score(self, batch):
        out = []
        for s in batch:
            try:
                probs = []
                for field in ("ref_audio", "hyp_audio"):
                    wav, sr = self._wav(s, field)
                    if len(wav) < self.tagger.min_seconds * sr:
                        raise MetricError(f"{field} shorter than {self.tagger.min_seconds:.2f} s")
                    if not np.abs(wav).max() > 0:
                        raise MetricError(f"{field} is silent: a tagger's labels of silence mean nothing")
                    logits = self.tagger.logits(wav, sr)
                    if not np.isfinite(logits).all():
                        raise MetricError(f"{field}: tagger returned non-finite logits")
                    probs.append(softmax(logits))
                out.append({"kl": kl(probs[0], probs[1])})
            except Exception as e:  # recorded as NaN + reason by the runner
                out.append(e)
        return out

    def card(self):
        return dict(super().card(), **self.tagger.card(), sample_rate=self.tagger.sample_rate, softmax=True, direction="KL(reference || generated)",
                    paper_setting="PANNs CNN14 (audioldm_eval) or PaSST (audiocraft)", versions=versions("torch"))
