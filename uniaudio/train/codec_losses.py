"""The losses of codec training (the codec and the factorized codec): multi-resolution STFT +
log-mel (`SpectralLoss`), and the multi-scale STFT discriminator (EnCodec's MS-STFTD) with its
GAN losses: hinge loss for the discriminator; hinge + feature matching for the codec.

Spectral losses alone leave a codec's output smeared (they ignore phase detail and average
over plausible outputs); the adversarial term is what codecs such as EnCodec, DAC and
SoundStream use to get sharp harmonics, which PESQ rewards."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import weight_norm

from ..dsp import mel_filterbank


class STFTDiscriminator(nn.Module):
    """One resolution: the complex STFT (real and imaginary parts as 2 channels, [B, 2, T, F])
    through 2-D convolutions that dilate in time and stride in frequency."""

    def __init__(self, n_fft: int, channels: int = 32):
        super().__init__()
        self.n_fft, self.hop = n_fft, n_fft // 4
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        c = channels
        self.convs = nn.ModuleList([weight_norm(nn.Conv2d(2, c, (3, 9), padding=(1, 4)))] + [
            weight_norm(nn.Conv2d(c, c, (3, 9), stride=(1, 2), dilation=(d, 1), padding=(d, 4))) for d in (1, 2, 4)
        ] + [weight_norm(nn.Conv2d(c, c, (3, 3), padding=(1, 1)))])
        self.out = weight_norm(nn.Conv2d(c, 1, (3, 3), padding=(1, 1)))

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spec = torch.stft(wav, self.n_fft, self.hop, window=self.window, return_complex=True)  # [B, F, T]
        x = torch.view_as_real(spec).permute(0, 3, 2, 1)  # [B, 2, T, F]
        feats = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
            feats.append(x)
        return self.out(x), feats


class MultiScaleSTFTDiscriminator(nn.Module):
    def __init__(self, n_ffts: tuple[int, ...] = (512, 1024, 2048), channels: int = 32):
        super().__init__()
        self.discs = nn.ModuleList(STFTDiscriminator(n, channels) for n in n_ffts)

    def forward(self, wav: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        return [d(wav) for d in self.discs]


def discriminator_loss(disc: MultiScaleSTFTDiscriminator, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Hinge: push real logits above +1 and fake ones below -1 (fake is detached here)."""
    loss = real.new_zeros(())
    for (lr, _), (lf, _) in zip(disc(real), disc(fake.detach())):
        loss = loss + F.relu(1 - lr).mean() + F.relu(1 + lf).mean()
    return loss / len(disc.discs)


def generator_losses(disc: MultiScaleSTFTDiscriminator, real: torch.Tensor,
                     fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(adversarial hinge, feature matching). Feature matching is the L1 distance between the
    discriminator's feature maps of real and decoded audio, each layer scaled by the mean
    magnitude of its real features so that no layer dominates (as in EnCodec)."""
    with torch.no_grad():
        real_out = disc(real)
    # the codec's backward needs gradients through D, not for D's weights: freezing them while
    # the graph is recorded skips that weight-gradient work (D's own step is separate)
    frozen = [p for p in disc.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        fake_out = disc(fake)
    finally:
        for p in frozen:
            p.requires_grad_(True)
    adv, feat, n_feat = fake.new_zeros(()), fake.new_zeros(()), 0
    for (_, fr), (lf, ff) in zip(real_out, fake_out):
        adv = adv + F.relu(1 - lf).mean()
        for a, b in zip(fr, ff):
            feat = feat + F.l1_loss(b, a) / (a.abs().mean() + 1e-8)
            n_feat += 1
    return adv / len(disc.discs), feat / max(n_feat, 1)


class SpectralLoss(torch.nn.Module):
    """Multi-resolution STFT (spectral convergence + log magnitude) and 80-band log-mel L1."""

    def __init__(self, sr: int):
        super().__init__()
        self.res = [(512, 128), (1024, 256), (2048, 512)]
        self.register_buffer("mel", torch.tensor(mel_filterbank(sr, 1024, 80), dtype=torch.float32))

    @staticmethod
    def _mag(x, n_fft, hop):
        win = torch.hann_window(n_fft, device=x.device)
        return torch.stft(x, n_fft, hop, window=win, return_complex=True).abs().clamp(min=1e-7)

    def forward(self, y, x):
        stft = 0.0
        for n_fft, hop in self.res:
            my, mx = self._mag(y, n_fft, hop), self._mag(x, n_fft, hop)
            stft = stft + torch.norm(mx - my, p="fro") / torch.norm(mx, p="fro") + F.l1_loss(my.log(), mx.log())
        my, mx = self._mag(y, 1024, 256), self._mag(x, 1024, 256)
        mel = F.l1_loss((self.mel @ my**2).clamp(min=1e-7).log10(), (self.mel @ mx**2).clamp(min=1e-7).log10())
        return stft / len(self.res), mel
