"""Codec quality vs input level on held-out real speech (ljspeech-mini), ours vs Codec2.

Each utterance is scaled by GAIN dB (clipping is avoided by capping the peak at 0.99, and
the cap is reported), sent through the codec, scaled back, time-aligned and scored with
PESQ-wb and STOI against the unscaled reference. A codec tuned to one loudness shows it
here: a level-robust one is flat.

    python benchmarks/codec_level.py --checkpoint OUT/codec.pt [--gains -12 -6 0 6] [--limit 16]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import progress  # noqa: E402
from codec_quality import align, codec2_1600  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=None, help="default: the shipped checkpoint")
    ap.add_argument("--n-codebooks", type=int, default=3)
    ap.add_argument("--gains", type=float, nargs="+", default=[-12.0, -6.0, 0.0, 6.0])
    ap.add_argument("--limit", type=int, default=None, help="first N utterances only")
    ap.add_argument("--data", default=None, help="ljspeech-mini folder (default: ../shared/data/ljspeech-mini)")
    args = ap.parse_args()

    from uniaudio import audio
    from uniaudio.benchmark import metrics as M
    from uniaudio.benchmark.suites import find_ljspeech_mini
    from uniaudio.tokenize import get

    data = Path(args.data) if args.data else find_ljspeech_mini()
    if data is None:
        raise SystemExit("ljspeech-mini not found; pass --data")
    tok = get("uniaudio-codec", checkpoint=args.checkpoint, n_codebooks=args.n_codebooks)
    refs = [(p.stem, audio.load(p, 16000)[0]) for p in sorted((data / "wavs").glob("*.wav"))[: args.limit]]
    pesq, stoi = M.get("pesq"), M.get("stoi")
    print(f"ljspeech-mini ({len(refs)} utterances), {tok.version} vs codec2 1600; PESQ-wb / STOI")
    print(f"{'gain':>8}{'ours':>16}{'codec2':>16}{'ours - codec2':>18}{'capped':>8}")
    for gain in args.gains:
        # the same linear gain for both codecs; capped where it would push the peak past 0.99
        gains = [min(10 ** (gain / 20), 0.99 / np.abs(ref).max()) for _, ref in refs]
        capped = sum(g < 10 ** (gain / 20) for g in gains)
        means = {}
        for name, run in (("ours", lambda x: tok.decode(tok.encode(x, 16000))), ("codec2", codec2_1600)):
            vals = []
            for (utt, ref), g in progress(list(zip(refs, gains)), f"{gain:+g} dB {name}"):
                s = M.Sample(utt, ref_audio=ref, hyp_audio=align(ref, run(ref * g) / g))
                vals.append([pesq.score([s])[0]["pesq"], stoi.score([s])[0]["stoi"]])
            means[name] = np.nanmean(vals, axis=0)
        o, c = means["ours"], means["codec2"]
        print(f"{gain:+7.1f} {o[0]:8.3f}{o[1]:8.3f}{c[0]:8.3f}{c[1]:8.3f}{o[0] - c[0]:+9.3f}{o[1] - c[1]:+9.3f}{capped:8d}")


if __name__ == "__main__":
    sys.exit(main())
