"""Codec encode/decode speed as real-time factor (audio seconds per wall second), batch 1
and batched, on CPU (and CUDA when present), side by side; encode both greedy and with the
tokenizer's RVQ beam search, with their ratio (what the beam costs).

    python benchmarks/codec_speed.py [--checkpoint OUT/codec.pt] [--seconds 10] [--batch 8] [--beam 8]
Without a checkpoint the default architecture with random weights is timed (same compute)."""

from __future__ import annotations

import argparse
import sys
import time

import torch


def timed(fn, repeat: int = 3) -> float:
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--n-codebooks", type=int, default=3)
    ap.add_argument("--decoder", default="seanet", help="architecture without --checkpoint: seanet or istft")
    ap.add_argument("--beam", type=int, default=None, help="RVQ beam width (default: the tokenizer's)")
    args = ap.parse_args()

    from uniaudio.tokenize.codec_model import DECODERS, Codec, CodecConfig
    from uniaudio.tokenize.uniaudio_codec import DEFAULT_BEAM

    beam = DEFAULT_BEAM if args.beam is None else args.beam
    if beam < 1:
        ap.error("--beam must be >= 1")

    if args.decoder not in DECODERS:
        ap.error(f"--decoder must be one of {', '.join(DECODERS)}")

    if args.checkpoint:
        from uniaudio import checkpoint

        model = Codec.from_checkpoint(checkpoint.load(args.checkpoint))
        label = args.checkpoint
    else:
        model, label = Codec(CodecConfig(decoder=args.decoder)).eval(), f"{args.decoder} decoder, random weights"
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"uniaudio-codec ({label}), {args.n_codebooks} codebooks, {args.seconds:g} s clips, "
          f"torch threads {torch.get_num_threads()}")
    print(f"{'device':8}{'batch':>6}{'encode xRT':>12}{f'beam {beam} xRT':>14}{'beam/greedy':>13}{'decode xRT':>12}")
    for dev in devices:
        m = model.to(dev)
        for b in (1, args.batch):
            print(f"timing {dev} batch {b}: greedy, beam {beam}, decode (3 runs each after a warm-up)...",
                  file=sys.stderr, flush=True)
            x = torch.randn(b, int(args.seconds * m.config.sample_rate), device=dev) * 0.1
            codes = m.encode(x, args.n_codebooks)
            sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
            t_enc = timed(lambda: (m.encode(x, args.n_codebooks), sync()))
            t_beam = timed(lambda: (m.encode(x, args.n_codebooks, beam), sync()))
            t_dec = timed(lambda: (m.decode(codes), sync()))
            sec = b * args.seconds
            print(f"{dev:8}{b:6d}{sec / t_enc:12.1f}{sec / t_beam:14.1f}{t_enc / t_beam:13.2f}{sec / t_dec:12.1f}")


if __name__ == "__main__":
    main()
