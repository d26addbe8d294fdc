"""Speed kernels of the LM for eager execution: the same math as the plain ops in model.py, with
written-out backwards and attention written for the shapes the model has.

Eager CPU cannot fuse elementwise work, so autograd's composed ops make many passes over the
activations; these autograd Functions cut them (measured figures in each docstring). They run in
eager float32 only (`written_out`): compiled, the plain ops run and the compiler fuses them; in
half precision the plain ops keep autocast's dtypes. tests/test_lm.py checks each against
autograd of the plain ops (gradcheck) and the attentions against SDPA."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def written_out(x: torch.Tensor) -> bool:
    """Whether to run a written-out backward (`RMSNormFn`, `SwiGLUFn`): float32 eager only.
    Compiled, the compiler fuses the plain ops; in half precision they keep autocast's dtypes."""
    return x.dtype == torch.float32 and not torch.compiler.is_compiling()


class RMSNormFn(torch.autograd.Function):
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


class RopeQKVFn(torch.autograd.Function):
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


class SwiGLUFn(torch.autograd.Function):
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
    (`HeadLossFn`); otherwise (compiled, half precision, autocast: the head's matmul in half
    precision, the loss in float32) the plain ops."""
    if written_out(x) and not torch.is_autocast_enabled(x.device.type):
        return HeadLossFn.apply(x, weight, target)
    return F.cross_entropy(padded_logits(x, weight).float(), target, reduction="none")


class HeadLossFn(torch.autograd.Function):
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
