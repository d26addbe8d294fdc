"""The UniAudio language models (one file, nanoGPT-style, read top-down): the config, the
Llama-style block (RMSNorm, RoPE, grouped-query attention, SwiGLU, optional KV cache), UniAudio's
multi-scale model (UniAudioLM) and UniAudio 2.0's multi-stream model (MultiStreamLM).

Input: a bundle in the `uniaudio` row layout, ids [B, T, K] (an audio row holds a frame's K
codebook ids; a text/special row its token repeated K times). A *global* transformer runs
over rows: row t is the concatenation of its K token embeddings (d/K each), and its output
h_t predicts row t+1. A *local* transformer runs over the K slots of row t+1: slot k sees
g2l(h_t) plus the embedding of slot k-1's token, and a per-slot head scores only the ids slot
k can hold (specials, text, and codebook k's codes: no probability mass outside a codebook's
range, UniAudio's issue #30). Packed sequences never see each other: attention runs causal
over each sequence's own rows (`attention.attention_plan`) and RoPE positions restart at each
sequence.

Speed lives elsewhere: `kernels.py` holds the eager-mode autograd Functions (the same math as
the plain ops here, with written-out backwards), the attention written for the local
transformer's K slots and the 64-padded loss heads; `attention.py` the two ways of keeping
sequences apart; `llm.py` loading a Llama into the middle and its LoRA adapters."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import ConfigError
from . import kernels
from .attention import attention_plan, flex_attention


MODEL_KINDS = ("multiscale", "multistream")  # UniAudioLM (UniAudio) | MultiStreamLM (UniAudio 2.0)


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
    norm_eps: float = 1e-6
    # UniAudio 2.0's multi-stream model (MultiStreamLM): n_layers is the middle (the LLM's layers)
    kind: str = "multiscale"  # multiscale (UniAudioLM) | multistream (MultiStreamLM)
    bottom_layers: int = 0  # audio-understanding expert below the middle
    top_layers: int = 0  # audio-generation expert above it
    empty_id: int = 4  # <empty>: the text stream of an audio row
    llm_vocab: int = 0  # > 0: the middle is an LLM whose vocabulary is the text range (its own embedding/head)

    def validate(self) -> None:
        if self.kind == "multiscale" and self.d_model % self.n_streams:
            raise ConfigError("model.d_model", f"must be divisible by n_streams ({self.n_streams}): a row is the "
                                               f"concatenation of {self.n_streams} token embeddings")
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise ConfigError("model.n_heads", f"d_model ({self.d_model}) / n_heads must be an even integer (RoPE)")
        if self.n_heads % self.n_kv_heads:
            raise ConfigError("model.n_kv_heads", f"must divide n_heads ({self.n_heads})")
        for k in ("n_layers", "local_layers", "max_rows", "n_streams"):
            if getattr(self, k) < 1:
                raise ConfigError(f"model.{k}", "must be >= 1")
        if self.kind not in MODEL_KINDS:
            raise ConfigError("model.kind", f"one of {', '.join(MODEL_KINDS)}, got {self.kind!r}")
        if self.bottom_layers < 0 or self.top_layers < 0:
            raise ConfigError("model.bottom_layers" if self.bottom_layers < 0 else "model.top_layers", "must be >= 0")
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
        if kernels.written_out(x):  # the same math, a written-out backward (eager float32)
            return kernels.RMSNormFn.apply(x, self.weight, self.eps)
        return x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps).to(x.dtype) * self.weight


def rope_tables(head_dim: int, max_pos: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    ang = torch.outer(torch.arange(max_pos, dtype=torch.float32), inv)
    return ang.cos(), ang.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [B, T, H, hd]; cos/sin [B, T, hd/2] gathered at each token's position (rotate-half
    pairing, as Llama's Hugging Face port: contiguous halves, no strided copies)."""
    c, s = cos[:, :, None].to(x.dtype), sin[:, :, None].to(x.dtype)
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * c - x2 * s, x1 * s + x2 * c), -1)


def rope_qkv(qkv: torch.Tensor, n_heads: int, n_kv: int, cos: torch.Tensor, sin: torch.Tensor):
    """The fused projection's output [B, T, H + 2 KV, hd] -> q [B, T, H, hd], k, v [B, T, KV, hd],
    q and k rotated (`apply_rope`). Compiled, the plain ops (the compiler fuses them); eager, one
    autograd Function (`kernels.RopeQKVFn`)."""
    if torch.compiler.is_compiling():
        qk = apply_rope(qkv[:, :, :n_heads + n_kv], cos, sin)
        return qk[:, :, :n_heads], qk[:, :, n_heads:], qkv[:, :, n_heads + n_kv:]
    c, s = cos[:, :, None].to(qkv.dtype), sin[:, :, None].to(qkv.dtype)
    return kernels.RopeQKVFn.apply(qkv, c, s, n_heads, n_kv)


class Attention(nn.Module):
    """small=True (the local transformer over a frame's K slots): attention written out as two
    matmuls and a masked softmax. SDPA kernels are built for long sequences; on [N, H, 3, hd]
    the cuDNN one cost ~12 ms of host time per call (a new plan for every N) and more GPU time
    than the global attention (measured on an H200)."""

    def __init__(self, d: int, n_heads: int, n_kv: int, dropout: float, small: bool = False):
        super().__init__()
        self.h, self.kv, self.hd, self.small = n_heads, n_kv, d // n_heads, small
        self.qkv = nn.Linear(d, (n_heads + 2 * n_kv) * self.hd, bias=False)  # one matmul for q, k, v
        self.o = nn.Linear(n_heads * self.hd, d, bias=False)
        self.dropout = dropout

    def forward(self, x, cos, sin, spans=None, cache: dict | None = None):
        """spans: None (one causal sequence per batch row), {row: [(start, end), ...]} or a
        FlexAttention BlockMask (`attention_plan`)."""
        b, t, _ = x.shape
        q, k, v = rope_qkv(self.qkv(x).view(b, t, self.h + 2 * self.kv, self.hd), self.h, self.kv, cos, sin)
        k, v = k.transpose(1, 2), v.transpose(1, 2)  # [B, KV, T, hd]; q stays [B, T, H, hd] until needed
        if cache is not None:  # generation: append to the keys/values seen so far
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
            cache["k"], cache["v"] = k, v
        if spans is not None and not isinstance(spans, dict):  # a document BlockMask
            if self.training and self.dropout:
                raise ValueError("flex attention has no dropout: use attention: spans, or dropout 0")
            # contiguous [B, H, T, hd]: compiled FlexAttention on CPU (torch 2.13) returns wrong
            # rows for the strided views of the fused qkv projection
            y = flex_attention(q.transpose(1, 2).contiguous(), k.contiguous(), v.contiguous(), spans,
                               gqa=self.kv != self.h)
            return self.o(y.transpose(1, 2).reshape(b, t, self.h * self.hd))
        drop, gqa = (self.dropout if self.training else 0.0), self.kv != self.h
        if self.small:
            return self.o(kernels.small_attention(q, k, v, drop))
        q = q.transpose(1, 2)
        if spans is None:  # one sequence, causal; a single new query (cached) sees everything before it
            y = F.scaled_dot_product_attention(q, k, v, is_causal=t > 1, dropout_p=drop, enable_gqa=gqa).transpose(1, 2)
        else:  # packed rows: each sequence attends causally to itself only; padding rows stay zero
            y = kernels.span_attention(q, k, v, spans, drop, gqa)
        return self.o(y.reshape(b, t, self.h * self.hd))


class SwiGLU(nn.Module):
    def __init__(self, d: int, hidden: int):
        super().__init__()
        self.gate_up = nn.Linear(d, 2 * hidden, bias=False)  # gate and up in one matmul
        self.down = nn.Linear(hidden, d, bias=False)

    def forward(self, x):
        gu = self.gate_up(x)
        if kernels.written_out(gu):
            return self.down(kernels.SwiGLUFn.apply(gu))
        gate, up = gu.chunk(2, -1)
        return self.down(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, small: bool = False):
        super().__init__()
        self.norm1, self.norm2 = RMSNorm(cfg.d_model, cfg.norm_eps), RMSNorm(cfg.d_model, cfg.norm_eps)
        self.attn = Attention(cfg.d_model, cfg.n_heads, cfg.n_kv_heads, cfg.dropout, small)
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


def predicted_rows(doc: torch.Tensor, loss_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch row, t) of each global state h_t that predicts row t+1: both rows belong to one
    sequence and t+1 is a target."""
    pred = loss_mask[:, 1:] & (doc[:, 1:] == doc[:, :-1]) & (doc[:, 1:] >= 0)
    return pred.nonzero(as_tuple=True)


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
        self.local_blocks = nn.ModuleList(Block(cfg, small=True) for _ in range(cfg.local_layers))
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
    def forward(self, ids, pos, doc, loss_mask, attn=None, rows=None) -> dict:
        """ids [B, T, K], pos [B, T] (position in its sequence), doc [B, T] (sequence number,
        -1 = padding), loss_mask [B, T] (rows to predict). attn: `attention_plan(doc)` and
        rows: `predicted_rows(doc, loss_mask)`, made here when None; a trainer passes them in,
        made on the host from the batch, so a compiled model neither traces them nor waits for
        the device to count the predicted rows. Returns per-(row, slot) losses of the
        predicted rows: {"loss" [N, K], "rows" (b, t) of each, "valid" [N, K]}."""
        h = self.global_forward(ids, pos, attention_plan(doc) if attn is None else attn)
        bi, ti = predicted_rows(doc, loss_mask) if rows is None else rows[:2]
        target = ids[bi, ti + 1]  # [N, K]
        start = target.new_full((target.shape[0], 1), self.cfg.vocab_size)
        x = self.local_forward(h[bi, ti], torch.cat([start, target[:, :-1]], 1))
        losses, valid = [], []
        for s, xs in enumerate(x.unbind(1)):  # unbind: one stacked gradient, not K zero-filled ones
            local = self.lut(s)[target[:, s]]
            ok = local >= 0
            losses.append(kernels.head_loss(xs, self.heads[s].weight, local.clamp(min=0)) * ok)
            valid.append(ok)
        return {"loss": torch.stack(losses, 1), "valid": torch.stack(valid, 1), "rows": (bi, ti + 1)}

    def n_params(self, non_embedding: bool = True) -> int:
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.embed.weight.numel() + self.local_embed.weight.numel()
        return n

    def config_dict(self) -> dict:
        return asdict(self.cfg)


# --- UniAudio 2.0: the multi-stream model -----------------------------------------------------


class MultiStreamLM(nn.Module):
    """UniAudio 2.0's backbone over rows that are either audio (K codebook streams, embeddings
    summed) or text/special (one token): bottom blocks (audio-understanding expert), middle
    blocks (a text LLM's layers when `load_llama` filled them; LoRA adapters while they stay
    frozen), top blocks (audio-generation expert), a text head over every non-audio id, and a
    local transformer over the K codebooks run only on rows whose next row is audio.

    Input is the `uniaudio` row layout (a `multistream` bundle converts to it losslessly), so
    the trainer's data, loop and checkpoints are shared with UniAudioLM. The text stream of an
    audio row is `<empty>`: the text head predicts it, which is how generation knows that the
    next row is audio. Loss columns: the K codebooks, then the text stream."""

    layout = "multistream"

    def __init__(self, cfg: ModelConfig, text_support: torch.Tensor, codebook_size: int, audio_offset: int,
                 llm_text: tuple[int, int] | None = None):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        d, k = cfg.d_model, cfg.n_streams
        self.audio_offset, self.codebook_size = audio_offset, codebook_size
        self.embed = nn.Embedding(cfg.vocab_size, d)  # audio codes (summed per row), specials, text
        self.bottom = nn.ModuleList(Block(cfg) for _ in range(cfg.bottom_layers))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))  # the middle
        self.top = nn.ModuleList(Block(cfg) for _ in range(cfg.top_layers))
        self.norm = RMSNorm(d, cfg.norm_eps)
        # text head over every non-audio id; with an LLM, its own embedding and head serve the
        # ids of its vocabulary (llm_text = (offset of that range, size)) and these the rest
        self.llm_text = llm_text
        if llm_text is not None:
            off, size = llm_text
            is_llm = (text_support >= off) & (text_support < off + size)
            text_support = torch.cat([text_support[~is_llm], text_support[is_llm]])
            self.llm_embed = nn.Embedding(size, d)
            self.llm_head = nn.Linear(d, size, bias=False)
        self.text_head = nn.Linear(d, len(text_support) - (llm_text[1] if llm_text else 0), bias=False)
        lut = torch.full((cfg.vocab_size,), -1, dtype=torch.long)
        lut[text_support] = torch.arange(len(text_support))
        self.register_buffer("text_support", text_support, persistent=False)
        self.register_buffer("text_lut", lut, persistent=False)
        self.g2l = nn.Linear(d, d, bias=False)
        self.local_embed = nn.Embedding(cfg.vocab_size + 1, d)
        self.local_pos = nn.Parameter(torch.zeros(k, d))
        self.local_blocks = nn.ModuleList(Block(cfg, small=True) for _ in range(cfg.local_layers))
        self.local_norm = RMSNorm(d, cfg.norm_eps)
        self.heads = nn.ModuleList(nn.Linear(d, codebook_size, bias=False) for _ in range(k))
        cos, sin = rope_tables(d // cfg.n_heads, max(cfg.max_rows, k) + 1, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(UniAudioLM._init)
        for name, p in self.named_parameters():
            if name.endswith(("attn.o.weight", "ffn.down.weight")):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * (cfg.bottom_layers + cfg.n_layers + cfg.top_layers)))
        for blk in (*self.bottom, *self.top):  # experts start as the identity: the middle sees what it knows
            nn.init.zeros_(blk.attn.o.weight)
            nn.init.zeros_(blk.ffn.down.weight)

    def rows_in(self, ids: torch.Tensor) -> torch.Tensor:
        """[B, T, K] -> [B, T, d]: an audio row sums its K code embeddings, any other row
        embeds its token (the LLM's embedding for ids of its vocabulary)."""
        audio = ids[..., 0] >= self.audio_offset
        emb = self.embed(ids)  # [B, T, K, d]; a text row holds its token K times
        summed, tok = emb.sum(-2), emb[..., 0, :]
        if self.llm_text is not None:
            off, size = self.llm_text
            inside = (ids[..., 0] >= off) & (ids[..., 0] < off + size)
            tok = torch.where(inside[..., None], self.llm_embed((ids[..., 0] - off).clamp(0, size - 1)), tok)
        return torch.where(audio[..., None], summed, tok)

    def global_forward(self, ids, pos, spans=None, caches=None) -> torch.Tensor:
        x = self.rows_in(ids)
        cos, sin = self.rope_cos[pos], self.rope_sin[pos]
        layers = [*self.bottom, *self.blocks, *self.top]
        for i, blk in enumerate(layers):
            x = blk(x, cos, sin, spans, None if caches is None else caches[i])
        return self.norm(x)

    def n_global_layers(self) -> int:
        return len(self.bottom) + len(self.blocks) + len(self.top)

    def text_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Scores over `text_support` (the non-audio ids; LLM ids last when one is loaded)."""
        own = self.text_head(h)
        return torch.cat([own, self.llm_head(h)], -1) if self.llm_text is not None else own

    local_forward = UniAudioLM.local_forward

    def slot_logits(self, x: torch.Tensor, k: int) -> torch.Tensor:
        return self.heads[k](x)

    def forward(self, ids, pos, doc, loss_mask, attn=None, rows=None) -> dict:
        """As UniAudioLM.forward (rows may carry a third tensor: the indices, among the
        predicted rows, of those whose target is audio); losses [N, K + 1]: codebooks (valid on
        audio targets), then the text stream (every predicted row; `<empty>` on audio targets)."""
        h = self.global_forward(ids, pos, attention_plan(doc) if attn is None else attn)
        bi, ti = predicted_rows(doc, loss_mask) if rows is None else rows[:2]
        target = ids[bi, ti + 1]  # [N, K]
        hp = h[bi, ti]
        audio = target[:, 0] >= self.audio_offset
        empty = int(self.cfg.empty_id)
        text_target = torch.where(audio, torch.full_like(target[:, 0], empty), target[:, 0])
        local_text = self.text_lut[text_target]
        text_ok = local_text >= 0
        text_loss = F.cross_entropy(self.text_logits(hp).float(), local_text.clamp(min=0), reduction="none") * text_ok
        k = self.cfg.n_streams
        losses = torch.zeros(len(bi), k, device=ids.device)
        valid = torch.zeros(len(bi), k, dtype=torch.bool, device=ids.device)
        # run even with no audio target (empty tensors): every parameter stays in the graph,
        # which DDP needs on every step
        # which of them are audio: given by the trainer (found on the host), else found here
        ai = rows[2] if rows is not None and len(rows) > 2 else audio.nonzero().flatten()
        tgt = target[ai]
        start = tgt.new_full((len(ai), 1), self.cfg.vocab_size)
        x = self.local_forward(hp[ai], torch.cat([start, tgt[:, :-1]], 1))
        cols = []
        for s, xs in enumerate(x.unbind(1)):
            local = tgt[:, s] - self.audio_offset - s * self.codebook_size
            ok = (local >= 0) & (local < self.codebook_size)
            cols.append(kernels.head_loss(xs, self.heads[s].weight, local.clamp(0, self.codebook_size - 1)) * ok)
            valid[ai, s] = ok
        losses = losses.index_put((ai,), torch.stack(cols, 1))
        return {"loss": torch.cat([losses, text_loss[:, None]], 1), "valid": torch.cat([valid, text_ok[:, None]], 1),
                "rows": (bi, ti + 1)}

    def n_params(self, non_embedding: bool = True) -> int:
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.embed.weight.numel() + self.local_embed.weight.numel()
            if self.llm_text is not None:
                n -= self.llm_embed.weight.numel()
        return n

    def config_dict(self) -> dict:
        return asdict(self.cfg)


def make_model(cfg: ModelConfig, vocab) -> nn.Module:
    """The model a ModelConfig describes over a vocabulary (trainer and generator alike)."""
    k = vocab.audio_range().codebooks
    if cfg.kind == "multiscale":
        return UniAudioLM(cfg, stream_supports(vocab, k))
    audio = vocab.audio_range()
    non_audio = torch.tensor([i for i in range(vocab.size) if not audio.offset <= i < audio.end])
    llm_text = None
    if cfg.llm_vocab:
        text = vocab.ranges.get("text")
        if text is None or text.size != cfg.llm_vocab:
            raise ConfigError("model.middle", f"the sentences' text range has {text.size if text else 0} ids, the "
                                              f"LLM's vocabulary {cfg.llm_vocab}: build the sentences with the LLM's "
                                              "tokenizer (text_tokenizer: DIR/tokenizer.json in the sentences config)")
        llm_text = (text.offset, text.size)
    return MultiStreamLM(cfg, non_audio, audio.size, audio.offset, llm_text)
