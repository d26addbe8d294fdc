"""KL metric: label distributions of an audio tagger on the reference and the generated clip
of the same item, KL(reference || generated) with softmax (audiocraft / audioldm_eval
`kl_softmax`), mean over pairs. An item without its generated clip is unpaired: NaN + reason,
counted as failed in the aggregate, never dropped silently. `paired_kl` scores two folders' logits
matched by id (audioldm_eval's protocol), reporting the unpaired ids of each side."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ... import audio
from .base import Metric, MetricError, SR, Value, register, versions


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max()
    e = np.exp(z)
    return e / e.sum()


def kl(p: np.ndarray, q: np.ndarray) -> float:
    """sum p log(p / q) for probability vectors (terms with p = 0 contribute 0)."""
    mask = p > 0
    return float(np.sum(p[mask] * (np.log(p[mask]) - np.log(np.maximum(q[mask], 1e-300)))))


def paired_kl(reference: dict[str, np.ndarray], generated: dict[str, np.ndarray]) -> dict:
    """reference/generated: id -> logits [n_classes]. Returns per-item values (NaN + reason
    for bad logits), the mean over scored pairs and the unpaired ids of each side."""
    items, errors = {}, {}
    for uid in sorted(set(reference) & set(generated)):
        r, g = np.asarray(reference[uid], np.float64), np.asarray(generated[uid], np.float64)
        if r.shape != g.shape or r.ndim != 1:
            items[uid], errors[uid] = math.nan, f"logit shapes differ or are not 1-D: {r.shape} vs {g.shape}"
        elif not (np.isfinite(r).all() and np.isfinite(g).all()):
            items[uid], errors[uid] = math.nan, "non-finite logits"
        else:
            items[uid] = kl(softmax(r), softmax(g))
    scored = [v for v in items.values() if math.isfinite(v)]
    return {"kl": float(np.mean(scored)) if scored else math.nan, "pairs": len(scored), "items": items,
            "errors": errors, "unpaired_reference": sorted(set(reference) - set(generated)),
            "unpaired_generated": sorted(set(generated) - set(reference))}


@register("kl")
class KLMetric(Metric):
    name = "kl"
    values = {"kl": Value("lower", "nats")}
    needs = ("ref_audio", "hyp_audio")
    aggregation = "mean over paired items of KL(softmax(ref logits) || softmax(generated logits))"

    def __init__(self, tagger: str = "cnn14", model: str | None = None, sample_rate: int | None = None):
        from .. import taggers

        kw = {"model": model} if model else {}
        if sample_rate is not None:  # cnn14's 16 kHz checkpoint: audioldm_eval run at 16 kHz
            kw["sample_rate"] = int(sample_rate)
        self.tagger = taggers.get(tagger, **kw)

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
