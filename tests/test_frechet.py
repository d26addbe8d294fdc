import numpy as np
import pytest
from scipy import linalg

from uniaudio.benchmark.frechet import FrechetError, Gaussian, fad, fad_inf, fit, frechet_distance


def closed_form(mu1, s1, mu2, s2):
    """Independent formula: Tr term via eigenvalues of S1^{1/2} S2 S1^{1/2} (symmetric PSD)."""
    r1 = linalg.sqrtm(s1).real
    eig = np.linalg.eigvalsh(r1 @ s2 @ r1)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(eig, 0, None)).sum())


def test_diagonal_gaussians_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    v1, v2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    want = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()  # exact for diagonal covariances
    got = frechet_distance(Gaussian(mu1, np.diag(v1), 10), Gaussian(mu2, np.diag(v2), 10))
    assert got == pytest.approx(want, rel=1e-6)


def test_full_covariance_closed_form():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((6, 6)), rng.standard_normal((6, 6))
    s1, s2 = a @ a.T + 0.5 * np.eye(6), b @ b.T + 0.5 * np.eye(6)
    mu1, mu2 = rng.standard_normal(6), rng.standard_normal(6)
    got = frechet_distance(Gaussian(mu1, s1, 100), Gaussian(mu2, s2, 100))
    assert got == pytest.approx(closed_form(mu1, s1, mu2, s2), rel=1e-6)
    assert frechet_distance(Gaussian(mu1, s1, 100), Gaussian(mu1, s1, 100)) == pytest.approx(0.0, abs=1e-6)


def test_fit_is_float64_and_unbiased():
    x = np.random.default_rng(1).standard_normal((500, 4)).astype(np.float32)
    g = fit(x)
    assert g.mu.dtype == np.float64 and g.sigma.dtype == np.float64
    np.testing.assert_allclose(g.sigma, np.cov(x.astype(np.float64), rowvar=False))


def test_fad_inf_recovers_a_planted_intercept():
    """Samples from the reference distribution itself: FAD(n) ~ c/n, so the intercept ~ 0;
    with a shifted mean (true FAD = |shift|^2) the intercept recovers it."""
    rng = np.random.default_rng(2)
    dim = 8
    ref = fit(rng.standard_normal((200_000, dim)))
    shift = np.full(dim, 0.5)  # true FAD = 8 * 0.25 = 2.0
    gen = rng.standard_normal((20_000, dim)) + shift
    res = fad_inf(ref, gen, steps=12, min_n=40)  # small subsets: the 1/n bias dominates the noise
    assert res["fad_inf"] == pytest.approx(2.0, abs=0.1)
    assert res["slope"] > 0 and res["r2"] > 0.9  # the finite-n bias shrinks like 1/n
    plain = fad_inf(ref, gen, steps=12, min_n=40)["fad_at_n"][0]
    assert plain > res["fad_inf"] + 0.2  # FAD at small n overstates the distance


@pytest.mark.parametrize("make,match", [
    (lambda r: r.standard_normal((5, 16)), "more frames than dimensions"),
    (lambda r: np.ones((100, 4)) * 3.0, "constant"),
    (lambda r: np.where(r.random((50, 4)) < 0.01, np.nan, r.standard_normal((50, 4))), "NaN"),
    (lambda r: r.standard_normal(40), r"\[n_frames, dim\]"),
])
def test_bad_embeddings_fail_clearly(make, match):
    rng = np.random.default_rng(3)
    good = rng.standard_normal((400, 4 if make(rng).ndim == 2 and make(rng).shape[-1] == 4 else 16))
    with pytest.raises(FrechetError, match=match):
        fad(good, make(rng))
