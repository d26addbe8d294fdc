"""Non-intrusive MOS. DNSMOS (P.835 sig/bak/ovrl + P.808) from the ONNX models that the
`speechmos` package ships (`uniaudio/dnsmos.py`): the offline default, and named DNSMOS in
results, never UTMOS.
UTMOS22 strong (the paper setting) from its checkpoint file, architecture in nets/utmos.py."""

from __future__ import annotations


import numpy as np

from ...dnsmos import DNSMOSScorer
from .base import Metric, MetricError, SR, Value, register, sha256_of, versions


@register("dnsmos")
class DNSMOS(Metric):
    """DNSMOS through `uniaudio.dnsmos.DNSMOSScorer`: speechmos's numbers (its features and
    polynomial mapping), the 9.01 s windows of a whole batch through each ONNX model in one call."""

    name = "dnsmos"
    values = {"dnsmos": Value("higher", "MOS")}
    needs = ("hyp_audio",)
    windows = staticmethod(DNSMOSScorer.windows)

    def __init__(self, personalized: bool = False, device: str = "cpu", max_windows: int = 32):
        self.scorer = DNSMOSScorer(personalized, device, max_windows)

    def score(self, batch):
        return [MetricError(str(r)) if isinstance(r, ValueError) else r
                for r in self.scorer.score([s.hyp_audio for s in batch])]

    def card(self):
        sc = self.scorer
        return dict(super().card(), model=f"DNSMOS ({sc.model_type}) sig_bak_ovr.onnx + model_v8.onnx",
                    checksum=sha256_of(str(sc.primary)), checksum_p808=sha256_of(str(sc.p808)),
                    protocol="speechmos.dnsmos: clip repeated to >= 9.01 s, 9.01 s windows at 1 s hops, "
                             "polynomial-mapped P.835 scores and P.808 averaged over windows",
                    providers=sc.providers,
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
