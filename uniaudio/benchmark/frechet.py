"""Fréchet Audio Distance math: Gaussian fits in float64, the Fréchet distance with a stable
matrix square root, and FAD-inf (fadtk: fit FAD against 1/n and extrapolate to n -> inf).

Embedding models live elsewhere; everything here takes [n_frames, dim] arrays."""

from __future__ import annotations

from dataclasses import dataclass

import math

import numpy as np
from scipy import linalg


class FrechetError(ValueError):
    """Inputs on which a Fréchet distance would be meaningless; the message says why."""


@dataclass(frozen=True)
class Gaussian:
    mu: np.ndarray
    sigma: np.ndarray
    n: int


def fit(emb: np.ndarray) -> Gaussian:
    """Mean and covariance (float64, unbiased) of frame embeddings [n, dim]."""
    x = np.asarray(emb, dtype=np.float64)
    if x.ndim != 2:
        raise FrechetError(f"embeddings must be [n_frames, dim], got shape {x.shape}")
    if not np.isfinite(x).all():
        raise FrechetError(f"embeddings contain {int((~np.isfinite(x)).sum())} NaN/Inf values")
    n, d = x.shape
    if n < 2:
        raise FrechetError(f"need at least 2 frames to fit a Gaussian, got {n}")
    if n <= d:
        raise FrechetError(f"{n} frames for {d} dimensions: the covariance is singular (need more frames than "
                           "dimensions); use more or longer audio")
    sigma = np.cov(x, rowvar=False)
    if np.trace(sigma) <= 1e-12:
        raise FrechetError("embeddings are constant (zero variance): silent or constant audio has no "
                           "distribution to compare")
    return Gaussian(x.mean(0), sigma, n)


def frechet_distance(a: Gaussian, b: Gaussian, eps: float = 1e-6, max_imag: float = 1e-3) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2}).

    The square root is scipy's `sqrtm`; when the product is near-singular (non-finite
    result) eps is added to both diagonals, as pytorch-fid and fadtk do. A result whose
    imaginary part is not negligible is refused rather than silently truncated."""
    if a.mu.shape != b.mu.shape:
        raise FrechetError(f"dimension mismatch: {a.mu.shape} vs {b.mu.shape}")
    diff = a.mu - b.mu
    covmean = linalg.sqrtm(a.sigma @ b.sigma)
    if not np.isfinite(covmean).all():
        offset = np.eye(a.sigma.shape[0]) * eps
        covmean = linalg.sqrtm((a.sigma + offset) @ (b.sigma + offset))
        if not np.isfinite(covmean).all():
            raise FrechetError("matrix square root is not finite even with the epsilon offset")
    if np.iscomplexobj(covmean):
        imag = np.max(np.abs(covmean.imag))
        if imag > max_imag:
            raise FrechetError(f"matrix square root has a large imaginary component ({imag:.3g}); the covariances "
                               "are ill-conditioned (constant or too few frames?)")
        covmean = covmean.real
    value = float(diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2 * np.trace(covmean))
    tol = 1e-6 * (1 + abs(np.trace(a.sigma)))  # the matrix square root's rounding, either side of 0
    if value < -tol:
        _negative(value)
    return 0.0 if value <= tol else value  # identical statistics give exactly 0, not 8e-11 vs 4e-11


def _negative(value: float) -> float:
    raise FrechetError(f"Fréchet distance came out negative ({value:.4g}): numerical breakdown")


def fad(reference: np.ndarray, generated: np.ndarray) -> float:
    return frechet_distance(fit(reference), fit(generated))


def fad_inf(reference: Gaussian, generated: np.ndarray, steps: int = 10, min_n: int | None = None,
            seed: int = 0) -> dict:
    """FAD-inf: FAD of bootstrap subsets of the generated frames at sizes n, fitted linearly
    against 1/n; the intercept is the value for infinitely many samples. It is an extrapolation,
    so where the true FAD is about 0 (generated ~ reference, e.g. a permutation of the reference
    set) it can come out below 0, as fadtk's does: `se` is the intercept's standard error from
    the fit, and a value within ~2 se of 0 reads as 0."""
    x = np.asarray(generated, dtype=np.float64)
    n_total, dim = x.shape
    lo = min_n or max(dim + 2, n_total // 5)
    if lo >= n_total:
        raise FrechetError(f"FAD-inf needs more than {lo} generated frames, got {n_total}")
    rng = np.random.default_rng(seed)
    ns = np.linspace(lo, n_total, steps).astype(int)
    values = np.array([frechet_distance(reference, fit(x[rng.choice(n_total, n, replace=True)])) for n in ns])
    inv = 1.0 / ns
    slope, intercept = np.polyfit(inv, values, 1)
    pred = slope * inv + intercept
    ss_res, ss_tot = float(((values - pred) ** 2).sum()), float(((values - values.mean()) ** 2).sum())
    sxx = float(((inv - inv.mean()) ** 2).sum())  # OLS: se(intercept)^2 = s^2 (1/k + mean(x)^2 / Sxx)
    se = math.sqrt(ss_res / max(1, len(ns) - 2) * (1 / len(ns) + inv.mean() ** 2 / sxx)) if sxx > 0 else math.nan
    return {"fad_inf": float(intercept), "slope": float(slope), "r2": 1 - ss_res / ss_tot if ss_tot > 0 else 1.0,
            "se": se, "n": ns.tolist(), "fad_at_n": values.tolist()}
