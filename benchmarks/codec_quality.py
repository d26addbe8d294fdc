"""Codec quality on held-out real speech (ljspeech-mini), ours vs Codec2, side by side.

ours   : uniaudio-codec at N codebooks (3 = 1.5 kbps at 50 Hz x 10 bits);
codec2 : Codec2 1600 bps (Debian `codec2`: c2enc/c2dec, 8 kHz), upsampled back to 16 kHz.
Both outputs are time-aligned to the reference by cross-correlation (Codec2 adds delay),
then scored with the harness's PESQ-wb, PESQ-nb, STOI and mel distance. Also reports mel
distance of our codec on demo sound and music clips. Goal: ours beats Codec2 on PESQ and
STOI at <= 1.5 kbps.

    python benchmarks/codec_quality.py --checkpoint OUT/codec.pt [--n-codebooks 3] [--beam W] [--demo DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import progress  # noqa: E402


def align(ref: np.ndarray, hyp: np.ndarray, max_lag: int = 1600) -> np.ndarray:
    """Shift hyp by the lag (|lag| <= max_lag samples) that maximises correlation with ref."""
    n = min(len(ref), len(hyp))
    r, h = ref[:n], hyp[:n]
    spec = np.fft.rfft(r, 2 * n) * np.conj(np.fft.rfft(h, 2 * n))
    xc = np.fft.irfft(spec)
    lags = np.concatenate([xc[: max_lag + 1], xc[-max_lag:]])
    lag = int(np.argmax(lags))
    lag = lag if lag <= max_lag else lag - len(lags)
    out = np.zeros_like(ref)
    if lag >= 0:  # hyp is late by -lag... ref[t] ~ hyp[t - lag]
        seg = hyp[: len(ref) - lag]
        out[lag:lag + len(seg)] = seg
    else:
        seg = hyp[-lag:-lag + len(ref)]
        out[: len(seg)] = seg
    return out


def codec2_1600(wav16: np.ndarray) -> np.ndarray:
    from uniaudio import audio

    if not shutil.which("c2enc"):
        raise SystemExit("c2enc not found: apt-get install codec2 (./run.sh setup installs it)")
    x8 = audio.resample(wav16, 16000, 8000)
    with tempfile.TemporaryDirectory() as tmp:
        pcm = (np.clip(x8, -1, 1) * 32767).astype("<i2")
        pcm.tofile(f"{tmp}/in.raw")
        subprocess.run(["c2enc", "1600", f"{tmp}/in.raw", f"{tmp}/x.bit"], check=True, capture_output=True)
        subprocess.run(["c2dec", "1600", f"{tmp}/x.bit", f"{tmp}/out.raw"], check=True, capture_output=True)
        y8 = np.fromfile(f"{tmp}/out.raw", dtype="<i2").astype(np.float32) / 32768
    return audio.resample(y8, 8000, 16000)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--n-codebooks", type=int, default=3)
    ap.add_argument("--beam", type=int, default=None, help="RVQ beam width at encode (default: the tokenizer's)")
    ap.add_argument("--data", default=None, help="ljspeech-mini folder (default: ../shared/data/ljspeech-mini)")
    ap.add_argument("--demo", default=None, help="demo corpora folder for sound/music figures")
    ap.add_argument("--card", default=None, help="append the table to this MODEL_CARD.md")
    args = ap.parse_args()

    from uniaudio import audio
    from uniaudio.benchmark import metrics as M
    from uniaudio.benchmark.suites import find_ljspeech_mini
    from uniaudio.tokenize import get

    data = Path(args.data) if args.data else find_ljspeech_mini()
    if data is None:
        raise SystemExit("ljspeech-mini not found; pass --data")
    tok = get("uniaudio-codec", checkpoint=args.checkpoint, n_codebooks=args.n_codebooks,
              **({"beam": args.beam} if args.beam is not None else {}))
    kbps = tok.n_codebooks * np.log2(tok.codebook_size) * tok.frame_rate / 1000
    metrics = [M.get("pesq"), M.get("pesq", mode="nb"), M.get("stoi"), M.get("mel_distance")]
    rows = {"ours": [], "codec2": []}
    for wav_path in progress(sorted((data / "wavs").glob("*.wav")), "ljspeech-mini"):
        ref, _ = audio.load(wav_path, 16000)
        outs = {"ours": tok.decode(tok.encode(ref, 16000)), "codec2": codec2_1600(ref)}
        for name, hyp in outs.items():
            s = M.Sample(wav_path.stem, ref_audio=ref, hyp_audio=align(ref, hyp))
            vals = {}
            for m in metrics:
                r = m.score([s])[0]
                vals.update(r if isinstance(r, dict) else {m.name: float("nan")})
            rows[name].append(vals)
    keys = ["pesq", "pesq_nb", "stoi", "mel_distance"]
    mean = {n: {k: float(np.nanmean([v[k] for v in rows[n]])) for k in keys} for n in rows}
    lines = [f"ljspeech-mini ({len(rows['ours'])} held-out utterances), checkpoint {tok.version}",
             f"{'':28}{'PESQ-wb':>9}{'PESQ-nb':>9}{'STOI':>8}{'mel dist':>10}"]
    widths = (9, 9, 8, 10)
    lines.append(f"{f'ours @ {kbps:.2f} kbps':28}" + "".join(f"{mean['ours'][k]:{w}.3f}" for k, w in zip(keys, widths)))
    lines.append(f"{'codec2 @ 1.60 kbps':28}" + "".join(f"{mean['codec2'][k]:{w}.3f}" for k, w in zip(keys, widths)))
    lines.append(f"{'ours - codec2':28}" + "".join(f"{mean['ours'][k] - mean['codec2'][k]:{w}.3f}"
                                                   for k, w in zip(keys, widths)))
    if args.demo:
        from uniaudio.pipeline.recipes import records

        md = M.get("mel_distance")
        for name, sub in (("sound (audiocaps)", "audiocaps"), ("music (musiccaps)", "musiccaps")):
            vals = []
            for r in list(records(sub, Path(args.demo) / sub))[:12]:
                ref, _ = audio.load(r.path, 16000)
                out = md.score([M.Sample(r.id, ref_audio=ref, hyp_audio=tok.decode(tok.encode(ref, 16000)))])[0]
                vals.append(out["mel_distance"])
            lines.append(f"{name:28} mel distance {np.mean(vals):.3f} over {len(vals)} clips")
    print("\n".join(lines))
    if args.card:
        with open(args.card, "a") as f:
            f.write("\n```\n" + "\n".join(lines) + "\n```\n(benchmarks/codec_quality.py)\n")


if __name__ == "__main__":
    sys.exit(main())
