"""Pretrained neural codecs through transformers (EnCodec, DAC, Mimi) behind the
Tokenizer interface, loaded from a local dir, $UNIAUDIO_MODELS or the HF cache.

    get("encodec", model="facebook/encodec_24khz", n_codebooks=8)   # 6 kbps
    get("dac", model="descript/dac_16khz", n_codebooks=9)
    get("mimi", model="kyutai/mimi", n_codebooks=8)
"""

from __future__ import annotations

import math

import numpy as np

from ..models import from_pretrained
from .base import Tokenizer, TokenizerError, register


class HFCodec(Tokenizer):
    kind = ""
    default_model = ""

    def __init__(self, model: str | None = None, n_codebooks: int | None = None, device: str | None = None,
                 max_batch_seconds: float = 240.0):
        import torch

        self.torch = torch
        self.model_name = model or self.default_model
        self.model = from_pretrained(self._model_cls(), self.model_name).eval()
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device)
        cfg = self.model.config
        self.sample_rate = int(cfg.sampling_rate)
        self.codebook_size = int(cfg.codebook_size)
        self.frame_rate = float(self._frame_rate(cfg))
        self.hop = int(round(self.sample_rate / self.frame_rate))
        self.n_codebooks = int(n_codebooks or self._max_codebooks(cfg))
        if not 1 <= self.n_codebooks <= self._max_codebooks(cfg):
            raise TokenizerError(f"{self.kind}: n_codebooks must be in 1..{self._max_codebooks(cfg)}")
        self.name = self.kind
        self.version = f"{self.model_name}@{self.n_codebooks}q"
        self.max_batch_seconds = max_batch_seconds

    # --- per-family details -------------------------------------------------
    def _model_cls(self): ...
    def _frame_rate(self, cfg) -> float: ...
    def _max_codebooks(self, cfg) -> int: ...
    def _encode(self, x, mask): ...  # x [B,1,T] -> codes [B, n_q, F]
    def _decode(self, codes): ...  # codes [B, n_q, F] -> wav [B, T]

    # --- interface ----------------------------------------------------------
    def frames_for(self, n_samples: int) -> int:
        return math.ceil(n_samples / self.hop)

    def encode(self, wav: np.ndarray, sr: int) -> np.ndarray:
        return self.encode_batch([wav], sr)[0]

    def encode_batch(self, wavs: list[np.ndarray], sr: int) -> list[np.ndarray]:
        prepared = [self.prepare(w, sr) for w in wavs]
        out: list[np.ndarray | None] = [None] * len(prepared)
        order = sorted(range(len(prepared)), key=lambda i: len(prepared[i]))  # similar lengths batch together
        budget = int(self.max_batch_seconds * self.sample_rate)
        start = 0
        while start < len(order):
            end = start + 1
            while end < len(order) and len(prepared[order[end]]) * (end - start + 1) <= budget:
                end += 1
            idx = order[start:end]
            longest = len(prepared[idx[-1]])
            x = np.zeros((len(idx), 1, longest), np.float32)
            mask = np.zeros((len(idx), longest), np.int64)
            for b, i in enumerate(idx):
                x[b, 0, : len(prepared[i])] = prepared[i]
                mask[b, : len(prepared[i])] = 1
            with self.torch.inference_mode():
                codes = self._encode(self.torch.from_numpy(x).to(self.device),
                                     self.torch.from_numpy(mask).to(self.device)).cpu().numpy()
            for b, i in enumerate(idx):
                out[i] = codes[b, :, : self.frames_for(len(prepared[i]))].astype(np.int64)
            start = end
        return out

    def decode(self, codes: np.ndarray) -> np.ndarray:
        c = self.check_codes(codes)
        with self.torch.inference_mode():
            wav = self._decode(self.torch.from_numpy(c[None].astype(np.int64)).to(self.device))
        return wav[0, : c.shape[1] * self.hop].float().cpu().numpy().astype(np.float32)

    def describe(self) -> dict:
        return dict(super().describe(), model=self.model_name)


@register("encodec")
class EncodecTokenizer(HFCodec):
    kind, default_model = "encodec", "facebook/encodec_24khz"

    def _model_cls(self):
        from transformers import EncodecModel
        return EncodecModel

    def _frame_rate(self, cfg):
        return cfg.frame_rate

    def _max_codebooks(self, cfg):
        return cfg.num_quantizers

    def _bandwidth(self) -> float:
        """The smallest target bandwidth whose quantizer count covers n_codebooks."""
        q = self.model.quantizer
        for bw in sorted(self.model.config.target_bandwidths):
            if min(q.get_num_quantizers_for_bandwidth(bw), self.model.config.num_quantizers) >= self.n_codebooks:
                return bw
        return max(self.model.config.target_bandwidths)

    def _encode(self, x, mask):
        out = self.model.encode(x, padding_mask=mask, bandwidth=self._bandwidth())
        return out.audio_codes[0][:, : self.n_codebooks]  # [chunks=1, B, n_q, F] -> [B, n_q, F]

    def _decode(self, codes):
        return self.model.decode(codes[None], [None]).audio_values[:, 0]


@register("dac")
class DacTokenizer(HFCodec):
    kind, default_model = "dac", "descript/dac_16khz"

    def _model_cls(self):
        from transformers import DacModel
        return DacModel

    def _frame_rate(self, cfg):
        return cfg.sampling_rate / cfg.hop_length

    def _max_codebooks(self, cfg):
        return cfg.n_codebooks

    def frames_for(self, n_samples: int) -> int:
        return n_samples // self.hop  # DAC's encoder drops a trailing partial frame

    def _encode(self, x, mask):
        return self.model.encode(x, n_quantizers=self.n_codebooks).audio_codes[:, : self.n_codebooks]

    def _decode(self, codes):
        return self.model.decode(audio_codes=codes).audio_values


@register("mimi")
class MimiTokenizer(HFCodec):
    kind, default_model = "mimi", "kyutai/mimi"

    def _model_cls(self):
        from transformers import MimiModel
        return MimiModel

    def _frame_rate(self, cfg):
        return cfg.frame_rate

    def _max_codebooks(self, cfg):
        return cfg.num_quantizers

    def _encode(self, x, mask):
        return self.model.encode(x, padding_mask=mask, num_quantizers=self.n_codebooks).audio_codes

    def _decode(self, codes):
        return self.model.decode(codes).audio_values[:, 0]
