"""95% confidence intervals for leaderboard values, recomputed from the per-item scores.

- A mean of per-item scores (PESQ, STOI, SIM, MOS, CLAP, KL, accuracy, ...): mean +- 1.96 x
  the standard error (sample sd / sqrt(n)) when n >= 30; a seeded percentile bootstrap of the
  mean below that, where the normal approximation is poor.
- A corpus error rate (WER, CER = sum of errors / sum of reference words): a seeded percentile
  bootstrap over utterances of that ratio (Bisani & Ney 2004), so long utterances weigh as in
  the value itself.
- A set-level value (FAD, BLEU/CIDEr over the set) has no per-item scores: no interval (null),
  said so in the method.
Every bootstrap uses its own fixed seed and `B` resamples, so a republish gives the same bytes."""

from __future__ import annotations

import math

import numpy as np

Z95 = 1.959963984540054
NORMAL_MIN_N = 30
BOOTSTRAP_B = 1000


def mean_ci(values: list[float], seed: int = 0, b: int = BOOTSTRAP_B) -> dict:
    v = np.asarray([x for x in values if isinstance(x, (int, float)) and math.isfinite(x)], np.float64)
    n = len(v)
    if n == 0:
        return {"value": None, "ci95": None, "n": 0, "method": "no finite per-item value"}
    mean = float(v.mean())
    if n == 1:
        return {"value": mean, "ci95": None, "n": 1, "method": "one item: no interval"}
    if n >= NORMAL_MIN_N:
        se = float(v.std(ddof=1) / math.sqrt(n))
        return {"value": mean, "ci95": [mean - Z95 * se, mean + Z95 * se], "n": n, "se": se,
                "method": "mean +- 1.96 SE"}
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, n, (b, n))].mean(1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"value": mean, "ci95": [float(lo), float(hi)], "n": n,
            "method": f"percentile bootstrap of the mean, {b} resamples, seed {seed} (n < {NORMAL_MIN_N})"}


def ratio_ci(errors: list[float], totals: list[float], seed: int = 0, b: int = BOOTSTRAP_B) -> dict:
    e, t = np.asarray(errors, np.float64), np.asarray(totals, np.float64)
    n = len(e)
    if n == 0 or t.sum() <= 0:
        return {"value": None, "ci95": None, "n": n, "method": "no scored item"}
    value = float(e.sum() / t.sum())
    if n == 1:
        return {"value": value, "ci95": None, "n": 1, "method": "one item: no interval"}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, (b, n))
    den = t[idx].sum(1)
    ratios = e[idx].sum(1) / np.where(den > 0, den, np.nan)
    lo, hi = np.nanpercentile(ratios, [2.5, 97.5])
    return {"value": value, "ci95": [float(lo), float(hi)], "n": n,
            "method": f"percentile bootstrap of the corpus ratio over utterances, {b} resamples, seed {seed}"}
