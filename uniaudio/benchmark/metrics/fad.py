"""FAD as a set-level metric: embeddings of all reference files vs all generated files,
Gaussian fits, Fréchet distance (benchmark.frechet). Reference statistics are cached under
a key made of the files' content hashes, the embedder (name and weights checksum) and its
sample rate, so a changed file or model never reuses stale statistics."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ... import audio
from .. import embedders
from ..tasks import output_file
from ..frechet import FrechetError, Gaussian, fad_inf, fit, frechet_distance
from .base import SET_METRICS, Value, register, sha256_of, versions


@register("fad", SET_METRICS)
class FAD:
    name = "fad"
    values = {"fad": Value("lower")}  # fad_inf: the same, extrapolated to infinitely many clips
    set_level = True

    def __init__(self, embedder: str = "whisper-encoder", model: str | None = None):
        self.embedder = embedders.get(embedder, **({"model": model} if model else {}))

    def _embed_all(self, paths: list[str]) -> np.ndarray:
        frames = []
        for p in paths:
            wav, sr = audio.load(p, self.embedder.sample_rate)
            frames.append(self.embedder.embed(wav, sr))
        return np.concatenate(frames)

    def reference_stats(self, paths: list[str], cache_dir: Path) -> tuple[Gaussian, bool]:
        # the embedder's weights checksum too: same name with other weights must not reuse stats
        key = hashlib.sha256(json.dumps([sorted(sha256_of(p) for p in paths), self.embedder.name,
                                         self.embedder.checksum, self.embedder.sample_rate]).encode()).hexdigest()[:24]
        cache = cache_dir / f"fad-ref-{key}.npz"
        if cache.exists():
            z = np.load(cache)
            return Gaussian(z["mu"], z["sigma"], int(z["n"])), True
        g = fit(self._embed_all(paths))
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, mu=g.mu, sigma=g.sigma, n=g.n)
        tmp.replace(cache)
        return g, False

    def score_set(self, rows: list[dict], sys_dir: Path, cache_dir: Path) -> dict:
        """References: every row's `path` (the whole test set, so cached stats stay valid);
        generated: the rows' outputs that exist."""
        ref, cached = self.reference_stats([r["path"] for r in rows], cache_dir)
        hyp_paths = [output_file(sys_dir, r["id"], ".wav") for r in rows]
        frames = self._embed_all([str(p) for p in hyp_paths if p.exists()])
        hyp = fit(frames)
        out = {"fad": frechet_distance(ref, hyp), "ref_frames": ref.n, "hyp_frames": hyp.n,
               "reference_stats_cached": cached}
        try:  # FAD-inf needs several subset sizes above the embedding dimension; small sets get the reason
            inf = fad_inf(ref, frames)
            out.update(fad_inf=inf["fad_inf"], fad_inf_se=inf["se"], fad_inf_slope=inf["slope"], fad_inf_r2=inf["r2"])
        except FrechetError as e:
            out.update(fad_inf=float("nan"), fad_inf_error=str(e))
        return out

    def card(self) -> dict:
        return {"name": "fad", "embedder": self.embedder.name, "checksum": self.embedder.checksum,
                "sample_rate": self.embedder.sample_rate,
                "aggregation": "one value per set: Fréchet distance of float64 Gaussian fits of all frame embeddings; "
                               "fad_inf: intercept of FAD vs 1/n over bootstrapped subsets (fadtk), with its standard error "
                               "from the fit (fad_inf_se); an extrapolation, so it can be below 0 where the sets "
                               "match (true FAD ~ 0): within ~2 se of 0 it reads as 0",
                "paper_setting": "VGGish 16 kHz or LAION CLAP 48 kHz", "versions": versions("scipy", "numpy"),
                **getattr(self.embedder, "note", {})}
