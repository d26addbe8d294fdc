"""VGGish (Hershey et al. 2017), the FAD embedder of the original FAD paper, in the layout of
torchvggish's `vggish-10086976.pth`. Front end as the TF reference (vggish_input): 16 kHz,
25 ms periodic-Hann frames, 10 ms hop, |FFT 512|, 64 HTK mel bands 125-7500 Hz built in mel
space, log(mel + 0.01), non-overlapping 0.96 s examples of 96 frames. Embeddings are taken
before the last ReLU and without PCA, as fadtk and frechet_audio_distance do."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

SR, WIN, HOP, N_FFT, N_MELS, EXAMPLE = 16000, 400, 160, 512, 64, 96


def _hz_to_mel(f):
    return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def tf_mel_matrix(n_mels=N_MELS, n_bins=N_FFT // 2 + 1, sr=SR, lo=125.0, hi=7500.0) -> np.ndarray:
    """mel_features.spectrogram_to_mel_matrix: triangles in mel space, DC bin zeroed, [n_bins, n_mels]."""
    bins_mel = _hz_to_mel(np.linspace(0.0, sr / 2, n_bins))
    edges = np.linspace(_hz_to_mel(lo), _hz_to_mel(hi), n_mels + 2)
    w = np.empty((n_bins, n_mels))
    for i in range(n_mels):
        lower, center, upper = edges[i:i + 3]
        w[:, i] = np.maximum(0.0, np.minimum((bins_mel - lower) / (center - lower), (upper - bins_mel) / (upper - center)))
    w[0, :] = 0.0
    return w


def examples(wav16k: np.ndarray) -> np.ndarray:
    """Log-mel examples [n, 96, 64] (float32). Audio shorter than one example gives n = 0."""
    x = np.asarray(wav16k, dtype=np.float64)
    if len(x) < WIN:
        return np.zeros((0, EXAMPLE, N_MELS), np.float32)
    n_frames = 1 + (len(x) - WIN) // HOP
    idx = np.arange(WIN)[None] + HOP * np.arange(n_frames)[:, None]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WIN) / WIN)  # periodic Hann
    spec = np.abs(np.fft.rfft(x[idx] * window, N_FFT))
    logmel = np.log(spec @ tf_mel_matrix() + 0.01)
    n_ex = len(logmel) // EXAMPLE
    return logmel[: n_ex * EXAMPLE].reshape(n_ex, EXAMPLE, N_MELS).astype(np.float32)


class VGGish(nn.Module):
    def __init__(self, widths=(64, 128, 256, 256, 512, 512), hidden: int = 4096, dim: int = 128):
        super().__init__()
        layers, cin = [], 1
        for i, w in enumerate(widths):  # pools after conv 1, 2, 4 and 6 (VGG configuration "A")
            layers += [nn.Conv2d(cin, w, 3, padding=1), nn.ReLU(inplace=True)]
            if i in (0, 1, 3, 5):
                layers.append(nn.MaxPool2d(2, 2))
            cin = w
        self.features = nn.Sequential(*layers)
        self.embeddings = nn.Sequential(nn.Linear(cin * 6 * 4, hidden), nn.ReLU(inplace=True),
                                        nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, 96, 64] log-mel examples -> [B, dim] embeddings (pre-ReLU, no PCA)."""
        x = self.features(x[:, None])
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # channels-last flatten, as the TF weights expect
        return self.embeddings(x)

    @classmethod
    def from_state_dict(cls, state: dict) -> "VGGish":
        convs = sorted((int(k.split(".")[1]), v.shape[0]) for k, v in state.items()
                       if k.startswith("features.") and k.endswith(".weight"))
        model = cls(tuple(w for _, w in convs), state["embeddings.0.weight"].shape[0], state["embeddings.4.weight"].shape[0])
        model.load_state_dict({k: v for k, v in state.items() if not k.startswith("pproc")}, strict=True)
        return model.eval()
