"""The factorized low-rate tokenizer behind the Tokenizer interface:
`get("uniaudio-factorized", checkpoint=...)` -> [8, T] codes at 12.5 Hz (rows 0-1: 6.25 Hz
semantic codes, each written twice; rows 2-7: acoustic), 875 bits/s. The model and its
training: `factorized_model.py`, `uniaudio train factorized`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Tokenizer, TokenizerError, register

DEFAULT_CHECKPOINT = Path(__file__).parent / "checkpoints" / "uniaudio_factorized_16k.pt"


@register("uniaudio-factorized")
class FactorizedTokenizer(Tokenizer):
    name = "uniaudio-factorized"

    def __init__(self, checkpoint: str | None = None, device: str | None = None, threads: int = 0):
        import torch

        from .. import checkpoint as ckpt_io
        from .factorized_model import FactorizedCodec
        from .front_end import load_front_end

        path = Path(checkpoint) if checkpoint else DEFAULT_CHECKPOINT
        if not path.is_file():
            raise FileNotFoundError(f"factorized tokenizer checkpoint not found: {path}. Train one with "
                                    f"`uniaudio train factorized configs/factorized-16k.yaml` and pass "
                                    f"checkpoint=OUT/factorized.pt")
        self.torch = torch
        ck = ckpt_io.load(path)
        self.model = FactorizedCodec.from_checkpoint(ck)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device)
        c = self.config = self.model.config
        self.front_end = load_front_end(c.front_end, threads)
        self.sample_rate, self.codebook_size, self.n_codebooks = c.sample_rate, c.codebook_size, c.n_codebooks
        self.frame_rate = c.frame_rate
        # the semantic rows hold each 6.25 Hz code for pool // down = 2 rows of 12.5 Hz (Tokenizer.held_rows)
        self.held_rows, self.hold = tuple(range(c.semantic_codebooks)), c.pool // c.down
        self.version = f"{path.name}@step{ck.get('step', '?')}"

    def encode(self, wav: np.ndarray, sr: int) -> np.ndarray:
        """-> [8, ceil(len / 2560) * 2] int64: the audio is padded to whole semantic codes (0.16 s),
        so the decoded length is within one semantic frame of the input's."""
        x = self.prepare(wav, sr)
        c = self.config
        if len(x) < c.hop:
            raise TokenizerError(f"{self.name}: need at least {c.hop} samples ({c.hop / c.sample_rate:.3f} s), "
                                 f"got {len(x)}")
        x = np.pad(x, (0, (-len(x)) % c.group))
        feats = self.front_end.features(x)
        t = self.torch
        codes = self.model.encode(t.from_numpy(x)[None].to(self.device), t.from_numpy(feats)[None].to(self.device))
        return codes[0].cpu().numpy().astype(np.int64)

    def semantic_codes(self, wav: np.ndarray, sr: int) -> np.ndarray:
        """[semantic_codebooks, frames at 6.25 Hz]: the semantic rows alone (quantized Whisper
        features, trained to carry content, not the voice), one code per 0.16 s: the content
        condition of voice conversion (the vc sentences, `measure: [semantic]`)."""
        return self.encode(wav, sr)[list(self.held_rows), :: self.hold]

    def semantic_describe(self) -> dict:
        c = self.config
        return {"tokenizer": self.name, "version": self.version, "codebooks": c.semantic_codebooks,
                "codebook_size": c.codebook_size, "frame_rate": c.frame_rate / self.hold}

    def check_codes(self, codes: np.ndarray) -> np.ndarray:
        codes = super().check_codes(codes)
        sem = codes[list(self.held_rows)]
        if codes.shape[1] % self.hold:
            raise TokenizerError(f"{self.name}: frames must come in pairs (one 6.25 Hz semantic code spans "
                                 f"{self.hold} rows), got {codes.shape[1]}")
        pairs = sem.reshape(sem.shape[0], -1, self.hold)
        if (pairs != pairs[..., :1]).any():
            bad = int(np.nonzero((pairs != pairs[..., :1]).any(-1).any(0))[0][0])
            raise TokenizerError(f"{self.name}: semantic rows 0-{self.config.semantic_codebooks - 1} must repeat "
                                 f"each code {self.hold} times (6.25 Hz codes on the 12.5 Hz grid); frames "
                                 f"{bad * self.hold}-{bad * self.hold + self.hold - 1} differ")
        return codes

    def decode(self, codes: np.ndarray) -> np.ndarray:
        c = self.check_codes(codes)
        if c.shape[1] == 0:
            raise TokenizerError(f"{self.name}: no frames to decode")
        wav = self.model.decode(self.torch.from_numpy(c[None].astype(np.int64)).to(self.device))
        return wav[0].cpu().numpy().astype(np.float32)

    def describe(self) -> dict:
        streams = self.config.streams()
        return {**super().describe(), "streams": streams, "bitrate_bps": sum(s["bps"] for s in streams),
                "codes_per_second": sum(s["rate_hz"] for s in streams), "front_end": self.config.front_end}
