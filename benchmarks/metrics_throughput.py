"""Metric throughput: the harness vs a VERSA-style per-utterance loop, side by side.

Both score WER (Whisper tiny.en ASR of the output) + SIM + PESQ + STOI + DNSMOS on the same
N demo utterances (output = a degraded copy of the reference, prompt = another utterance of
the same speaker), with every model loaded once beforehand:
  harness : uniaudio's runner path: each audio decoded once, each metric called on batches;
  loop    : for each utterance, decode its files, call each metric on that one utterance.
Goal of issue 5: harness >= 5x the loop.

    python benchmarks/metrics_throughput.py [--n 200] [--batch 16]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).parent))
from _common import demo_corpora, progress  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--work", default=None)
    args = ap.parse_args()

    from uniaudio import audio
    from uniaudio.benchmark import metrics as M
    from uniaudio.benchmark.tasks.se import add_noise
    from uniaudio.pipeline.recipes import records

    work = Path(args.work or tempfile.mkdtemp(prefix="uniaudio-metrics-"))
    scale = max(1.0, args.n / 48)
    corpora = demo_corpora(work / f"corpora-x{scale:g}", scale)
    speech = sorted(records("librispeech", corpora / "LibriSpeech"), key=lambda r: r.id)[: args.n]
    by_spk: dict[str, list] = {}
    for r in speech:
        by_spk.setdefault(r.speaker, []).append(r)
    outs = work / "outputs"
    jobs = []  # (id, ref_path, hyp_path, prompt_path, text)
    for k, r in enumerate(speech):
        hyp = outs / f"{r.id}.wav"
        if not hyp.exists():
            audio.save(hyp, add_noise(audio.load(r.path, 16000)[0], 20.0, k), 16000)
        same = by_spk[r.speaker]
        jobs.append((r.id, r.path, str(hyp), same[(same.index(r) + 1) % len(same)].path, r.text))

    metrics = [M.get("wer"), M.get("sim"), M.get("pesq"), M.get("stoi"), M.get("dnsmos")]
    warm = M.Sample("warm", ref_text="hello", ref_audio=audio.load(jobs[0][1], 16000)[0])
    warm.hyp_audio = warm.prompt_audio = warm.ref_audio
    for m in metrics:  # load models and JIT before timing either side
        m.score([warm])

    def sample(job):
        uid, ref, hyp, prompt, text = job
        return M.Sample(uid, ref_text=text, ref_audio=audio.load(ref, 16000)[0], hyp_audio=audio.load(hyp, 16000)[0],
                        prompt_audio=audio.load(prompt, 16000)[0])

    # seconds per metric on each side (decoding counted under "decode"): shows where the time goes
    spent = {side: dict.fromkeys(["decode"] + [m.name for m in metrics], 0.0) for side in ("loop", "harness")}

    def timed(side, key, fn):
        t = time.perf_counter()
        out = fn()
        spent[side][key] += time.perf_counter() - t
        return out

    t0 = time.perf_counter()
    for job in progress(jobs, "per-utterance loop"):
        s = timed("loop", "decode", lambda: sample(job))
        for m in metrics:
            timed("loop", m.name, lambda: m.score([s]))
    t_loop = time.perf_counter() - t0

    t0 = time.perf_counter()
    for i in progress(range(0, len(jobs), args.batch), "harness batches"):
        batch = timed("harness", "decode", lambda: [sample(j) for j in jobs[i:i + args.batch]])
        for m in metrics:
            timed("harness", m.name, lambda: m.score(batch))
    t_harness = time.perf_counter() - t0

    n = len(jobs)
    secs = sum(len(audio.load(j[2], 16000)[0]) for j in jobs) / 16000
    print(f"{n} utterances, {secs / 60:.1f} min of audio; metrics: WER (Whisper tiny.en), SIM (resemblyzer), "
          f"PESQ-wb, STOI, DNSMOS")
    print(f"{'':24}{'utt/s':>10}{'ratio':>10}")
    print(f"{'per-utterance loop':24}{n / t_loop:10.2f}{1.0:10.2f}")
    print(f"{'harness (batched)':24}{n / t_harness:10.2f}{t_loop / t_harness:10.2f}   goal >= 5")
    print(f"\nms per utterance{'loop':>12}{'harness':>10}{'ratio':>8}{'share of loop':>15}")
    for key in spent["loop"]:
        a, b = spent["loop"][key] * 1000 / n, spent["harness"][key] * 1000 / n
        print(f"{key:16}{a:12.1f}{b:10.1f}{a / b if b else float('nan'):8.2f}{a * n / 1000 / t_loop:15.0%}")


if __name__ == "__main__":
    main()
