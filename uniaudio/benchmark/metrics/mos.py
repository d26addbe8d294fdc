"""Non-intrusive MOS. DNSMOS (P.835 sig/bak/ovrl + P.808) from the ONNX models that the
`speechmos` package ships: the offline default, and named DNSMOS in results, never UTMOS.
UTMOS22 strong (the paper setting) from its checkpoint file, architecture in nets/utmos.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import SR, Metric, MetricError, register, sha256_of, versions


@register("dnsmos")
class DNSMOS(Metric):
    name = "dnsmos"
    needs = ("hyp_audio",)

    def __init__(self, personalized: bool = False):
        self.model_type = "dnsmos_personalized" if personalized else "dnsmos"

    def score(self, batch):
        from speechmos import dnsmos

        out = []
        for s in batch:
            try:
                if len(s.hyp_audio) < SR // 2:
                    raise MetricError(f"DNSMOS needs at least 0.5 s, got {len(s.hyp_audio) / SR:.3f} s")
                # speechmos refuses |x| > 1; resampling can ring a hair past full scale
                r = dnsmos.run(np.clip(s.hyp_audio, -1.0, 1.0), SR, model_type=self.model_type)
                out.append({"dnsmos_ovrl": float(r["ovrl_mos"]), "dnsmos_sig": float(r["sig_mos"]),
                            "dnsmos_bak": float(r["bak_mos"]), "dnsmos_p808": float(r["p808_mos"])})
            except Exception as e:
                out.append(e)
        return out

    def card(self):
        import speechmos

        root = Path(speechmos.__file__).parent
        sub = "pdnsmos_models" if self.model_type == "dnsmos_personalized" else "dnsmos_models"
        return dict(super().card(), model=f"DNSMOS ({self.model_type}) sig_bak_ovr.onnx + model_v8.onnx",
                    checksum=sha256_of(str(root / sub / "sig_bak_ovr.onnx")),
                    checksum_p808=sha256_of(str(root / "dnsmos_models" / "model_v8.onnx")),
                    note="DNSMOS, not UTMOS; input clipped to [-1, 1] after resampling", versions=versions("speechmos", "onnxruntime"))


UTMOS_FILE = "utmos22_strong_step7459_v1.pt"
UTMOS_URL = "https://github.com/tarepan/SpeechMOS/releases/download/v1.0.0/utmos22_strong_step7459_v1.pt"
UTMOS_PARAMS = 97_000_000  # wav2vec 2.0 base + BLSTM + MLP, approximately


@register("utmos")
class UTMOS(Metric):
    """UTMOS22 strong learner (the paper setting for naturalness MOS), from the SpeechMOS
    checkpoint file in the model store. One utterance per forward pass: the model has no
    padding mask, so batching unequal lengths would change the scores."""

    name = "utmos"
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
