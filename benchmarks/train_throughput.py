"""Trainer throughput vs a minimal nanoGPT-style loop of the same FLOPs, side by side, in one run.

ours    : `uniaudio train lm` (the real loop: streaming bundles, multi-scale model, logging),
          each step timed from the end of the one before (data, forward, backward, optimizer,
          logging); model FLOPs from its log;
baseline: a minimal GPT (embedding, pre-LN blocks with fused causal attention and a GELU MLP,
          one head) trained by a bare loop on random tokens, sized so that one of its steps
          costs the same FLOPs as one of ours, on the same threads.
The two take turns step by step (train lm's after_step runs one baseline step after each of
ours): a shared machine's speed drifts by +-15% over seconds, and a drift then hits both alike
(separate runs of the two gave ratios from 0.70 to 1.04 on this 2-core machine; interleaved,
the 10-step windows of one run agree within about +-5% and whole runs within +-0.03). On a GPU both are synchronised at
each step end, so ours loses the overlap of one step's host work with the last one's kernels.
Goal: ours / baseline >= 0.9 in FLOP/s. On a GPU both print MFU against the card's peak
(GPU_CHECKS item 3: the 100M config, bf16, compiled; goal MFU >= 45%).

    python benchmarks/train_throughput.py [--data demo-data/sentences] [--steps 40] [--threads 2]
    python benchmarks/train_throughput.py --config configs/lm-100m.yaml --device cuda --compile --check

--check (GPU) first runs one eager step of ours under torch's FlopCounterMode and compares it with
the structural count, and compares the gradients of the flex (GPU) and spans (CPU) attention
paths on one batch.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))


class MiniBlock(nn.Module):
    def __init__(self, d: int, h: int):
        super().__init__()
        self.h = h
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d, bias=False), nn.Linear(d, d, bias=False)
        self.fc, self.out = nn.Linear(d, 4 * d, bias=False), nn.Linear(4 * d, d, bias=False)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, -1)
        q, k, v = (z.view(b, t, self.h, d // self.h).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, d)
        x = x + self.proj(y)
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class MiniGPT(nn.Module):
    def __init__(self, vocab: int, d: int, layers: int, heads: int, t: int):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(t, d)
        self.blocks = nn.ModuleList(MiniBlock(d, heads) for _ in range(layers))
        self.ln, self.head = nn.LayerNorm(d), nn.Linear(d, vocab, bias=False)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        for blk in self.blocks:
            x = blk(x)
        return F.cross_entropy(self.head(self.ln(x)).flatten(0, 1), targets.flatten())


def mini_flops(d: int, layers: int, vocab: int, b: int, t: int) -> float:
    """The same rule as ours: 6 x Linear weights x tokens + causal attention on real lengths."""
    linear = layers * (3 * d * d + d * d + 8 * d * d) + d * vocab
    return 3 * (2 * linear * b * t + 4 * d * layers * b * t * (t + 1) / 2)


class Baseline:
    """The minimal loop, built (and warmed up, compiled) once; `timed_step()` runs one step."""

    def __init__(self, flops_target: float, d: int, heads: int, vocab: int, b: int, t: int,
                 device: torch.device, compile: bool, ctx):
        per_layer = mini_flops(d, 1, 0, b, t)
        self.layers = max(1, round((flops_target - mini_flops(d, 0, vocab, b, t)) / per_layer))
        self.flops_per_step = mini_flops(d, self.layers, vocab, b, t)
        self.b, self.t, self.device, self.ctx = b, t, device, ctx
        torch.manual_seed(0)
        self.model = MiniGPT(vocab, d, self.layers, heads, t).to(device)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-3, fused=device.type == "cuda")
        self.fwd = torch.compile(self.model) if compile else self.model
        self.idx = torch.randint(0, vocab, (b, t), device=device)
        for _ in range(5):  # warm-up (and compilation): the first steps of a process run slower
            self.step()

    def step(self) -> None:
        with self.ctx:
            loss = self.fwd(self.idx, self.idx)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)

    def timed_step(self) -> float:
        sync(self.device)
        t0 = time.perf_counter()
        self.step()
        sync(self.device)
        return time.perf_counter() - t0


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def check(cfg, device: torch.device) -> None:
    """GPU: FlopCounterMode vs the structural count on one eager step (spans attention, whose
    SDPA calls torch counts), and flex vs spans gradients on the same batch (float32)."""
    from torch.utils.flop_counter import FlopCounterMode

    from uniaudio.train.data import BundleReader, collate
    from uniaudio.train.flops import step_flops
    from uniaudio.train.data import SentenceData
    from uniaudio.train.lm import build_model
    from uniaudio.train.attention import attention_plan

    data = SentenceData(cfg.data)
    torch.manual_seed(0)
    model, supports = build_model(data, cfg.model)
    model.to(device)
    reader = BundleReader(data.root, data.vocab, data.context, [s.numpy() for s in supports])
    b = collate([reader.read(r) for r in data.bundles[:2]], data.vocab.id("<pad>"))
    ids, pos, doc, loss = (b[k].to(device) for k in ("ids", "pos", "doc", "loss"))
    if device.type == "cuda":  # rows padded to the context, as the trainer does for flex attention
        from uniaudio.train.lm import _padded

        n = data.context
        ids, pos, doc, loss = (_padded(ids, n, data.vocab.id("<pad>")), _padded(pos, n, 0), _padded(doc, n, -1),
                               _padded(loss, n, False))
    with FlopCounterMode(display=False) as fc:
        out = model(ids, pos, doc, loss, attention_plan(doc, "spans"))
        (out["loss"] * out["valid"]).sum().backward()
    counted = fc.get_total_flops()
    # torch counts the CUDA SDPA kernels, whose backward it charges for recomputing the scores
    # (5 matmuls where the model needs 4: +1/6 of the attention FLOPs); it does not count the
    # CPU SDPA kernel (global attention on CPU)
    n_pred, cuda = len(out["rows"][0]), device.type == "cuda"
    bi, ti = out["rows"]
    n_audio = int((ids[bi, ti, 0] >= data.vocab.audio_range().offset).sum())  # the multi-stream local decoder's rows
    ours = step_flops(model, doc.cpu(), n_pred, dense=True, global_attention=cuda, n_audio=n_audio)
    if cuda:
        global_att = ours - step_flops(model, doc.cpu(), n_pred, dense=True, global_attention=False, n_audio=n_audio)
        ours += global_att / 6
    print(f"check FLOPs, one step of 2 bundles{'' if cuda else ' without global attention (CPU)'}: FlopCounterMode "
          f"{counted / 1e9:.3f} GFLOP, structural (dense{', + recomputed scores' if cuda else ''}) {ours / 1e9:.3f} "
          f"GFLOP, ratio {ours / counted:.6f}")
    if device.type != "cuda":
        print("check gradients flex vs spans: skipped (FlexAttention has no CPU backward)")
        return
    grads = []
    for kind in ("spans", "flex"):
        model.zero_grad()
        out = model(ids, pos, doc, loss, attention_plan(doc, kind))
        ((out["loss"] * out["valid"]).sum() / out["valid"].sum()).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    rel = float((grads[0] - grads[1]).norm() / grads[0].norm())
    print(f"check gradients flex vs spans (float32): relative difference {rel:.2e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="demo-data/sentences", help="a sentence output (uniaudio layout)")
    ap.add_argument("--config", default="configs/lm-tiny.yaml", help="model and batch settings for ours")
    ap.add_argument("--steps", type=int, default=40, help="timed steps of each loop (a multiple of 10)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--compile", action="store_true", help="torch.compile both loops")
    ap.add_argument("--workers", type=int, default=0, help="loader workers for ours")
    ap.add_argument("--check", action="store_true", help="FLOPs vs FlopCounterMode, flex vs spans gradients")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from uniaudio.config import load
    from uniaudio.train.flops import peak_flops
    from uniaudio.train.common import autocast
    from uniaudio.train.lm import LMTrainConfig, train

    device = torch.device(args.device)
    warm, window = 10, 10
    if args.steps < window or args.steps % window:
        ap.error(f"--steps must be a positive multiple of {window} (the log window)")
    out = Path(tempfile.mkdtemp(prefix="uniaudio-trainbench-"))
    cfg = load(LMTrainConfig, args.config, {"data": args.data, "out": str(out), "steps": warm + args.steps + 1,
                                          "log_every": window, "val_every": 10**6, "checkpoint_every": 10**6,
                                          "threads": args.threads, "device": args.device, "compile": args.compile,
                                          "workers": args.workers})
    if args.check:
        check(cfg, device)
    context = json.loads((Path(args.data) / "report.json").read_text())["context"]
    bsz, t = max(1, cfg.batch_rows // context), min(cfg.batch_rows, context)
    ctx, dtype = autocast(device, cfg.dtype)

    def log() -> list[dict]:
        return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]

    ours_s: list[float] = []  # each timed step of ours, from the end of the one before
    base_s: list[float] = []
    state: dict = {"base": None, "mark": 0.0}

    def after_step(step: int) -> None:
        sync(device)
        now = time.perf_counter()
        if step > warm + args.steps:  # the last step also validates and saves: not timed
            return
        if step > warm:
            ours_s.append(now - state["mark"])
            base_s.append(state["base"].timed_step())
        elif step == warm:  # size the baseline to the warm-up steps' FLOPs, then warm it up
            flops = sum(r["model_flops_per_s"] * r["seconds"] for r in log() if "model_flops_per_s" in r)
            print("building and warming up the minimal loop...", file=sys.stderr, flush=True)
            state["base"] = Baseline(flops / warm, cfg.model.d_model, cfg.model.n_heads, 3000, bsz, t, device,
                                     args.compile, ctx)
        state["mark"] = time.perf_counter()

    print(f"{warm} warm-up + {args.steps} steps of `train lm` on {args.data}, each followed by one step of the "
          "minimal loop (+ one untimed step that validates and saves)...", file=sys.stderr, flush=True)
    train(cfg, progress=False, after_step=after_step)
    base = state["base"]
    records = log()
    shutil.rmtree(out, ignore_errors=True)
    windows = [r for r in records if "model_flops_per_s" in r and warm < r["step"] <= warm + args.steps]
    flops = [r["model_flops_per_s"] * r["seconds"] for r in windows]  # per log window
    rows = [r["rows_per_s"] * r["seconds"] for r in windows]
    n = len(ours_s)
    o = {"flops_per_s": sum(flops) / sum(ours_s), "rows_per_s": sum(rows) / sum(ours_s), "step_s": sum(ours_s) / n,
         "flops_per_step": sum(flops) / n}
    m = {"flops_per_s": base.flops_per_step * n / sum(base_s), "rows_per_s": base.b * base.t * n / sum(base_s),
         "step_s": sum(base_s) / n, "flops_per_step": base.flops_per_step}
    # the ratio of each log window (10 steps of each loop), to show the spread
    per = [(f / sum(ours_s[i * window:(i + 1) * window])) / (base.flops_per_step * window / sum(base_s[i * window:(i + 1) * window]))
           for i, f in enumerate(flops)]
    peak = peak_flops(device)
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{args.threads} CPU threads"
    print(f"{card}, {dtype}{', compiled' if args.compile else ''}; ours: {args.config} ({records[0]['parameters'] / 1e6:.1f}M parameters) "
          f"on {args.data}; baseline: MiniGPT d={cfg.model.d_model}, {base.layers} layers, {bsz} x {t} tokens, "
          f"vocab 3000; {n} steps of each, interleaved")
    print(f"{'':28}{'GFLOP/step':>12}{'TFLOP/s':>10}{'rows/s':>10}{'s/step':>9}{'MFU':>8}")
    for name, x in (("ours (train lm)", o), ("baseline (minimal loop)", m)):
        mfu = f"{x['flops_per_s'] / peak:.3f}" if peak else "n/a"
        print(f"{name:28}{x['flops_per_step'] / 1e9:12.2f}{x['flops_per_s'] / 1e12:10.3f}{x['rows_per_s']:10.0f}"
              f"{x['step_s']:9.3f}{mfu:>8}")
    ratio = o["flops_per_s"] / m["flops_per_s"]
    print(f"ratio ours / baseline (FLOP/s): {ratio:.3f} (goal >= 0.9); per {window}-step window: "
          + " ".join(f"{x:.3f}" for x in per))
    if not math.isfinite(ratio):
        sys.exit(1)


if __name__ == "__main__":
    main()
