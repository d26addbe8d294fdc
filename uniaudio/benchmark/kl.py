"""KL divergence between audio-tagging label distributions of reference and generated clips
(audioldm_eval / audiocraft protocol): softmax of each clip's logits, KL(ref || gen) per pair
matched by id, mean over pairs. Unpaired ids are reported, never silently dropped."""

from __future__ import annotations

import math

import numpy as np


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
