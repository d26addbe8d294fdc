"""Curation stages vs the tokenizer alone, side by side, one core each, in one run: audio hours
processed per core-hour of each stage on the demo's long recordings (speech joined with pauses).

- segment: Silero VAD over whole recordings + the segment rule (uniaudio/pipeline/segment.py);
- dnsmos: the quality step (`measure: [dnsmos]`: DNSMOS's ONNX models, a batch of segments);
- asr: the transcribe / transcript-check step (Whisper tiny.en, faster-whisper int8, beam 5);
- prosody: the `measure: [prosody]` step on the segments (pYIN F0 + speech timing);
- tokenizer: our codec's encoder on the same segments (what the engine runs next).
Anchor: Emilia's pipeline reports ~2.5 h of raw audio per minute on 8 consumer GPUs (~19 audio-hours
per GPU-hour) with heavier models (source separation, WhisperX, DNSMOS).

    python benchmarks/curation_throughput.py [--scale 2] [--tokenizer uniaudio-codec]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import demo_corpora  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=2.0)
    ap.add_argument("--tokenizer", default="uniaudio-codec")
    ap.add_argument("--work", default=None)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)  # one core per stage, as one Ray task runs
    from uniaudio import audio, prosody, transcribers
    from uniaudio.dnsmos import DNSMOSScorer
    from uniaudio.pipeline.segment import SegmentSpec, plan_segments, speech_regions
    from uniaudio.tokenize import get

    work = Path(args.work or tempfile.mkdtemp(prefix="uniaudio-curation-"))
    corpora = demo_corpora(work / f"corpora-x{args.scale:g}", args.scale)
    recs = [audio.load(p, 16000)[0] for p in sorted((corpora / "long").glob("*.wav"))]
    spec = SegmentSpec()
    seconds_in = sum(len(w) for w in recs) / 16000

    speech_regions(recs[0][:16000], spec)  # model load outside the timing
    t0 = time.perf_counter()
    segments = []
    for w in recs:
        for a, b in plan_segments(speech_regions(w, spec), len(w) / 16000, spec)[0]:
            segments.append(w[int(a * 16000):int(b * 16000)])
    t_seg = time.perf_counter() - t0
    seconds_seg = sum(len(s) for s in segments) / 16000

    scorer = DNSMOSScorer()
    scorer.score(segments[:1])  # session warm-up
    t0 = time.perf_counter()
    scorer.score(segments)
    t_dns = time.perf_counter() - t0

    asr = transcribers.load("faster-whisper", cpu_threads=1)
    asr.transcribe(segments[:1])
    t0 = time.perf_counter()
    asr.transcribe(segments)
    t_asr = time.perf_counter() - t0

    t0 = time.perf_counter()
    for s in segments:
        prosody.measure(s, 16000, "a few words")
    t_pros = time.perf_counter() - t0

    tok = get(args.tokenizer)
    tok.encode(segments[0], 16000)  # warm
    t0 = time.perf_counter()
    for s in segments:
        tok.encode(s, 16000)
    t_tok = time.perf_counter() - t0

    rate = lambda secs, t: secs / t  # audio s per wall s on one core = audio hours per core-hour  # noqa: E731
    print(f"{len(recs)} long recordings, {seconds_in / 3600:.3f} h in -> {len(segments)} segments, "
          f"{seconds_seg / 3600:.3f} h out; one core per stage")
    print(f"{'stage':34}{'audio h / core-h':>18}{'vs tokenizer':>14}")
    tok_rate = rate(seconds_seg, t_tok)
    for name, r in (("segment (Silero VAD + rule)", rate(seconds_in, t_seg)),
                    ("quality (DNSMOS)", rate(seconds_seg, t_dns)),
                    ("transcribe (Whisper tiny.en)", rate(seconds_seg, t_asr)),
                    ("prosody measure (pYIN)", rate(seconds_seg, t_pros)),
                    (f"tokenizer alone ({args.tokenizer})", tok_rate)):
        print(f"{name:34}{r:18.1f}{r / tok_rate:13.2f}x")
    whole = seconds_in / (t_seg + t_dns + t_asr + t_pros + t_tok)
    print(f"{'funnel: all of the above in a row':34}{whole:18.1f}{whole / tok_rate:13.2f}x")
    print("Emilia-Pipe (its paper): ~19 audio-hours per GPU-hour with heavier models on consumer GPUs")


if __name__ == "__main__":
    main()
