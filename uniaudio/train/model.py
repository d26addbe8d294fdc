"""The UniAudio multi-scale language model (one file, nanoGPT-style).

Input: a bundle in the `uniaudio` row layout, ids [B, T, K] (an audio row holds a frame's K
codebook ids; a text/special row its token repeated K times). A *global* transformer runs
over rows: row t is the concatenation of its K token embeddings (d/K each), and its output
h_t predicts row t+1. A *local* transformer runs over the K slots of row t+1: slot k sees
g2l(h_t) plus the embedding of slot k-1's token, and a per-slot head scores only the ids slot
k can hold (specials, text, and codebook k's codes: no probability mass outside a codebook's
range, UniAudio's issue #30). Packed sequences never see each other: attention runs causal
over each sequence's own rows and RoPE positions restart at each sequence. Two ways to keep
sequences apart (`attention_plan`): "spans", a loop of causal SDPA calls over each sequence
(no cross-sequence work at all; the CPU default), and "flex", one FlexAttention call with a
block-sparse document mask built from the sequence numbers (compiled; the GPU default, where
hundreds of small kernels would leave the card idle). Both give the same rows.

Blocks are Llama-style (RMSNorm, RoPE, SwiGLU, grouped-query attention) and take an optional
KV cache for generation; the local transformer's attention over K slots is written out
(`small_attention`), which is faster than any SDPA kernel at that length. The loss heads run
64-padded (`padded_logits`). In eager float32 RMSNorm, RoPE with the q/k/v split, SwiGLU and
the loss heads' cross-entropy run as autograd Functions with written-out backwards: eager CPU
cannot fuse elementwise work, so these cut passes over the activations; compiled, the plain ops
run and the compiler fuses them."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import ConfigError


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


def _written_out(x: torch.Tensor) -> bool:
    """Whether to run a written-out backward (`_RMSNormFn`, `_SwiGLUFn`): float32 eager only.
    Compiled, the compiler fuses the plain ops; in half precision they keep autocast's dtypes."""
    return x.dtype == torch.float32 and not torch.compiler.is_compiling()


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float = 1e-6):
        super().__init__()
        self.eps, self.weight = eps, nn.Parameter(torch.ones(d))

    def forward(self, x):
        if _written_out(x):
            return _RMSNormFn.apply(x, self.weight, self.eps)
        return x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps).to(x.dtype) * self.weight


class _RMSNormFn(torch.autograd.Function):
    """float32 RMSNorm with a written-out backward. Eager autograd keeps ~8 full-size
    intermediates of the composed ops and walks them back one by one (the norms took 5-7% of an
    lm-tiny step on 2 CPU threads, where eager mode cannot fuse); this saves x and the per-row
    scale only. y = x r w, r = (mean(x^2) + eps)^-1/2, mean(x^2) from one fused norm pass.
    The backward is LayerNorm's fused kernel with a zero mean and rstd = r: it gives
    dw = sum(g x r) and dx = r (g w - x r mean(g w x r)) - r mean(g w), where RMSNorm has no
    last term (the gradient through LayerNorm's mean), so it is added back (g @ w, one matvec).
    fwd + bwd, 2 CPU threads: [2048, 192] 1.7 -> 0.65 ms, [3900, 192] 2.7 -> 1.25 ms against
    the same backward written out in elementwise ops."""

    @staticmethod
    def forward(ctx, x, w, eps):
        d = x.shape[-1]
        r = torch.linalg.vector_norm(x, dim=-1, keepdim=True).pow_(2).div_(d).add_(eps).rsqrt_()
        ctx.save_for_backward(x, w, r)
        return (x * r).mul_(w)

    @staticmethod
    def backward(ctx, g):
        x, w, r = ctx.saved_tensors
        d = x.shape[-1]
        dx, dw, _ = torch.ops.aten.native_layer_norm_backward(
            g, x, [d], torch.zeros_like(r), r, w, None, [True, ctx.needs_input_grad[1], False])
        dx.add_(torch.matmul(g, w).unsqueeze(-1).mul_(r / d))
        return dx, dw, None


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
    autograd Function (`_RopeQKVFn`)."""
    if torch.compiler.is_compiling():
        qk = apply_rope(qkv[:, :, :n_heads + n_kv], cos, sin)
        return qk[:, :, :n_heads], qk[:, :, n_heads:], qkv[:, :, n_heads + n_kv:]
    c, s = cos[:, :, None].to(qkv.dtype), sin[:, :, None].to(qkv.dtype)
    return _RopeQKVFn.apply(qkv, c, s, n_heads, n_kv)


class _RopeQKVFn(torch.autograd.Function):
    """RoPE and the q/k/v split with a written-out backward. The gradient of a rotation is the
    rotation by minus the angle, so only the tables are saved; the backward writes the three
    gradients into one [B, T, H + 2 KV, hd] tensor. Slicing q, k, v out of the projection
    instead gives each slice a zero-filled full-size gradient to copy into and add up (4 fills,
    4 copies and 2 adds of the projection's size per layer and step). q and k are rotated in one
    go and returned as views of one tensor."""

    @staticmethod
    def forward(ctx, qkv, c, s, h, kv):
        c2 = torch.cat((c, c), -1)
        ctx.save_for_backward(c2, s)
        ctx.h, ctx.kv = h, kv
        qk = _rotate(qkv[:, :, :h + kv], c2, s, 1.0,
                     torch.empty(qkv[:, :, :h + kv].shape, dtype=qkv.dtype, device=qkv.device))
        return qk[:, :, :h], qk[:, :, h:], qkv[:, :, h + kv:].clone()

    @staticmethod
    def backward(ctx, gq, gk, gv):
        c2, s = ctx.saved_tensors
        h, kv = ctx.h, ctx.kv
        dtype = next(g.dtype for g in (gq, gk, gv, c2) if g is not None)
        d = torch.empty((*c2.shape[:2], h + 2 * kv, c2.shape[-1]), dtype=dtype, device=c2.device)
        for g, part in ((gq, d[:, :, :h]), (gk, d[:, :, h:h + kv])):
            if g is None:
                part.zero_()
            else:
                _rotate(g, c2, s, -1.0, part)
        if gv is None:
            d[:, :, h + kv:].zero_()
        else:
            d[:, :, h + kv:].copy_(gv)
        return d, None, None, None, None


def _rotate(x: torch.Tensor, c2: torch.Tensor, s: torch.Tensor, sign: float, out: torch.Tensor) -> torch.Tensor:
    """out = x rotated by sign x the angle (c2: the cosines of both halves side by side, s: the
    sines). One full-width multiply, then each half's sine term added in place: the loops over
    the 24-wide halves of a head are what cost (4 half-width ops: 1.4x the time of this)."""
    half = x.shape[-1] // 2
    torch.mul(x, c2, out=out)
    out[..., :half].addcmul_(x[..., half:], s, value=-sign)
    out[..., half:].addcmul_(x[..., :half], s, value=sign)
    return out


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
            return self.o(small_attention(q, k, v, drop))
        q = q.transpose(1, 2)
        if spans is None:  # one sequence, causal; a single new query (cached) sees everything before it
            y = F.scaled_dot_product_attention(q, k, v, is_causal=t > 1, dropout_p=drop, enable_gqa=gqa).transpose(1, 2)
        else:  # packed rows: each sequence attends causally to itself only; padding rows stay zero
            y = span_attention(q, k, v, spans, drop, gqa)
        return self.o(y.reshape(b, t, self.h * self.hd))


def span_attention(q, k, v, spans: dict, dropout: float = 0.0, gqa: bool = False) -> torch.Tensor:
    """Causal SDPA over each packed sequence of q [B, H, T, hd], k, v [B, H or H/g, T, hd] (gqa:
    SDPA shares each k/v head among g query heads, without copying them) -> [B, T, H, hd]; rows
    outside every span (padding) are zero. The pieces are cut with unbind + split, whose backward
    is one cat: slicing each sequence out instead gives every slice a full-size zero gradient to
    add into (3 x sequences x layers zero-fills and adds of [B, H, T, hd] a step). Same values,
    bit for bit; fwd + bwd of one 2048-row bundle of 5 sequences (lm-tiny shapes, 2 CPU threads):
    median 48.7 -> 43.2 ms. The pieces are joined along T in [B, T, H, hd], the layout the CPU
    kernel writes and the output projection reads: no transposing copy."""
    t = q.shape[2]
    out = []
    # 4-D pieces [1, H, L, hd]: CPU SDPA takes its flash kernel only for 4-D input (3-D: ~1.5x slower)
    for i, (qi, ki, vi) in enumerate(zip(*(z.unsqueeze(1).unbind(0) for z in (q, k, v)))):
        sizes, real, at = [], [], 0
        for a, e in spans.get(i, ()):
            if a > at:
                sizes.append(a - at)
                real.append(False)
            sizes.append(e - a)
            real.append(True)
            at = e
        if at < t:
            sizes.append(t - at)
            real.append(False)
        parts = [F.scaled_dot_product_attention(qq, kk, vv, is_causal=True, dropout_p=dropout, enable_gqa=gqa)
                 .transpose(1, 2) if r else qq.new_zeros(qq.transpose(1, 2).shape)
                 for qq, kk, vv, r in zip(qi.split(sizes, 2), ki.split(sizes, 2), vi.split(sizes, 2), real)]
        out.append(torch.cat(parts, 1) if len(parts) > 1 else parts[0])
    return torch.cat(out, 0) if len(out) > 1 else out[0]


def small_attention(q, k, v, dropout: float = 0.0) -> torch.Tensor:
    """Causal attention for short sequences: q [N, t, H, hd] are the last t positions of k, v
    [N, KV, s, hd] (s >= t: a cache may hold earlier ones; H a multiple of KV) -> [N, t, H * hd].
    The g = H / KV query heads that share a k/v head, at all t positions, form one [t g, hd]
    matrix, so each (row, k/v head) takes one small matmul and no k/v head is copied g times;
    the causal mask is an additive bias of the scores' matmul (baddbmm). fwd + bwd of lm-tiny's
    local attention (2000 frames of 3 slots, 4 heads over 2 k/v heads, 2 CPU threads): 18 ms
    with k/v repeated per query head and a [N, H, 3, 3] matmul, 10 ms so."""
    n, t, h, hd = q.shape
    kv, s = k.shape[1], k.shape[2]
    g = h // kv
    qm = q.reshape(n, t, kv, g, hd).permute(0, 2, 1, 3, 4).reshape(n * kv, t * g, hd)
    future = torch.ones(t, s, dtype=torch.bool, device=q.device).triu(s - t + 1)[:, None]
    bias = torch.zeros(t, g, s, dtype=q.dtype, device=q.device).masked_fill_(future, float("-inf"))
    scores = torch.baddbmm(bias.view(t * g, s), qm, k.reshape(n * kv, s, hd).transpose(1, 2), alpha=hd ** -0.5)
    p = torch.softmax(scores.float(), -1).to(q.dtype)
    if dropout:
        p = F.dropout(p, dropout)
    y = torch.bmm(p, v.reshape(n * kv, s, hd)).view(n, kv, t, g, hd)
    return y.permute(0, 2, 1, 3, 4).reshape(n, t, h * hd)


class SwiGLU(nn.Module):
    def __init__(self, d: int, hidden: int):
        super().__init__()
        self.gate_up = nn.Linear(d, 2 * hidden, bias=False)  # gate and up in one matmul
        self.down = nn.Linear(hidden, d, bias=False)

    def forward(self, x):
        gu = self.gate_up(x)
        if _written_out(gu):
            return self.down(_SwiGLUFn.apply(gu))
        gate, up = gu.chunk(2, -1)
        return self.down(F.silu(gate) * up)


class _SwiGLUFn(torch.autograd.Function):
    """silu(gate) * up from the fused [.., 2h] projection, with a backward that writes both
    halves' gradients into one tensor (autograd's chunk backward concatenates them: a full
    copy of the widest activation, per block, per step)."""

    @staticmethod
    def forward(ctx, gu):
        gate, up = gu.chunk(2, -1)
        act = F.silu(gate)
        ctx.save_for_backward(gu, act)
        return act * up

    @staticmethod
    def backward(ctx, g):
        gu, act = ctx.saved_tensors
        gate, up = gu.chunk(2, -1)
        d = torch.empty_like(gu)
        d_gate, d_up = d.chunk(2, -1)
        torch.mul(g, act, out=d_up)
        torch.ops.aten.silu_backward.grad_input(g * up, gate, grad_input=d_gate)
        return d


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


_FLEX_COMPILED = None


def flex_attention(q, k, v, block_mask, gqa: bool):
    """FlexAttention, compiled once on CUDA (eager FlexAttention materialises every score and
    is for checking only; inside a compiled model the outer compile takes it)."""
    from torch.nn.attention.flex_attention import flex_attention as flex

    global _FLEX_COMPILED
    if q.is_cuda and not torch.compiler.is_compiling():
        if _FLEX_COMPILED is None:
            _FLEX_COMPILED = torch.compile(flex, dynamic=False)
        return _FLEX_COMPILED(q, k, v, block_mask=block_mask, enable_gqa=gqa)
    return flex(q, k, v, block_mask=block_mask, enable_gqa=gqa)


def document_mask(doc: torch.Tensor, block: int = 128):
    """A FlexAttention BlockMask: row q sees row kv when both belong to one sequence and kv <= q;
    padding rows (-1) see nothing (their output is zero, as with spans).

    Built from per-block sequence ranges, not from a dense [B, T, T] mask (create_block_mask
    costs ~100x more): a (q, kv) block pair is skipped when causality or the ranges rule out
    every pair, *full* (no mask evaluated) when both blocks lie inside one sequence and kv is
    before q, and *partial* (the mask function decides each pair) otherwise. Ranges only
    over-approximate which sequences a block holds, so no allowed pair is ever dropped."""
    from torch.nn.attention.flex_attention import BlockMask

    b, t = doc.shape
    n = -(-t // block)
    padded = doc if n * block == t else torch.cat([doc, doc.new_full((b, n * block - t), -1)], 1)
    blocks = padded.view(b, n, block)
    hi = blocks.amax(-1)  # -1: all padding
    lo = torch.where(blocks >= 0, blocks, torch.iinfo(blocks.dtype).max).amin(-1)
    dense = blocks.amin(-1) >= 0  # no padding row in the block
    qi = torch.arange(n, device=doc.device)
    causal = qi[None, :, None] >= qi[None, None, :]  # [1, q block, kv block]
    meet = (lo[:, :, None] <= hi[:, None, :]) & (lo[:, None, :] <= hi[:, :, None])
    some = causal & meet & (hi[:, :, None] >= 0) & (hi[:, None, :] >= 0)
    single = dense & (lo == hi)
    full = (qi[None, :, None] > qi[None, None, :]) & single[:, :, None] & single[:, None, :] & \
        (lo[:, :, None] == lo[:, None, :])
    partial = some & ~full

    def indices(m):  # BlockMask's sparse form: per q block, how many kv blocks and which (first)
        num = m.sum(-1, dtype=torch.int32)[:, None]
        idx = torch.sort(m.to(torch.int8), dim=-1, descending=True, stable=True).indices.to(torch.int32)[:, None]
        return num.contiguous(), idx.contiguous()

    def allowed(bi, h, q, kv):
        return (doc[bi, q] == doc[bi, kv]) & (q >= kv) & (doc[bi, q] >= 0)

    return BlockMask.from_kv_blocks(*indices(partial), *indices(full), BLOCK_SIZE=block, mask_mod=allowed,
                                    seq_lengths=(t, t))


def predicted_rows(doc: torch.Tensor, loss_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch row, t) of each global state h_t that predicts row t+1: both rows belong to one
    sequence and t+1 is a target."""
    pred = loss_mask[:, 1:] & (doc[:, 1:] == doc[:, :-1]) & (doc[:, 1:] >= 0)
    return pred.nonzero(as_tuple=True)


ATTENTION_KINDS = ("auto", "spans", "flex")


def attention_plan(doc: torch.Tensor, kind: str = "auto"):
    """How the global transformer keeps packed sequences apart: "spans" (`sequence_spans`),
    "flex" (`document_mask`), "auto" = flex on CUDA, spans elsewhere."""
    if kind not in ATTENTION_KINDS:
        raise ValueError(f"attention must be one of {ATTENTION_KINDS}, got {kind!r}")
    if kind == "flex" or (kind == "auto" and doc.is_cuda):
        return document_mask(doc)
    return sequence_spans(doc)


HEAD_MULTIPLE = 64


def padded_width(n: int) -> int:
    """The width a loss head of n ids runs at (`padded_logits`; flops.py counts the same)."""
    return -(-n // HEAD_MULTIPLE) * HEAD_MULTIPLE


def padded_logits(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x [N, d] @ weight.T, the output width rounded up to a multiple of HEAD_MULTIPLE with -inf
    in the extra columns (softmax gives them nothing, a target never points there): the loss
    path's head. Like nanoGPT's vocabulary padded to 50304: lm-tiny's 1881-wide heads ran fwd +
    bwd 1.3x faster 1920 wide on 2 CPU threads (the matmul alone), and -inf columns rather than
    cutting the logits back spare the softmax a strided copy. Parameters keep their real width."""
    n, wide = weight.shape[0], padded_width(weight.shape[0])
    if wide == n:
        return F.linear(x, weight)
    bias = x.new_zeros(wide)
    bias[n:] = float("-inf")
    return torch.addmm(bias, x, padded_weight(weight).t())


def padded_weight(weight: torch.Tensor) -> torch.Tensor:
    """A head's weight [n, d] with zero rows appended up to `padded_width(n)`."""
    n = weight.shape[0]
    return F.pad(weight, (0, 0, 0, padded_width(n) - n)) if padded_width(n) != n else weight


def head_loss(x: torch.Tensor, weight: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-row cross-entropy of the head x [N, d] @ weight.T against target [N] (indices into
    weight's rows), run 64-padded (`padded_logits`). Eager float32: one autograd Function
    (`_HeadLossFn`); otherwise (compiled, half precision, autocast: the head's matmul in half
    precision, the loss in float32) the plain ops."""
    if _written_out(x) and not torch.is_autocast_enabled(x.device.type):
        return _HeadLossFn.apply(x, weight, target)
    return F.cross_entropy(padded_logits(x, weight).float(), target, reduction="none")


class _HeadLossFn(torch.autograd.Function):
    """The loss head with a written-out backward: dlogits = (softmax - onehot) g, from the saved
    log-probabilities. The plain ops make ~4 more passes over the [N, 1920] logits per head and
    step: addmm's copy of the -inf bias row into its output, cross-entropy's zero-filled
    gradient, a log-softmax into a second buffer and its backward's extra read. On CPU the
    log-softmax is written over the logits in place (row by row, each row read before written)."""

    @staticmethod
    def forward(ctx, x, weight, target):
        n, wp = weight.shape[0], padded_weight(weight)
        logits = x @ wp.t()
        logits[:, n:] = float("-inf")  # the padding columns: no probability
        logp = torch._log_softmax(logits, -1, False, out=logits) if logits.is_cpu else torch.log_softmax(logits, -1)
        ctx.save_for_backward(x, wp, logp, target)
        ctx.n = n
        return logp.gather(1, target[:, None]).squeeze(1).neg_()

    @staticmethod
    def backward(ctx, g):
        x, wp, logp, target = ctx.saved_tensors
        # softmax x g as exp(logp + log g), floored at exp(-80) = 1.8e-35, so that no subnormal
        # float reaches the matmuls below: flooring p and then multiplying by g (~1e-4) left
        # ~1e-42 in the -inf padding columns and the step ran 1.12x slower (measured again with
        # subnormals flushed, as `train lm` does: no better). The floor also keeps exp off its
        # slow path: torch's CPU exp is ~100x slower where its result is subnormal (input < -87.3).
        if bool((g >= 0).all()):
            d = torch.add(logp, g.log()[:, None]).clamp_(min=-80.0).exp_()
            zero = (g == 0).nonzero().squeeze(1)  # rows without a loss (masked targets): exactly 0
            if len(zero):
                d.index_fill_(0, zero, 0.0)
        else:
            d = torch.clamp(logp, min=-80.0).exp_().mul_(g[:, None])
        d.scatter_add_(1, target[:, None], -g[:, None])
        dx = d @ wp if ctx.needs_input_grad[0] else None
        dw = (d.t() @ x)[:ctx.n] if ctx.needs_input_grad[1] else None
        return dx, dw, None


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
            losses.append(head_loss(xs, self.heads[s].weight, local.clamp(min=0)) * ok)
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


class LoRALinear(nn.Module):
    """A frozen Linear plus a low-rank update: y = W x + (alpha / r) B A dropout(x), B = 0 at
    start (so the wrapped layer is unchanged until it trains). `merged()` gives W + (alpha/r) B A."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float):
        super().__init__()
        self.base = base
        base.weight.requires_grad_(False)
        self.a = nn.Parameter(torch.empty(rank, base.in_features))
        self.b = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.a, a=math.sqrt(5))  # PEFT's initialisation
        self.scale, self.drop = alpha / rank, nn.Dropout(dropout)

    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight

    def forward(self, x):
        return self.base(x) + (self.drop(x) @ self.a.t() @ self.b.t()) * self.scale

    def merged(self) -> torch.Tensor:
        return self.base.weight + self.scale * (self.b @ self.a).to(self.base.weight.dtype)


LORA_TARGETS = ("qkv", "o", "gate_up", "down")


def apply_lora(blocks: nn.ModuleList, rank: int, alpha: float, dropout: float, targets) -> int:
    """Wrap the target Linears of `blocks` (names: qkv, o, gate_up, down) in LoRALinear and
    freeze everything else in them. Returns the number of adapter parameters."""
    for p in blocks.parameters():
        p.requires_grad_(False)
    n = 0
    for blk in blocks:
        for parent in (blk.attn, blk.ffn):
            for name in targets:
                lin = getattr(parent, name, None)
                if isinstance(lin, nn.Linear):
                    wrapped = LoRALinear(lin, rank, alpha, dropout)
                    setattr(parent, name, wrapped)
                    n += wrapped.a.numel() + wrapped.b.numel()
    return n


def merged_state_dict(model: nn.Module) -> dict:
    """The model's weights with every LoRA adapter folded in (W + scale B A under the plain
    Linear's name): what inference checkpoints hold, loadable without LoRA."""
    sd = {k: v.detach() for k, v in model.state_dict().items()}
    for name, m in model.named_modules():
        if isinstance(m, LoRALinear):
            for key in (".a", ".b", ".base.weight"):
                sd.pop(name + key)
            sd[name + ".weight"] = m.merged().detach()
    return sd


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
            cols.append(head_loss(xs, self.heads[s].weight, local.clamp(0, self.codebook_size - 1)) * ok)
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


def llama_shape(path: str) -> dict:
    """The ModelConfig fields a transformers Llama checkpoint in a local folder fixes for the
    middle blocks (ConfigError naming model.middle when it is not a plain Llama)."""
    from transformers import AutoConfig

    try:
        c = AutoConfig.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as e:
        raise ConfigError("model.middle", f"no transformers config in {path}: {e}") from None
    if c.model_type != "llama":
        raise ConfigError("model.middle", f"{path} is a {c.model_type!r} model; the middle loads Llama checkpoints")
    if getattr(c, "hidden_act", "silu") != "silu" or getattr(c, "attention_bias", False) or getattr(c, "mlp_bias", False):
        raise ConfigError("model.middle", f"{path}: only SiLU, bias-free Llama layers are supported")
    scaling = getattr(c, "rope_scaling", None)
    theta = getattr(c, "rope_theta", None)
    params = getattr(c, "rope_parameters", None) or {}
    if theta is None:
        theta = params.get("rope_theta", 10000.0)
    if scaling and scaling.get("rope_type", scaling.get("type")) not in (None, "default") or \
            params.get("rope_type", "default") != "default":
        raise ConfigError("model.middle", f"{path}: RoPE scaling {scaling or params} is not supported")
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    if head_dim * c.num_attention_heads != c.hidden_size:
        raise ConfigError("model.middle", f"{path}: head_dim x heads != hidden_size")
    return {"d_model": c.hidden_size, "n_layers": c.num_hidden_layers, "n_heads": c.num_attention_heads,
            "n_kv_heads": c.num_key_value_heads, "ffn_mult": c.intermediate_size / c.hidden_size,
            "norm_eps": c.rms_norm_eps, "rope_theta": float(theta), "llm_vocab": c.vocab_size}


@torch.no_grad()
def load_llama(model: MultiStreamLM, path: str) -> None:
    """Copy a local transformers Llama into the middle blocks, the final norm, and the LLM's
    embedding and head (q/k/v and gate/up fused as our blocks hold them)."""
    from transformers import AutoModelForCausalLM

    llm = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch.float32)
    sd = llm.state_dict()
    if model.cfg.ffn_hidden != llm.config.intermediate_size:
        raise ConfigError("model.ffn_mult", f"gives {model.cfg.ffn_hidden} hidden units; {path} has "
                                            f"{llm.config.intermediate_size}")
    for i, blk in enumerate(model.blocks):
        p = f"model.layers.{i}."
        blk.attn.qkv.weight.copy_(torch.cat([sd[p + f"self_attn.{n}_proj.weight"] for n in "qkv"]))
        blk.attn.o.weight.copy_(sd[p + "self_attn.o_proj.weight"])
        blk.ffn.gate_up.weight.copy_(torch.cat([sd[p + "mlp.gate_proj.weight"], sd[p + "mlp.up_proj.weight"]]))
        blk.ffn.down.weight.copy_(sd[p + "mlp.down_proj.weight"])
        blk.norm1.weight.copy_(sd[p + "input_layernorm.weight"])
        blk.norm2.weight.copy_(sd[p + "post_attention_layernorm.weight"])
    model.norm.weight.copy_(sd["model.norm.weight"])
    model.llm_embed.weight.copy_(sd["model.embed_tokens.weight"])
    model.llm_head.weight.copy_(sd.get("lm_head.weight", sd["model.embed_tokens.weight"]))  # tied or not


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
