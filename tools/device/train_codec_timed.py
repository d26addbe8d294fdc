"""Train the codec for a fixed wall-clock budget with a complete lr schedule: time 60 probe
steps, then size `steps` and the cosine horizon so the run ends inside the budget, and copy
codec.pt, log.jsonl and MODEL_CARD.md to --copy-to. For capped GPU sessions (each call of
the GPU tool here may run 10 minutes); `uniaudio train codec CONFIG` is the normal way.

    python tools/device/train_codec_timed.py CONFIG --budget 540 --copy-to "$OUT"

CONFIG's steps and lr_decay_steps are replaced; its out folder must be new (no last.pt)."""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

import torch

from uniaudio.config import load
from uniaudio.train.codec_trainer import CodecTrainConfig, train


def main() -> None:
    t0 = time.time()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("--budget", type=float, required=True, help="seconds for the whole script")
    ap.add_argument("--copy-to", default=None)
    ap.add_argument("--reserve", type=float, default=30.0,
                    help="seconds kept for the final checkpoint, model card and copy")
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    cfg = load(CodecTrainConfig, args.config)
    if (Path(cfg.out) / "last.pt").exists():
        raise SystemExit(f"{cfg.out}/last.pt exists: this script starts runs, use a new out folder")
    probe_dir = Path(cfg.out + "-probe")
    shutil.rmtree(probe_dir, ignore_errors=True)
    t = time.time()
    train(replace(cfg, out=str(probe_dir), steps=60, lr_decay_steps=None, log_every=10, checkpoint_every=10**9),
          progress=False)
    log = [json.loads(line) for line in (probe_dir / "log.jsonl").read_text().splitlines()]
    per_step = (log[-1]["seconds"] - log[1]["seconds"]) / (log[-1]["step"] - log[1]["step"])
    setup = time.time() - t - per_step * 60  # data loading etc., paid again by the real run
    left = args.budget - (time.time() - t0) - setup - args.reserve
    steps = int(0.95 * left / per_step)  # 5% margin: the probe ran faster than long runs did
    if steps <= cfg.warmup_steps:
        raise SystemExit(f"budget too small: {per_step * 1000:.1f} ms/step leaves {steps} steps")
    print(f"probe {per_step * 1000:.1f} ms/step at batch {cfg.batch_size}: training {steps} steps", flush=True)
    run = replace(cfg, steps=steps, lr_decay_steps=steps, checkpoint_every=max(100, steps // 8))
    train(run, progress=False)
    if args.copy_to:
        for f in ("codec.pt", "log.jsonl", "MODEL_CARD.md"):
            shutil.copy(Path(cfg.out) / f, Path(args.copy_to) / f)
    print(f"done in {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
