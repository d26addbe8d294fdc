"""PANNs CNN14 (Kong et al. 2020), the audio tagger of audioldm_eval / AudioLDM's KL and a
FAD embedder. Front end as torchlibrosa computes it: |STFT|^2 (Hann, centred, reflect pad),
Slaney mel filters (librosa's), 10*log10 with amin 1e-10. Checkpoints: the `model` state dict
of `Cnn14_mAP=0.431.pth` (32 kHz) or `Cnn14_16k_mAP=0.438.pth` (16 kHz)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

# (sample rate, n_fft, hop, fmin, fmax) of the published variants
VARIANTS = {32000: (32000, 1024, 320, 50, 14000), 16000: (16000, 512, 160, 50, 8000)}
N_MELS = 64


def slaney_mel(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """librosa.filters.mel(htk=False, norm='slaney'), [n_mels, n_fft//2 + 1]."""
    from transformers.audio_utils import mel_filter_bank

    return mel_filter_bank(n_fft // 2 + 1, n_mels, fmin, fmax, sr, norm="slaney", mel_scale="slaney").T


class ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn1, self.bn2 = nn.BatchNorm2d(cout), nn.BatchNorm2d(cout)

    def forward(self, x, pool):
        x = F.relu_(self.bn1(self.conv1(x)))
        x = F.relu_(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, pool)


class Cnn14(nn.Module):
    def __init__(self, widths=(64, 128, 256, 512, 1024, 2048), embed_dim: int = 2048, n_classes: int = 527,
                 sample_rate: int = 32000):
        super().__init__()
        if sample_rate not in VARIANTS:
            raise ValueError(f"CNN14 exists for sample rates {sorted(VARIANTS)}, not {sample_rate}")
        self.sample_rate, self.n_fft, self.hop, fmin, fmax = VARIANTS[sample_rate]
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        mel = slaney_mel(self.sample_rate, self.n_fft, N_MELS, fmin, fmax)
        self.register_buffer("mel", torch.tensor(mel, dtype=torch.float32), persistent=False)
        self.bn0 = nn.BatchNorm2d(N_MELS)
        chans = (1, *widths)
        self.blocks = nn.ModuleList(ConvBlock(chans[i], chans[i + 1]) for i in range(len(widths)))
        self.fc1 = nn.Linear(widths[-1], embed_dim)
        self.fc_audioset = nn.Linear(embed_dim, n_classes)

    def logmel(self, wav: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(wav, self.n_fft, self.hop, window=self.window, center=True, pad_mode="reflect",
                          return_complex=True).abs() ** 2  # [B, F, T]
        return 10 * torch.log10(torch.clamp(self.mel @ spec, min=1e-10)).transpose(1, 2)  # [B, T, mel]

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """wav [B, samples] at self.sample_rate -> (logits [B, classes], clip embedding [B, D],
        frame embeddings [B, T', C]: the last conv block averaged over frequency)."""
        x = self.logmel(wav)[:, None]  # [B, 1, T, mel]
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)  # normalise per mel bin
        for i, block in enumerate(self.blocks):
            x = block(x, (1, 1) if i == len(self.blocks) - 1 else (2, 2))
        frames = x.mean(3)  # [B, C, T']
        x = frames.max(2).values + frames.mean(2)
        emb = F.relu_(self.fc1(x))
        return self.fc_audioset(emb), emb, frames.transpose(1, 2)

    @classmethod
    def from_state_dict(cls, state: dict, sample_rate: int = 32000) -> "Cnn14":
        """Build with the widths found in `state` (PANNs key names; torchlibrosa's fixed
        front-end buffers are recomputed, not loaded) and load it strictly."""
        state = state.get("model", state)
        renamed = {}
        for k, v in state.items():
            if k.startswith(("spectrogram_extractor.", "logmel_extractor.")):
                continue
            if k.startswith("conv_block"):
                n, rest = k[len("conv_block"):].split(".", 1)
                k = f"blocks.{int(n) - 1}.{rest}"
            renamed[k] = v
        n_blocks = len({k.split(".")[1] for k in renamed if k.startswith("blocks.")})
        widths = tuple(renamed[f"blocks.{i}.conv1.weight"].shape[0] for i in range(n_blocks))
        model = cls(widths, renamed["fc1.weight"].shape[0], renamed["fc_audioset.weight"].shape[0], sample_rate)
        model.load_state_dict(renamed, strict=True)
        return model.eval()

    def to_panns_state_dict(self) -> dict:
        """Inverse of the renaming in from_state_dict (used to write test checkpoints)."""
        out = {}
        for k, v in self.state_dict().items():
            if k.startswith("blocks."):
                _, n, rest = k.split(".", 2)
                k = f"conv_block{int(n) + 1}.{rest}"
            out[k] = v
        return {"model": out}
