"""Non-intrusive MOS. DNSMOS (P.835 sig/bak/ovrl + P.808) from the ONNX models that the
`speechmos` package ships: the offline default, and named DNSMOS in results, never UTMOS."""

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
