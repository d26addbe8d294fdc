"""Our codec behind the Tokenizer interface: `get("uniaudio-codec", checkpoint=..., n_codebooks=3)`.
3 codebooks x 10 bits x 50 Hz = 1.5 kbps."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Tokenizer, TokenizerError, register

DEFAULT_CHECKPOINT = Path(__file__).parent / "checkpoints" / "uniaudio_codec_16k.pt"
# RVQ beam width at encode: codes nearer the encoder's latent for the same bits and the same
# decoder (MODEL_CARD: PESQ-wb/STOI by width); beam=1 is plain greedy RVQ and the fastest.
DEFAULT_BEAM = 8


@register("uniaudio-codec")
class UniAudioCodec(Tokenizer):
    name = "uniaudio-codec"

    def __init__(self, checkpoint: str | None = None, n_codebooks: int = 3, device: str | None = None,
                 beam: int = DEFAULT_BEAM):
        import torch

        from .codec_model import Codec

        path = Path(checkpoint) if checkpoint else DEFAULT_CHECKPOINT
        if not path.is_file():
            raise FileNotFoundError(f"codec checkpoint not found: {path}. Train one with "
                                    f"`uniaudio train codec configs/codec-demo.yaml` and pass checkpoint=OUT/codec.pt")
        self.torch = torch
        from .. import checkpoint

        ck = checkpoint.load(path)
        self.model = Codec.from_checkpoint(ck)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device)
        c = self.model.config
        if not 1 <= n_codebooks <= c.n_codebooks:
            raise TokenizerError(f"n_codebooks must be in 1..{c.n_codebooks}")
        self.sample_rate, self.codebook_size, self.n_codebooks = c.sample_rate, c.codebook_size, n_codebooks
        self.frame_rate = c.sample_rate / c.hop
        self.hop = c.hop
        if isinstance(beam, bool) or not isinstance(beam, int) or beam < 1:
            raise TokenizerError(f"beam must be an integer >= 1, got {beam!r}")
        self.beam = beam  # RVQ beam width at encode time (1 = greedy); decoding is the same either way
        self.version = f"{path.name}@step{ck.get('step', '?')}/{n_codebooks}q" + (f"/beam{beam}" if beam > 1 else "")

    def encode(self, wav: np.ndarray, sr: int) -> np.ndarray:
        x = self.prepare(wav, sr)
        if len(x) < self.hop:
            raise TokenizerError(f"{self.name}: need at least {self.hop} samples ({self.hop / self.sample_rate:.3f}s)")
        codes = self.model.encode(self.torch.from_numpy(x)[None].to(self.device), self.n_codebooks, self.beam)
        return codes[0, :, : -(-len(x) // self.hop)].cpu().numpy().astype(np.int64)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        c = self.check_codes(codes)
        wav = self.model.decode(self.torch.from_numpy(c[None].astype(np.int64)).to(self.device))
        return wav[0].cpu().numpy().astype(np.float32)
