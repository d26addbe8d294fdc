"""Tokenizers side by side on held-out real speech (ljspeech-mini), one run: ours factorized
(all streams; the semantic streams alone) vs our 50 Hz codec at several codebook counts.

Columns: codes/s, LM rows/s (the autoregressive steps an LM takes per second of audio),
kbps, per-codebook usage (perplexity of each codebook's codes over the test set: mean and
minimum), PESQ-wb and STOI of the round trip (outputs aligned by cross-correlation, as
codec_quality.py), and with --probe an understanding probe: a small DASB-style CTC probe
(per-codebook embeddings, concatenated, 2-layer BiLSTM, CTC on characters) trained on the
token sets of --probe-train (speech with transcripts, never ljspeech-mini) and tested on
ljspeech-mini, every stream first repeated onto a common 50 Hz grid so that each probe gets
the same compute; WER by jiwer after Whisper's English normaliser. With --speaker-probe also a
speaker-ID probe (BiLSTM, mean-pooled) on the first seconds of utterances of --speaker-train
(default: --probe-train), tested on a seeded 20% of each speaker's utterances: top-1 accuracy
(how much speaker identity a token set carries). Probes: benchmarks/token_probes.py.

    python benchmarks/tokenizer_compare.py [--factorized CKPT] [--codec CKPT] [--matched CKPT:NQ]
        [--probe --probe-train M.parquet ...] [--speaker-probe [--speaker-train M.parquet ...]]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import progress
from codec_quality import align
from token_probes import ctc_probe, speaker_probe, speaker_split


class TokenSet:
    """One tokenizer setting: codes for the probe (rows kept) and, when it can, a round trip."""

    def __init__(self, name: str, tok, rows: slice | None = None, decodes: bool = True):
        self.name, self.tok, self.rows, self.decodes = name, tok, rows or slice(None), decodes
        d = tok.describe()
        streams = d.get("streams") or [{"rate_hz": tok.frame_rate, "bps": tok.frame_rate * math.log2(tok.codebook_size)}
                                       for _ in range(tok.n_codebooks)]
        kept = streams[self.rows]
        self.codes_per_s = sum(s["rate_hz"] for s in kept)
        self.kbps = sum(s["bps"] for s in kept) / 1000
        self.lm_rows_per_s = max(s["rate_hz"] for s in kept)
        self.stream_rates = [s["rate_hz"] for s in kept]

    def codes(self, full: np.ndarray) -> np.ndarray:
        return full[self.rows]


def perplexities(codes: list[np.ndarray], size: int, rates: list[float], frame_rate: float) -> list[float]:
    """exp(entropy) of each row's code histogram; rows written at a lower rate than the grid count once per code."""
    out = []
    for k in range(codes[0].shape[0]):
        step = max(1, round(frame_rate / rates[k]))
        values = np.concatenate([c[k, ::step] for c in codes])
        p = np.bincount(values, minlength=size) / len(values)
        p = p[p > 0]
        out.append(float(np.exp(-(p * np.log(p)).sum())))
    return out


def to_grid(codes: np.ndarray, frame_rate: float, grid: float = 50.0) -> np.ndarray:
    """[rows, T] at frame_rate -> [rows, T * grid / frame_rate] by repetition (12.5 Hz: x4)."""
    r = round(grid / frame_rate)
    return np.repeat(codes, r, axis=1)


def held_out_rows(manifests, keep, flag: str):
    """Rows of the probe-training manifests that `keep` accepts; ljspeech-mini (the test set) refused."""
    from uniaudio import manifest

    rows = [r for m in manifests for r in manifest.iter_records(m) if keep(r)]
    if not rows:
        raise SystemExit(f"{flag} needs manifests with the labels the probe reads (never ljspeech-mini)")
    if any("ljspeech-mini" in str(r.path) for r in rows):
        raise SystemExit("ljspeech-mini is the held-out test set: never train a probe on it")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--factorized", default=None, help="factorized checkpoint (default: the shipped one)")
    ap.add_argument("--codec", default=None, help="uniaudio-codec checkpoint (default: the shipped one)")
    ap.add_argument("--codec-codebooks", default="2,3,8", help="codebook counts of --codec to compare")
    ap.add_argument("--matched", default=None, help="CKPT:NQ, a 50 Hz codec trained with the same data and budget")
    ap.add_argument("--data", default=None, help="ljspeech-mini folder (default: ../shared/data/ljspeech-mini)")
    ap.add_argument("--limit", type=int, default=None, help="first N test utterances only")
    ap.add_argument("--probe", action="store_true", help="also train and test the CTC probes")
    ap.add_argument("--probe-train", nargs="*", default=[], help="manifests with transcripts to train the probes on")
    ap.add_argument("--probe-limit", type=int, default=None, help="a seeded sample of N transcribed training utterances")
    ap.add_argument("--probe-sets", nargs="*", default=[],
                    help="probe only the token sets whose name contains one of these (e.g. semantic matched)")
    ap.add_argument("--probe-epochs", type=int, default=10)
    ap.add_argument("--probe-hidden", type=int, default=128)
    ap.add_argument("--probe-batch", type=int, default=16)
    ap.add_argument("--speaker-probe", action="store_true", help="also train and test the speaker-ID probes")
    ap.add_argument("--speaker-train", nargs="*", default=None,
                    help="manifests with speaker labels for the speaker probe (default: --probe-train)")
    ap.add_argument("--speaker-sets", nargs="*", default=None, help="as --probe-sets, for the speaker probe "
                    "(default: --probe-sets)")
    ap.add_argument("--speaker-seconds", type=float, default=3.0, help="the first N seconds of each utterance")
    ap.add_argument("--speaker-epochs", type=int, default=10)
    ap.add_argument("--speaker-max-utts", type=int, default=20, help="a seeded sample of at most N per speaker")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from uniaudio import audio
    from uniaudio.benchmark import metrics as M
    from uniaudio.benchmark.suites import find_ljspeech_mini
    from uniaudio.tokenize import get

    data = Path(args.data) if args.data else find_ljspeech_mini()
    if data is None:
        raise SystemExit("ljspeech-mini not found; pass --data")
    fact = get("uniaudio-factorized", **({"checkpoint": args.factorized} if args.factorized else {}))
    sets = [TokenSet("factorized (all 8)", fact), TokenSet("factorized semantic (rows 0-1)", fact, slice(0, 2), False),
            TokenSet("factorized acoustic (rows 2-7)", fact, slice(2, 8), False)]
    for nq in (int(n) for n in args.codec_codebooks.split(",")):
        codec = get("uniaudio-codec", n_codebooks=nq, **({"checkpoint": args.codec} if args.codec else {}))
        sets.append(TokenSet(f"codec 50 Hz x {nq}", codec))
    if args.matched:
        path, nq = args.matched.rsplit(":", 1)
        sets.append(TokenSet(f"matched 50 Hz x {nq}", get("uniaudio-codec", checkpoint=path, n_codebooks=int(nq))))

    import csv

    with open(data / "metadata.csv", newline="") as f:
        texts = {row[0]: row[-1] for row in csv.reader(f, delimiter="|") if row}
    wavs = sorted((data / "wavs").glob("*.wav"))[: args.limit]
    pesq, stoi = M.get("pesq"), M.get("stoi")
    results = {s.name: {"codes": [], "pesq": [], "stoi": [], "seconds": 0.0} for s in sets}
    full = {}  # codes per tokenizer object, shared by its token sets
    for wav_path in progress(wavs, "ljspeech-mini"):
        ref, _ = audio.load(wav_path, 16000)
        for s in sets:
            key = id(s.tok)
            t0 = time.perf_counter()
            if key not in full or full[key][0] != wav_path:
                full[key] = (wav_path, s.tok.encode(ref, 16000))
            codes = full[key][1]
            results[s.name]["codes"].append(s.codes(codes))
            if s.decodes:
                hyp = align(ref, s.tok.decode(codes)[: len(ref)])
                sample = M.Sample(wav_path.stem, ref_audio=ref, hyp_audio=hyp)
                results[s.name]["pesq"].append(pesq.score([sample])[0].get("pesq", float("nan")))
                results[s.name]["stoi"].append(stoi.score([sample])[0].get("stoi", float("nan")))
            results[s.name]["seconds"] += time.perf_counter() - t0

    def chosen(names, flag):
        out = [s for s in sets if not names or any(p in s.name for p in names)]
        if not out:
            raise SystemExit(f"{flag} {names} match none of: {', '.join(s.name for s in sets)}")
        return out
    kw = {"hidden": args.probe_hidden, "batch": args.probe_batch, "progress": progress}

    def grids(rows, seconds, what, probed):
        """Codes on the 50 Hz grid for every probed set: {set name: [codes]}; one encode per tokenizer."""
        waves = [audio.load(r.path, 16000)[0] for r in progress(rows, f"{what} audio")]
        if seconds:
            waves = [w[: int(seconds * 16000)] for w in waves]
        encoded, out = {}, {}
        for s in probed:
            if id(s.tok) not in encoded:
                encoded[id(s.tok)] = [s.tok.encode(w, 16000) for w in progress(waves, f"{what}: encode {s.name}")]
            out[s.name] = [to_grid(s.codes(c), s.tok.frame_rate) for c in encoded[id(s.tok)]]
        return out, sum(len(w) for w in waves) / 16000 / 60

    probe_wer, speaker_acc = {}, {}
    if args.probe:
        import jiwer
        from whisper.normalizers import EnglishTextNormalizer

        norm = EnglishTextNormalizer()
        train_rows = held_out_rows(args.probe_train, lambda r: r.text, "--probe-train")
        if args.probe_limit and args.probe_limit < len(train_rows):  # a seeded sample: manifests are sorted by speaker
            keep = np.random.default_rng(0).choice(len(train_rows), args.probe_limit, replace=False)
            train_rows = [train_rows[i] for i in sorted(keep)]
        texts_tr = [norm(r.text) for r in train_rows]
        refs = [norm(texts[w.stem]) for w in wavs]
        probed = chosen(args.probe_sets, "--probe-sets")
        codes_tr, minutes = grids(train_rows, None, "ctc probe", probed)
        for s in probed:
            te = [(to_grid(c, s.tok.frame_rate), r) for c, r in zip(results[s.name]["codes"], refs)]
            hyps = ctc_probe(list(zip(codes_tr[s.name], texts_tr)), te, te[0][0].shape[0], s.tok.codebook_size,
                             args.probe_epochs, **kw)
            probe_wer[s.name] = jiwer.wer(refs, [norm(h) for h in hyps])
        print(f"ctc probe: 2-layer BiLSTM {args.probe_hidden} per direction, {args.probe_epochs} epochs on "
              f"{len(train_rows)} utterances ({minutes:.1f} min) from {', '.join(args.probe_train)}; "
              "every stream repeated onto 50 Hz; tested on ljspeech-mini")
    if args.speaker_probe:
        manifests = args.speaker_train if args.speaker_train is not None else args.probe_train
        rows = held_out_rows(manifests, lambda r: r.speaker, "--speaker-train")
        tr_i, te_i = speaker_split([r.speaker for r in rows], max_utts=args.speaker_max_utts)
        if len({rows[i].speaker for i in te_i}) < 2:  # one class would score 1.0 by construction
            raise SystemExit("the speaker probe needs at least 2 speakers with at least 5 utterances each")
        rows = [rows[i] for i in tr_i + te_i]
        probed = chosen(args.probe_sets if args.speaker_sets is None else args.speaker_sets, "--speaker-sets")
        codes_sp, minutes = grids(rows, args.speaker_seconds, "speaker probe", probed)
        for s in probed:
            items = list(zip(codes_sp[s.name], [r.speaker for r in rows]))
            speaker_acc[s.name] = speaker_probe(items[: len(tr_i)], items[len(tr_i):], items[0][0].shape[0],
                                                s.tok.codebook_size, args.speaker_epochs, **kw)
        n_spk = len({r.speaker for r in rows})
        print(f"speaker probe: 1-layer BiLSTM {args.probe_hidden}, mean-pooled, {args.speaker_epochs} epochs on "
              f"{len(tr_i)} utterances, tested on {len(te_i)} others of the same {n_spk} speakers (at most "
              f"{args.speaker_max_utts} each; chance "
              f"{1 / n_spk:.3f}); first {args.speaker_seconds:g} s of each ({minutes:.1f} min) from {', '.join(manifests)}")

    secs = sum(len(audio.load(w, 16000)[0]) for w in wavs) / 16000
    print(f"ljspeech-mini: {len(wavs)} held-out utterances, {secs:.1f} s; factorized {fact.version}")
    head = f"{'tokens':32}{'codes/s':>8}{'LM rows/s':>10}{'kbps':>7}{'ppl mean':>9}{'ppl min':>8}{'PESQ-wb':>8}{'STOI':>7}"
    print(head + (f"{'probe WER':>10}" if probe_wer else "") + (f"{'spk acc':>8}" if speaker_acc else "") + f"{'x RT':>7}")
    for s in sets:
        r = results[s.name]
        ppl = perplexities(r["codes"], s.tok.codebook_size, s.stream_rates, s.tok.frame_rate)
        pq = f"{np.nanmean(r['pesq']):8.3f}{np.nanmean(r['stoi']):7.3f}" if s.decodes else f"{'-':>8}{'-':>7}"
        wer = (f"{probe_wer[s.name]:10.3f}" if s.name in probe_wer else f"{'-':>10}") if probe_wer else ""
        wer += (f"{speaker_acc[s.name]:8.3f}" if s.name in speaker_acc else f"{'-':>8}") if speaker_acc else ""
        speed = f"{secs / r['seconds']:7.1f}" if s.decodes else f"{'-':>7}"
        print(f"{s.name:32}{s.codes_per_s:8.2f}{s.lm_rows_per_s:10.2f}{s.kbps:7.3f}{np.mean(ppl):9.1f}{min(ppl):8.1f}"
              f"{pq}{wer}{speed}")
    print("x RT: audio seconds per second of encode + decode on this machine")


if __name__ == "__main__":
    sys.exit(main())
