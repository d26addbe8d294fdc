"""The LM's speed kernels (uniaudio/train/kernels.py) against the plain ops they stand for:
gradchecks of the written-out backwards, the attentions against SDPA."""

import torch

from uniaudio.train.kernels import HeadLossFn, RMSNormFn, SwiGLUFn, head_loss, padded_logits, small_attention


def test_small_attention_equals_sdpa():
    """The local transformer's written-out attention is causal SDPA (grouped k/v heads: 4 query
    heads over 2), with and without a cache, in values and gradients."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    q = torch.randn(5, 3, 4, 8, requires_grad=True)  # [N, t, H, hd], as the fused projection lays them out
    k, v = (torch.randn(5, 2, 3, 8, requires_grad=True) for _ in range(2))  # [N, KV, s, hd]

    def sdpa(qq, mask=None, causal=False):
        y = F.scaled_dot_product_attention(qq.transpose(1, 2), k, v, attn_mask=mask, is_causal=causal, enable_gqa=True)
        return y.transpose(1, 2).reshape(qq.shape[0], qq.shape[1], -1)

    mine, want = small_attention(q, k, v), sdpa(q, causal=True)
    assert torch.allclose(mine, want, atol=1e-6)
    g = torch.randn_like(want)
    grads = [torch.autograd.grad(y, (q, k, v), g) for y in (mine, want)]
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-5)
    # a cached step: the last query sees every key
    assert torch.allclose(small_attention(q[:, 2:], k, v), sdpa(q[:, 2:]), atol=1e-6)
    # two new queries after one cached key: query i sees keys 0..i+1
    want = sdpa(q[:, 1:], mask=torch.ones(2, 3, dtype=torch.bool).tril(1))
    assert torch.allclose(small_attention(q[:, 1:], k, v), want, atol=1e-6)


def test_written_out_backwards_equal_autograd_of_the_plain_ops():
    """RMSNorm, RoPE (with the q/k/v split), SwiGLU and the loss head have hand-written backwards
    (speed on CPU); they must match autograd of the plain formulas, and the padded loss heads must
    score exactly the real columns."""
    import torch.nn.functional as F

    from uniaudio.train.model import RMSNorm, apply_rope, rope_qkv, rope_tables

    torch.manual_seed(0)
    x = torch.randn(2, 5, 6, dtype=torch.double, requires_grad=True)
    w = torch.randn(6, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: RMSNormFn.apply(a, b, 1e-6), (x, w))
    # RoPE + the q/k/v split of a fused projection: 2 query heads, 1 k/v head
    cos, sin = (t.double()[None, :5] for t in rope_tables(8, 5, 10000.0))
    qkv = torch.randn(1, 5, 4, 8, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: rope_qkv(a, 2, 1, cos, sin), (qkv,))
    q, k, v = rope_qkv(qkv, 2, 1, cos, sin)
    assert torch.allclose(q, apply_rope(qkv[:, :, :2], cos, sin)) and torch.allclose(k, apply_rope(qkv[:, :, 2:3], cos, sin))
    assert torch.equal(v, qkv[:, :, 3:])
    assert torch.autograd.gradcheck(lambda a: rope_qkv(a, 2, 1, cos, sin)[1], (qkv,))  # q and v unused
    gu = torch.randn(2, 3, 10, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(SwiGLUFn.apply, (gu,))
    assert torch.allclose(SwiGLUFn.apply(gu), F.silu(gu[..., :5]) * gu[..., 5:])

    norm = RMSNorm(6)
    norm.weight.data.normal_()
    xf = torch.randn(4, 6)
    plain = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + norm.eps) * norm.weight
    assert torch.allclose(norm(xf), plain, atol=1e-6)

    h, weight = torch.randn(7, 6, requires_grad=True), torch.randn(70, 6, requires_grad=True)  # 70 -> 128 wide
    target = torch.randint(0, 70, (7,))
    wide = padded_logits(h, weight)
    assert wide.shape == (7, 128) and torch.isinf(wide[:, 70:]).all()
    assert torch.allclose(wide[:, :70], h @ weight.t(), atol=1e-6)
    ours = F.cross_entropy(wide, target)
    ref = F.cross_entropy(h @ weight.t(), target)
    assert torch.allclose(ours, ref, atol=1e-6)
    g_ours = torch.autograd.grad(ours, (h, weight))
    g_ref = torch.autograd.grad(ref, (h, weight))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(g_ours, g_ref))

    # the loss head's Function: per-row cross-entropy of the padded head, its written-out
    # backward (masked rows get exactly zero gradient; a negative weight takes the other branch)
    ok = torch.tensor([1, 1, 0, 1, 1, 0, 1.0])
    ours = head_loss(h, weight, target)
    ref = F.cross_entropy(h @ weight.t(), target, reduction="none")
    assert ours.shape == (7,) and torch.allclose(ours, ref, atol=1e-5)
    for scale in (ok, ok - 2.0):
        g_ours = torch.autograd.grad((head_loss(h, weight, target) * scale).sum(), (h, weight))
        g_ref = torch.autograd.grad((ref * scale).sum(), (h, weight), retain_graph=True)
        assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(g_ours, g_ref))
    assert torch.equal(torch.autograd.grad((head_loss(h, weight, target) * ok).sum(), h)[0][ok == 0],
                       torch.zeros(2, 6))
    hd, wd = h.detach().double().requires_grad_(), weight.detach().double().requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: HeadLossFn.apply(a, b, target), (hd, wd))
