"""The UniAudio multi-scale language model (one file, nanoGPT-style).

Input: a bundle in the `uniaudio` row layout, ids [B, T, K] (an audio row holds a frame's K
codebook ids; a text/special row its token repeated K times). A *global* transformer runs
over rows: row t is the concatenation of its K token embeddings (d/K each), and its output
h_t predicts row t+1. A *local* transformer runs over the K slots of row t+1: slot k sees
g2l(h_t) plus the embedding of slot k-1's token, and a per-slot head scores only the ids slot
k can hold (specials, text, and codebook k's codes: no probability mass outside a codebook's
range, UniAudio's issue #30). Packed sequences never see each other: attention runs causal
over each sequence's own rows (no cross-sequence work is computed at all) and RoPE positions
restart at each sequence.

Blocks are Llama-style (RMSNorm, RoPE, SwiGLU, grouped-query attention through
F.scaled_dot_product_attention) and take an optional KV cache for generation."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import ConfigError


@dataclass
class ModelConfig:
    vocab_size: int = 0  # filled from the data's vocabulary
    n_streams: int = 3  # K: codebooks per audio frame
    d_model: int = 192  # must be divisible by n_streams
    n_layers: int = 4  # global transformer
    n_heads: int = 4
    n_kv_heads: int = 2  # grouped-query attention: heads share this many K/V heads
    local_layers: int = 2
    ffn_mult: float = 8 / 3  # SwiGLU hidden = ffn_mult * d_model, rounded up to a multiple of 32
    max_rows: int = 2048  # longest sequence (RoPE table)
    rope_theta: float = 10000.0
    dropout: float = 0.0

    def validate(self) -> None:
        if self.d_model % self.n_streams:
            raise ConfigError("model.d_model", f"must be divisible by n_streams ({self.n_streams}): a row is the "
                                               f"concatenation of {self.n_streams} token embeddings")
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise ConfigError("model.n_heads", f"d_model ({self.d_model}) / n_heads must be an even integer (RoPE)")
        if self.n_heads % self.n_kv_heads:
            raise ConfigError("model.n_kv_heads", f"must divide n_heads ({self.n_heads})")
        for k in ("n_layers", "local_layers", "max_rows", "n_streams"):
            if getattr(self, k) < 1:
                raise ConfigError(f"model.{k}", "must be >= 1")
        if not 0 <= self.dropout < 1:
            raise ConfigError("model.dropout", "must be in [0, 1)")

    @property
    def ffn_hidden(self) -> int:
        return int(math.ceil(self.ffn_mult * self.d_model / 32) * 32)


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float = 1e-6):
        super().__init__()
        self.eps, self.weight = eps, nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps).to(x.dtype) * self.weight


def rope_tables(head_dim: int, max_pos: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    ang = torch.outer(torch.arange(max_pos, dtype=torch.float32), inv)
    return ang.cos(), ang.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [B, H, T, hd]; cos/sin [B, T, hd/2] gathered at each token's position (rotate-half
    pairing, as Llama's Hugging Face port: contiguous halves, no strided copies)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    c, s = cos[:, None].to(x.dtype), sin[:, None].to(x.dtype)
    return torch.cat((x1 * c - x2 * s, x1 * s + x2 * c), -1)


class Attention(nn.Module):
    def __init__(self, d: int, n_heads: int, n_kv: int, dropout: float):
        super().__init__()
        self.h, self.kv, self.hd = n_heads, n_kv, d // n_heads
        self.qkv = nn.Linear(d, (n_heads + 2 * n_kv) * self.hd, bias=False)  # one matmul for q, k, v
        self.o = nn.Linear(n_heads * self.hd, d, bias=False)
        self.dropout = dropout

    def forward(self, x, cos, sin, spans=None, cache: dict | None = None):
        b, t, _ = x.shape
        q, k, v = self.qkv(x).split([self.h * self.hd, self.kv * self.hd, self.kv * self.hd], -1)
        q = q.view(b, t, self.h, self.hd).transpose(1, 2)
        k = k.view(b, t, self.kv, self.hd).transpose(1, 2)
        v = v.view(b, t, self.kv, self.hd).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:  # generation: append to the keys/values seen so far
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
            cache["k"], cache["v"] = k, v
        if self.kv != self.h:
            k, v = k.repeat_interleave(self.h // self.kv, 1), v.repeat_interleave(self.h // self.kv, 1)
        drop = self.dropout if self.training else 0.0
        if spans is None:  # one sequence, causal; a single new query (cached) sees everything before it
            y = F.scaled_dot_product_attention(q, k, v, is_causal=t > 1, dropout_p=drop)
        else:  # packed rows: each sequence attends causally to itself only; padding rows stay zero
            rows = []
            for i in range(b):
                parts, at = [], 0
                for a, e in spans.get(i, ()):
                    if a > at:
                        parts.append(q.new_zeros(1, self.h, a - at, self.hd))
                    parts.append(F.scaled_dot_product_attention(q[i:i + 1, :, a:e], k[i:i + 1, :, a:e],
                                                                v[i:i + 1, :, a:e], is_causal=True, dropout_p=drop))
                    at = e
                if at < t:
                    parts.append(q.new_zeros(1, self.h, t - at, self.hd))
                rows.append(torch.cat(parts, 2) if len(parts) > 1 else parts[0])
            y = torch.cat(rows, 0) if b > 1 else rows[0]
        return self.o(y.transpose(1, 2).reshape(b, t, self.h * self.hd))


class SwiGLU(nn.Module):
    def __init__(self, d: int, hidden: int):
        super().__init__()
        self.gate_up = nn.Linear(d, 2 * hidden, bias=False)  # gate and up in one matmul
        self.down = nn.Linear(hidden, d, bias=False)

    def forward(self, x):
        gate, up = self.gate_up(x).chunk(2, -1)
        return self.down(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.norm1, self.norm2 = RMSNorm(cfg.d_model), RMSNorm(cfg.d_model)
        self.attn = Attention(cfg.d_model, cfg.n_heads, cfg.n_kv_heads, cfg.dropout)
        self.ffn = SwiGLU(cfg.d_model, cfg.ffn_hidden)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, cos, sin, spans=None, cache=None):
        x = x + self.drop(self.attn(self.norm1(x), cos, sin, spans, cache))
        return x + self.drop(self.ffn(self.norm2(x)))


def stream_supports(vocab, n_streams: int) -> list[torch.Tensor]:
    """For each slot k, the sorted global ids it may hold: every non-audio id (specials,
    text) and codebook k's codes."""
    audio = vocab.audio_range()
    if audio.codebooks != n_streams:
        raise ValueError(f"vocabulary's audio range has {audio.codebooks} codebooks, the model {n_streams} streams")
    non_audio = [i for i in range(vocab.size) if not audio.offset <= i < audio.end]
    return [torch.tensor(non_audio + list(range(audio.offset + k * audio.size, audio.offset + (k + 1) * audio.size)))
            for k in range(n_streams)]


def sequence_spans(doc: torch.Tensor) -> dict[int, list[tuple[int, int]]]:
    """Batch row -> (start, end) of each run of one sequence number (>= 0) in doc [B, T]."""
    d = doc.cpu()
    spans: dict[int, list[tuple[int, int]]] = {}
    for i in range(d.shape[0]):
        row = d[i]
        change = torch.nonzero(row[1:] != row[:-1]).flatten() + 1
        bounds = [0, *change.tolist(), len(row)]
        spans[i] = [(a, e) for a, e in zip(bounds[:-1], bounds[1:]) if row[a] >= 0]
    return spans


class UniAudioLM(nn.Module):
    def __init__(self, cfg: ModelConfig, supports: list[torch.Tensor]):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        d, k = cfg.d_model, cfg.n_streams
        self.embed = nn.Embedding(cfg.vocab_size, d // k)  # one table; a row concatenates K lookups
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(d)
        self.g2l = nn.Linear(d, d, bias=False)
        self.local_embed = nn.Embedding(cfg.vocab_size + 1, d)  # + a start-of-frame slot
        self.local_pos = nn.Parameter(torch.zeros(k, d))
        self.local_blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.local_layers))
        self.local_norm = RMSNorm(d)
        # untied: tying the heads to the local input embedding learned markedly slower on the demo
        # (held-out audio loss 6.54 vs 6.18 after 500 steps)
        self.heads = nn.ModuleList(nn.Linear(d, len(s), bias=False) for s in supports)
        self.head_sizes = [len(s) for s in supports]
        for i, s in enumerate(supports):  # global id -> index in slot i's head (-1: not allowed there)
            lut = torch.full((cfg.vocab_size,), -1, dtype=torch.long)
            lut[s] = torch.arange(len(s))
            self.register_buffer(f"support_{i}", s, persistent=False)
            self.register_buffer(f"lut_{i}", lut, persistent=False)
        cos, sin = rope_tables(d // cfg.n_heads, max(cfg.max_rows, k) + 1, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2 style: residual projections scaled by depth
            if name.endswith(("attn.o.weight", "ffn.down.weight")):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * (cfg.n_layers + cfg.local_layers)))

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def support(self, k: int) -> torch.Tensor:
        return getattr(self, f"support_{k}")

    def lut(self, k: int) -> torch.Tensor:
        return getattr(self, f"lut_{k}")

    # --- global ----------------------------------------------------------------------------
    def rows_in(self, ids: torch.Tensor) -> torch.Tensor:
        """[B, T, K] ids -> [B, T, d]: the K embeddings of a row side by side."""
        b, t, k = ids.shape
        return self.embed(ids).reshape(b, t, -1)

    def global_forward(self, ids, pos, spans=None, caches=None) -> torch.Tensor:
        """spans: batch row -> (start, end) of each packed sequence (`sequence_spans`); None =
        one causal sequence per batch row (generation, with `caches`)."""
        x = self.rows_in(ids)
        cos, sin = self.rope_cos[pos], self.rope_sin[pos]
        for i, blk in enumerate(self.blocks):
            x = blk(x, cos, sin, spans, None if caches is None else caches[i])
        return self.norm(x)

    # --- local -----------------------------------------------------------------------------
    def local_forward(self, h: torch.Tensor, prev: torch.Tensor, caches=None, start: int = 0) -> torch.Tensor:
        """h [N, d] (global state of the row before), prev [N, S] the ids fed to slots
        start..start+S-1 (slot 0 gets the start-of-frame id) -> [N, S, d]."""
        n, s = prev.shape
        x = self.g2l(h)[:, None] + self.local_embed(prev) + self.local_pos[start:start + s]
        pos = torch.arange(start, start + s, device=h.device).expand(n, s)
        cos, sin = self.rope_cos[pos], self.rope_sin[pos]
        for i, blk in enumerate(self.local_blocks):
            x = blk(x, cos, sin, None, None if caches is None else caches[i])
        return self.local_norm(x)

    def slot_logits(self, x: torch.Tensor, k: int) -> torch.Tensor:
        return self.heads[k](x)

    # --- training ----------------------------------------------------------------------------
    def forward(self, ids, pos, doc, loss_mask) -> dict:
        """ids [B, T, K], pos [B, T] (position in its sequence), doc [B, T] (sequence number,
        -1 = padding), loss_mask [B, T] (rows to predict). Returns per-(row, slot) losses of
        the predicted rows: {"loss" [N, K], "rows" (b, t) of each, "mask" [N, K] valid}."""
        b, t, k = ids.shape
        h = self.global_forward(ids, pos, sequence_spans(doc))
        # row t+1 is predicted from h_t when both belong to one sequence and t+1 is a target
        pred = loss_mask[:, 1:] & (doc[:, 1:] == doc[:, :-1]) & (doc[:, 1:] >= 0)
        bi, ti = pred.nonzero(as_tuple=True)
        target = ids[bi, ti + 1]  # [N, K]
        start = torch.full((len(bi), 1), self.cfg.vocab_size, dtype=torch.long, device=ids.device)
        x = self.local_forward(h[bi, ti], torch.cat([start, target[:, :-1]], 1))
        losses, valid = [], []
        for s in range(k):
            local = self.lut(s)[target[:, s]]
            ok = local >= 0
            logits = self.slot_logits(x[:, s], s).float()
            losses.append(F.cross_entropy(logits, local.clamp(min=0), reduction="none") * ok)
            valid.append(ok)
        return {"loss": torch.stack(losses, 1), "valid": torch.stack(valid, 1), "rows": (bi, ti + 1)}

    def n_params(self, non_embedding: bool = True) -> int:
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.embed.weight.numel() + self.local_embed.weight.numel()
        return n

    def config_dict(self) -> dict:
        return asdict(self.cfg)
