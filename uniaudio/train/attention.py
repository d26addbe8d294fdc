"""How the global transformer keeps packed sequences apart (`attention_plan`): "spans", a loop of
causal SDPA calls over each sequence (`kernels.span_attention`; no cross-sequence work, the CPU
default), or "flex", one FlexAttention call with a block-sparse document mask built from the
sequence numbers (compiled; the GPU default, where hundreds of small kernels would leave the card
idle). Both give the same rows."""

from __future__ import annotations

import torch


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


ATTENTION_KINDS = ("auto", "spans", "flex")


def attention_plan(doc: torch.Tensor, kind: str = "auto"):
    """How the global transformer keeps packed sequences apart: "spans" (`sequence_spans`),
    "flex" (`document_mask`), "auto" = flex on CUDA, spans elsewhere."""
    if kind not in ATTENTION_KINDS:
        raise ValueError(f"attention must be one of {ATTENTION_KINDS}, got {kind!r}")
    if kind == "flex" or (kind == "auto" and doc.is_cuda):
        return document_mask(doc)
    return sequence_spans(doc)
