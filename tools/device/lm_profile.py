"""Where a training step of `train lm` spends its time on a GPU: the trainer's own step
(losses -> backward -> clip -> AdamW) on prefetched batches, timed and profiled.

    python tools/device/lm_profile.py --config configs/lm-100m.yaml --data SENTENCES [--steps 15]

Prints s/step and MFU of the bare step (no loader, no logging: compare with
benchmarks/train_throughput.py to see the loop's share), the cost of building the document
block mask, and torch.profiler's top kernels and host ops."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/lm-100m.yaml")
    ap.add_argument("--data", default="demo-data/sentences")
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args()

    from uniaudio.config import load
    from uniaudio.train.data import BundleStream, loader
    from uniaudio.train.flops import peak_flops, step_flops
    from uniaudio.train.attention import document_mask
    from uniaudio.train.common import autocast
    from uniaudio.train.data import SentenceData
    from uniaudio.train.lm import LMTrainConfig, _losses, build_model

    cfg = load(LMTrainConfig, args.config, {"data": args.data, "out": "/tmp/unused"})
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = SentenceData(cfg.data)
    torch.manual_seed(0)
    model, supports = build_model(data, cfg.model)
    model.to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=dev.type == "cuda")
    fwd = model if args.no_compile else torch.compile(model)
    ctx, dtype = autocast(dev, cfg.dtype)
    kind = "flex" if dev.type == "cuda" else "spans"
    np_sup = [s.numpy() for s in supports]
    stream = BundleStream(data, data.bundles, batch_rows=cfg.batch_rows, seed=0, rank=0, world=1, workers=cfg.workers,
                          start=0, max_rows=data.context, supports=np_sup)
    it = iter(loader(stream, cfg.workers, cfg.seed, pin_memory=dev.type == "cuda"))
    warm = 12
    batches = [next(it) for _ in range(warm + 2 * args.steps)]
    batches = [b for b in batches if b["keys"]]

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def step(batch):
        with ctx:
            loss, o = _losses(fwd, batch, dev, False, kind, data.context, data.vocab.id("<pad>"))
        if not torch.isfinite(loss):
            raise FloatingPointError("non-finite loss")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return step_flops(model, batch["doc"], len(o["rows"][0]))

    t0 = time.perf_counter()
    for b in batches[:warm]:
        step(b)
    sync()
    print(f"warm-up {warm} steps (compile): {time.perf_counter() - t0:.1f}s", flush=True)
    timed = batches[warm:warm + args.steps]
    t0 = time.perf_counter()
    flops = sum(step(b) for b in timed)
    sync()
    dt = (time.perf_counter() - t0) / len(timed)
    peak = peak_flops(dev)
    print(f"{torch.cuda.get_device_name() if dev.type == 'cuda' else 'cpu'} {dtype}: bare step {dt * 1e3:.1f} ms, "
          f"{flops / len(timed) / dt / 1e12:.1f} TFLOP/s" + (f", MFU {flops / len(timed) / dt / peak:.3f}" if peak else ""))
    doc = batches[0]["doc"].to(dev)
    from uniaudio.train.lm import _padded

    doc = _padded(doc, data.context, -1)
    for name, fn in (("document_mask", lambda: document_mask(doc)),):
        fn()
        sync()
        t0 = time.perf_counter()
        for _ in range(10):
            fn()
        sync()
        print(f"{name}: {(time.perf_counter() - t0) / 10 * 1e3:.2f} ms", flush=True)
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    with profile(activities=acts) as prof:
        for b in batches[warm + args.steps:warm + args.steps + 5]:
            step(b)
        sync()
    key = "self_cuda_time_total" if dev.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=22, max_name_column_width=60))
    print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=14, max_name_column_width=60))


if __name__ == "__main__":
    main()
