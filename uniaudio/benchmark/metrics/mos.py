"""Non-intrusive MOS. DNSMOS (P.835 sig/bak/ovrl + P.808) from the ONNX models that the
`speechmos` package ships: the offline default, and named DNSMOS in results, never UTMOS.
UTMOS22 strong (the paper setting) from its checkpoint file, architecture in nets/utmos.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Metric, MetricError, SR, Value, register, sha256_of, versions


@register("dnsmos")
class DNSMOS(Metric):
    """DNSMOS as `speechmos.dnsmos.run` computes it (its feature and polynomial code is
    reused), but the 9.01 s windows of every clip in a batch go through each ONNX model in
    one call: the same numbers, and on a GPU (`onnxruntime-gpu`, device=cuda) far fewer
    launches. On CPU the per-window cost does not depend on the batch size."""

    name = "dnsmos"
    values = {"dnsmos": Value("higher", "MOS")}
    needs = ("hyp_audio",)

    def __init__(self, personalized: bool = False, device: str = "cpu", max_windows: int = 32):
        import onnxruntime as ort
        import speechmos
        from speechmos.dnsmos import DNSMOS as _Speechmos

        self.model_type = "dnsmos_personalized" if personalized else "dnsmos"
        root = Path(speechmos.__file__).parent
        self.primary = root / ("pdnsmos_models" if personalized else "dnsmos_models") / "sig_bak_ovr.onnx"
        self.p808 = root / "dnsmos_models" / "model_v8.onnx"
        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise RuntimeError("dnsmos device=cuda needs onnxruntime-gpu (pip install onnxruntime-gpu)")
            providers.insert(0, "CUDAExecutionProvider")
        # speechmos's own class, built around sessions with our providers: its mel features
        # and polynomial mapping are used as they are
        self.ref = _Speechmos.__new__(_Speechmos)
        self.ref.onnx_sess = ort.InferenceSession(str(self.primary), providers=providers)
        self.ref.p808_onnx_sess = ort.InferenceSession(str(self.p808), providers=providers)
        self.providers, self.max_windows = providers, max_windows

    @staticmethod
    def windows(x: np.ndarray) -> list[np.ndarray]:
        """The 9.01 s windows speechmos scores: the clip repeated until it is that long, then
        1 s hops (same arithmetic as speechmos, including its float rounding)."""
        from speechmos.dnsmos import INPUT_LENGTH

        need = int(INPUT_LENGTH * SR)
        while len(x) < need:
            x = np.append(x, x)
        hops = int(np.floor(len(x) / SR) - INPUT_LENGTH) + 1
        segs = [x[int(i * SR): int((i + INPUT_LENGTH) * SR)] for i in range(hops)]
        return [g for g in segs if len(g) >= need]

    def _run(self, segs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """-> raw [n, 3] (sig, bak, ovr) and p808 [n] for each window, max_windows per call."""
        raw, p808 = [], []
        for i in range(0, len(segs), self.max_windows):
            chunk = segs[i:i + self.max_windows]
            x = np.stack(chunk).astype(np.float32)
            mel = np.stack([self.ref.audio_melspec(audio=g[:-160]) for g in chunk]).astype(np.float32)
            raw.append(self.ref.onnx_sess.run(None, {"input_1": x})[0])
            p808.append(self.ref.p808_onnx_sess.run(None, {"input_1": mel})[0][:, 0])
        return np.concatenate(raw), np.concatenate(p808)

    def score(self, batch):
        out: list = [None] * len(batch)
        segs, owner = [], []
        for k, s in enumerate(batch):
            try:
                if len(s.hyp_audio) < SR // 2:
                    raise MetricError(f"DNSMOS needs at least 0.5 s, got {len(s.hyp_audio) / SR:.3f} s")
                # speechmos refuses |x| > 1; resampling can ring a hair past full scale
                w = self.windows(np.clip(s.hyp_audio, -1.0, 1.0))
                segs += w
                owner += [k] * len(w)
            except Exception as e:
                out[k] = e
        if segs:
            try:
                raw, p808 = self._run(segs)
            except Exception as e:  # an ONNX failure fails the items that reached it, not the run
                raw = p808 = None
                for k in set(owner):
                    out[k] = RuntimeError(f"DNSMOS inference failed: {e}")
            if raw is not None:
                owner_a = np.asarray(owner)
                personalized = self.model_type == "dnsmos_personalized"
                for k in sorted(set(owner)):
                    sel = owner_a == k
                    sig, bak, ovr = self.ref.get_polyfit_val(raw[sel, 0], raw[sel, 1], raw[sel, 2], personalized)
                    out[k] = {"dnsmos_ovrl": float(np.mean(ovr)), "dnsmos_sig": float(np.mean(sig)),
                              "dnsmos_bak": float(np.mean(bak)), "dnsmos_p808": float(np.mean(p808[sel]))}
        return out

    def card(self):
        return dict(super().card(), model=f"DNSMOS ({self.model_type}) sig_bak_ovr.onnx + model_v8.onnx",
                    checksum=sha256_of(str(self.primary)), checksum_p808=sha256_of(str(self.p808)),
                    protocol="speechmos.dnsmos: clip repeated to >= 9.01 s, 9.01 s windows at 1 s hops, "
                             "polynomial-mapped P.835 scores and P.808 averaged over windows",
                    providers=self.providers,
                    note="DNSMOS, not UTMOS; input clipped to [-1, 1] after resampling",
                    versions=versions("speechmos", "onnxruntime", "onnxruntime-gpu"))


UTMOS_FILE = "utmos22_strong_step7459_v1.pt"
UTMOS_URL = "https://github.com/tarepan/SpeechMOS/releases/download/v1.0.0/utmos22_strong_step7459_v1.pt"
UTMOS_PARAMS = 97_000_000  # wav2vec 2.0 base + BLSTM + MLP, approximately


@register("utmos")
class UTMOS(Metric):
    """UTMOS22 strong learner (the paper setting for naturalness MOS), from the SpeechMOS
    checkpoint file in the model store. One utterance per forward pass: the model has no
    padding mask, so batching unequal lengths would change the scores."""

    name = "utmos"
    values = {"utmos": Value("higher", "MOS")}
    needs = ("hyp_audio",)

    def __init__(self, model: str = "utmos22-strong"):
        import torch

        from ...models import resolve_file, size_note
        from ..nets.utmos import UTMOS22Strong

        self.torch, self.path = torch, resolve_file(model, UTMOS_FILE, UTMOS_URL)
        self.net = UTMOS22Strong.from_speechmos_state_dict(torch.load(self.path, map_location="cpu", weights_only=True))
        self.note = size_note(sum(p.numel() for p in self.net.parameters()), UTMOS_PARAMS)

    def score(self, batch):
        out = []
        for s in batch:
            try:
                if len(s.hyp_audio) < SR // 10:
                    raise MetricError(f"UTMOS needs at least 0.1 s, got {len(s.hyp_audio) / SR:.3f} s")
                with self.torch.inference_mode():
                    mos = float(self.net(self.torch.from_numpy(np.ascontiguousarray(s.hyp_audio, np.float32))[None])[0])
                if not np.isfinite(mos):
                    raise MetricError("UTMOS returned a non-finite score")
                out.append({"utmos": mos})
            except Exception as e:
                out.append(e)
        return out

    def card(self):
        return dict(super().card(), model="UTMOS22 strong learner (SpeechMOS utmos22_strong_step7459_v1)",
                    checkpoint=str(self.path), checksum=sha256_of(str(self.path)),
                    aggregation="mean over items; per item: mean frame score * 2 + 3",
                    versions=versions("torch", "transformers"), **self.note)
