"""Our UniAudio-style codec: SEANet-like convolutional encoder/decoder (strides 2,4,5,8 in
the encoder, 8,5,4,2 in the decoder: 320 samples = 50 Hz at 16 kHz) around a residual
vector quantizer (1024 codes per codebook, k-means init, EMA updates, dead-code restart,
quantizer dropout so that the first codebooks work alone, e.g. 3 for 1.5 kbps)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class CodecConfig:
    sample_rate: int = 16000
    channels: int = 16  # base width; doubles at each downsampling
    latent_dim: int = 128
    strides: tuple[int, ...] = (2, 4, 5, 8)  # encoder order; the decoder mirrors it
    n_codebooks: int = 8
    codebook_size: int = 1024
    ema_decay: float = 0.99
    dead_code_threshold: float = 1.0  # EMA usage below which a code is restarted
    # "seanet": transposed-conv upsampling 8,5,4,2 (the UniAudio/EnCodec decoder);
    # "istft": ConvNeXt blocks at the 50 Hz frame rate predicting STFT magnitude and phase,
    # inverted by an iSTFT (Vocos style): about 7x less decoder compute per training step
    # than SEANet (measured on CPU); its quality per CPU hour is not yet established
    decoder: str = "seanet"  # a key of DECODERS
    decoder_dim: int = 192  # istft decoder width
    decoder_layers: int = 8  # istft decoder ConvNeXt blocks

    @property
    def hop(self) -> int:
        h = 1
        for s in self.strides:
            h *= s
        return h


class ResUnit(nn.Module):
    def __init__(self, ch: int, dilation: int):
        super().__init__()
        self.block = nn.Sequential(nn.ELU(), nn.Conv1d(ch, ch, 7, dilation=dilation, padding=3 * dilation),
                                   nn.ELU(), nn.Conv1d(ch, ch, 1))

    def forward(self, x):
        return x + self.block(x)


class Encoder(nn.Module):
    def __init__(self, c: CodecConfig):
        super().__init__()
        layers, ch = [nn.Conv1d(1, c.channels, 7, padding=3)], c.channels
        for s in c.strides:
            layers += [ResUnit(ch, 1), ResUnit(ch, 3), ResUnit(ch, 9), nn.ELU(),
                       nn.Conv1d(ch, ch * 2, 2 * s, stride=s, padding=s // 2 + s % 2)]
            ch *= 2
        layers += [nn.ELU(), nn.Conv1d(ch, c.latent_dim, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class Decoder(nn.Module):
    def __init__(self, c: CodecConfig):
        super().__init__()
        ch = c.channels * 2 ** len(c.strides)
        layers = [nn.Conv1d(c.latent_dim, ch, 7, padding=3)]
        for s in reversed(c.strides):
            layers += [nn.ELU(), nn.ConvTranspose1d(ch, ch // 2, 2 * s, stride=s, padding=s // 2 + s % 2,
                                                    output_padding=s % 2)]
            ch //= 2
            layers += [ResUnit(ch, 1), ResUnit(ch, 3), ResUnit(ch, 9)]
        layers += [nn.ELU(), nn.Conv1d(ch, 1, 7, padding=3), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z)


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int, layer_scale: float):
        super().__init__()
        self.dw = nn.Conv1d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 3 * dim), nn.GELU(), nn.Linear(3 * dim, dim))
        self.scale = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x):  # [B, dim, T]
        y = self.mlp(self.norm(self.dw(x).transpose(1, 2)))
        return x + (self.scale * y).transpose(1, 2)


class ISTFTDecoder(nn.Module):
    """Latent frames -> ConvNeXt at the frame rate -> log-magnitude and phase of an STFT with
    hop = one frame and n_fft = 4 hops -> waveform by inverse STFT (Vocos's head)."""

    def __init__(self, c: CodecConfig):
        super().__init__()
        self.hop, self.n_fft = c.hop, 4 * c.hop
        self.inp = nn.Conv1d(c.latent_dim, c.decoder_dim, 7, padding=3)
        self.norm_in = nn.LayerNorm(c.decoder_dim)
        self.blocks = nn.Sequential(*(ConvNeXtBlock(c.decoder_dim, 1.0 / c.decoder_layers)
                                      for _ in range(c.decoder_layers)))
        self.norm_out = nn.LayerNorm(c.decoder_dim)
        self.head = nn.Linear(c.decoder_dim, 2 * (self.n_fft // 2 + 1))
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)

    def forward(self, z):  # [B, latent, T] -> [B, 1, T * hop]
        x = self.norm_in(self.inp(z).transpose(1, 2)).transpose(1, 2)
        x = self.norm_out(self.blocks(x).transpose(1, 2))
        logmag, phase = self.head(x).transpose(1, 2).chunk(2, dim=1)  # [B, bins, T] each
        mag = torch.exp(logmag).clamp(max=1e2)
        spec = torch.polar(mag, phase)
        # frame t is centred on sample t*hop; with n_fft = 4 hops the frames cover T*hop samples
        wav = torch.istft(spec, self.n_fft, self.hop, window=self.window, center=True, length=z.shape[-1] * self.hop)
        return wav[:, None]


DECODERS = {"seanet": Decoder, "istft": ISTFTDecoder}


def sq_dist(x: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Squared distance of every vector x [..., dim] to every code [K, dim] -> [..., K]."""
    return x.pow(2).sum(-1, keepdim=True) - 2 * x @ codebook.t() + codebook.pow(2).sum(1)


class VectorQuantizer(nn.Module):
    """One codebook with EMA updates (no codebook gradient), k-means init, dead-code restart."""

    def __init__(self, dim: int, size: int, decay: float, dead_threshold: float):
        super().__init__()
        self.size, self.decay, self.dead_threshold = size, decay, dead_threshold
        self.register_buffer("codebook", torch.zeros(size, dim))
        self.register_buffer("ema_count", torch.zeros(size))
        self.register_buffer("ema_sum", torch.zeros(size, dim))
        self.register_buffer("initialized", torch.tensor(False))

    def _kmeans_init(self, x: torch.Tensor, iters: int = 10) -> None:
        idx = torch.randperm(x.shape[0], device=x.device)[: self.size]
        if len(idx) < self.size:  # fewer vectors than codes: repeat with noise
            idx = idx[torch.randint(len(idx), (self.size,), device=x.device)]
        centers = x[idx] + 1e-3 * torch.randn(self.size, x.shape[1], device=x.device)
        for _ in range(iters):
            assign = torch.cdist(x, centers).argmin(1)
            counts = torch.bincount(assign, minlength=self.size).float()
            sums = torch.zeros_like(centers).index_add_(0, assign, x)
            centers = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], centers)
        self.codebook.copy_(centers)
        self.ema_sum.copy_(centers)
        self.ema_count.fill_(1.0)
        self.initialized.fill_(True)

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, dim] -> nearest code index [N]."""
        return sq_dist(x, self.codebook).argmin(1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.training and not bool(self.initialized):
            self._kmeans_init(x.detach())
        idx = self.codes(x)
        q = self.codebook[idx]
        if self.training:
            with torch.no_grad():
                onehot_count = torch.bincount(idx, minlength=self.size).float()
                sums = torch.zeros_like(self.ema_sum).index_add_(0, idx, x.detach())
                self.ema_count.mul_(self.decay).add_(onehot_count, alpha=1 - self.decay)
                self.ema_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
                n = self.ema_count.sum()
                count = (self.ema_count + 1e-5) / (n + self.size * 1e-5) * n  # Laplace smoothing
                self.codebook.copy_(self.ema_sum / count[:, None])
                dead = self.ema_count < self.dead_threshold * (1 - self.decay)
                if dead.any():  # restart unused codes on random current vectors
                    pick = x.detach()[torch.randint(x.shape[0], (int(dead.sum()),), device=x.device)]
                    self.codebook[dead] = pick
                    self.ema_sum[dead] = pick
                    self.ema_count[dead] = 1.0
        commit = F.mse_loss(x, q.detach())
        q = x + (q - x).detach()  # straight-through
        return q, idx, commit


class ResidualVQ(nn.Module):
    def __init__(self, c: CodecConfig):
        super().__init__()
        self.layers = nn.ModuleList(VectorQuantizer(c.latent_dim, c.codebook_size, c.ema_decay, c.dead_code_threshold)
                                    for _ in range(c.n_codebooks))

    def forward(self, z: torch.Tensor, n_q: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, d, t = z.shape
        x = z.permute(0, 2, 1).reshape(-1, d)
        residual, out, codes, commit = x, torch.zeros_like(x), [], x.new_zeros(())
        for layer in self.layers[:n_q]:
            q, idx, c = layer(residual)
            residual = residual - q.detach()
            out = out + q
            codes.append(idx.view(b, t))
            commit = commit + c
        return out.view(b, t, d).permute(0, 2, 1), torch.stack(codes, 1), commit

    @torch.no_grad()
    def beam_codes(self, z: torch.Tensor, n_q: int, beam: int, chunk: int = 4096) -> torch.Tensor:
        """Codes [B, n_q, T] for latent z [B, dim, T] by beam search over the residual stages.

        Greedy RVQ picks each stage's nearest code; an early choice that is nearest on its own
        can leave a residual the later codebooks fit badly. This keeps the `beam` best partial
        sums per frame and takes the one with the smallest final error, or greedy's where that
        is smaller (pruning can drop greedy's path), so no frame ends further from z than
        greedy puts it. Decoding is unchanged: the codes are ordinary RVQ codes."""
        b, d, t = z.shape
        x = z.permute(0, 2, 1).reshape(-1, d)
        out = []
        for s in range(0, x.shape[0], chunk):  # frames are independent: bound memory by chunking
            xs = x[s:s + chunk]
            (wide, wide_err), (greedy, greedy_err) = self._beam_frames(xs, n_q, beam), self._beam_frames(xs, n_q, 1)
            out.append(torch.where((wide_err <= greedy_err)[:, None], wide, greedy))
        return torch.cat(out).view(b, t, n_q).permute(0, 2, 1)

    def _beam_frames(self, x: torch.Tensor, n_q: int, beam: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Best path [N, n_q] of a width-`beam` search and its squared error [N]."""
        n = x.shape[0]
        residual = x[:, None]  # [N, W, dim], W = live paths (1 at the start)
        paths = torch.zeros(n, 1, 0, dtype=torch.long, device=x.device)
        for layer in self.layers[:n_q]:
            cb = layer.codebook
            # squared error of every (path, code) continuation: [N, W, K]
            err = sq_dist(residual, cb)
            w, k = err.shape[1], err.shape[2]
            best = err.reshape(n, w * k).topk(min(beam, w * k), dim=1, largest=False).indices
            parent, code = best // k, best % k
            residual = torch.gather(residual, 1, parent[..., None].expand(-1, -1, residual.shape[-1])) - cb[code]
            paths = torch.cat([torch.gather(paths, 1, parent[..., None].expand(-1, -1, paths.shape[-1])),
                               code[..., None]], -1)
        err, final = residual.pow(2).sum(-1).min(1)  # [N]
        return paths[torch.arange(n, device=x.device), final], err

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, n_q, T] -> latent [B, dim, T]."""
        out = 0
        for k in range(codes.shape[1]):
            out = out + self.layers[k].codebook[codes[:, k]]
        return out.permute(0, 2, 1)


class Codec(nn.Module):
    def __init__(self, config: CodecConfig):
        super().__init__()
        self.config = config
        if config.decoder not in DECODERS:
            raise ValueError(f"unknown codec decoder {config.decoder!r}; known: {', '.join(DECODERS)}")
        self.encoder, self.quantizer = Encoder(config), ResidualVQ(config)
        self.decoder = DECODERS[config.decoder](config)

    def pad(self, wav: torch.Tensor) -> torch.Tensor:
        """[B, T] -> [B, 1, T'] with T' a multiple of the hop."""
        hop = self.config.hop
        extra = (-wav.shape[-1]) % hop
        return F.pad(wav, (0, extra))[:, None]

    def forward(self, wav: torch.Tensor, n_q: int | None = None):
        x = self.pad(wav)
        z = self.encoder(x)
        q, codes, commit = self.quantizer(z, n_q or self.config.n_codebooks)
        y = self.decoder(q)[:, 0, : wav.shape[-1]]
        return y, codes, commit

    @torch.no_grad()
    def encode(self, wav: torch.Tensor, n_q: int, beam: int = 1) -> torch.Tensor:
        if beam < 1:
            raise ValueError(f"beam must be >= 1, got {beam}")
        z = self.encoder(self.pad(wav))
        if beam > 1:
            return self.quantizer.beam_codes(z, n_q, beam)
        return self.quantizer(z, n_q)[1]

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.quantizer.decode(codes))[:, 0]

    def checkpoint(self, inference: bool = False) -> dict:
        """Config + weights. `inference=True` drops the codebooks' EMA training state
        (ema_sum, ema_count): a third smaller, and all that encode/decode need."""
        state = {k: v.detach().cpu() for k, v in self.state_dict().items()}  # loadable without a GPU
        if inference:
            state = {k: v for k, v in state.items() if not k.endswith((".ema_sum", ".ema_count"))}
        return {"config": asdict(self.config), "model": state}

    @classmethod
    def from_checkpoint(cls, ckpt: dict) -> "Codec":
        cfg = dict(ckpt["config"])
        cfg["strides"] = tuple(cfg["strides"])
        model = cls(CodecConfig(**cfg))
        missing, unexpected = model.load_state_dict(ckpt["model"], strict=False)
        # only the EMA training state may be absent (inference checkpoints); anything else is an error
        bad = [k for k in missing if not k.endswith((".ema_sum", ".ema_count"))]
        if bad or unexpected:
            raise RuntimeError(f"codec checkpoint does not match its config: missing {bad}, unexpected {unexpected}")
        return model.eval()
