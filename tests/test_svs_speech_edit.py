"""svs and speech_edit: WORLD-based MCD and F0 error (planted values, agreement with the
maintained libraries on the same arrays, bad input as NaN with a reason), the Festival singing
and espeak-ng edit-pair builders, and each task's floor vs ceiling through `benchmark run`."""

import json
import math

import numpy as np
import pytest

from uniaudio import audio, manifest
from uniaudio.benchmark.metrics import MetricError, Sample, get
from uniaudio.benchmark.metrics import world as W
from uniaudio.benchmark.runner import run
from uniaudio.manifest import Record

SR = 16000


def tone(f0: float, seconds: float = 1.0) -> np.ndarray:
    """A harmonic tone (partials up to 7 kHz, 1/k): voiced to Harvest and pYIN."""
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 40) if f0 * k < 7000)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def test_mcd_and_f0_planted():
    """Identity reads 0; a gain of 2 reads 10/ln10 sqrt(2) ln 2 = 4.2572 dB (c0 is the log gain);
    a 0.2 s delay is absorbed by DTW; a semitone up reads 100 cents; a noise tail over 40% of
    the output is unvoiced there (V/UV error within DTW's reach of 0.4)."""
    a = tone(150.0)
    assert W.mcd(a, a) == 0.0 and W.f0_errors(a, a) == {"f0_rmse_cents": 0.0, "f0_vuv_error": 0.0}
    assert W.mcd(a, 2 * a) == pytest.approx(10 / math.log(10) * math.sqrt(2) * math.log(2), abs=2e-3)
    delayed = np.concatenate([np.zeros(SR // 5, np.float32), a])
    assert W.mcd(a, delayed) < 0.1 and W.f0_errors(a, delayed)["f0_rmse_cents"] < 10.0  # onset frames move a little
    assert W.f0_errors(a, tone(150.0 * 2 ** (1 / 12)))["f0_rmse_cents"] == pytest.approx(100.0, abs=2.0)
    noisy = a.copy()
    noisy[int(0.6 * SR):] = np.random.default_rng(0).standard_normal(int(0.4 * SR)).astype(np.float32) * a.std()
    assert 0.2 < W.f0_errors(a, noisy)["f0_vuv_error"] < 0.45


@pytest.mark.slow
def test_world_metrics_agree_with_the_libraries():
    """F0: Harvest (ours) and librosa's pYIN on the same sung array agree within a quarter tone
    on the frames both call voiced. Mel-cepstrum: pysptk.mc2sp of our coefficients gives back
    WORLD's envelope (order 23, alpha 0.42 fit 16 kHz speech) within 1.5 dB, energy-weighted (1.0
    measured; the weak bands above 4 kHz are off by ~3.5 dB, the order-23 fit smooths them). LSD: equal
    to the same formula on librosa.stft with the same window and hop."""
    import librosa
    import pysptk

    from uniaudio.demo.singing import demo_score, sing

    wav, _ = sing(demo_score(3), "kal_diphone")
    ours = W.analyse(wav)
    f0, voiced, _ = librosa.pyin(wav, fmin=W.F0_FLOOR, fmax=W.F0_CEIL, sr=SR, frame_length=1024,
                                 hop_length=int(W.FRAME_MS * SR / 1000), center=True)
    n = min(len(f0), len(ours["f0"]))
    both = voiced[:n] & (ours["f0"][:n] > 0)
    assert both.mean() > 0.5
    cents = 1200 * np.log2(ours["f0"][:n][both] / f0[:n][both])
    assert np.median(np.abs(cents)) < 50, np.median(np.abs(cents))

    import pyworld

    x = wav.astype(np.float64)
    f, t = pyworld.harvest(x, SR, f0_floor=W.F0_FLOOR, f0_ceil=W.F0_CEIL, frame_period=W.FRAME_MS)
    sp = pyworld.cheaptrick(x, f, t, SR, fft_size=W.FFT_SIZE)
    back = pysptk.mc2sp(ours["mcep"], W.MCEP_ALPHA, W.FFT_SIZE)
    keep = ours["keep"]
    weight = sp[keep] / sp[keep].sum(axis=1, keepdims=True)
    assert np.mean(np.sum(np.abs(10 * np.log10(back[keep] / sp[keep])) * weight, axis=1)) < 1.5

    rng = np.random.default_rng(0)
    ref, hyp = rng.standard_normal(SR).astype(np.float32), rng.standard_normal(SR).astype(np.float32) * 0.5
    lsd = get("lsd")
    spec = [np.abs(librosa.stft(v.astype(np.float64), n_fft=lsd.n_fft, hop_length=lsd.hop, center=False,
                                window=np.hanning(lsd.n_fft))) ** 2 for v in (ref, hyp)]
    diff = 10 * np.log10(spec[0] + lsd.floor) - 10 * np.log10(spec[1] + lsd.floor)
    assert lsd.pair(ref, hyp)["lsd"] == pytest.approx(float(np.mean(np.sqrt(np.mean(diff**2, axis=0)))), rel=1e-9)


@pytest.mark.parametrize("metric,hyp,notes,why", [
    ("f0", "silent", "ok", "silent audio"),
    ("mcd", "silent", "ok", "silent audio"),
    ("f0", "short", "ok", "wrong length"),
    ("mcd", "long", "ok", "wrong length"),
    ("f0", "tone", None, "missing notes"),
    ("f0", "tone", [], "missing notes"),
    ("f0", "tone", [{"lyric": "la", "midi": 200, "seconds": 0.5}], "midi must be"),
])
def test_bad_input_is_nan_with_a_reason(metric, hyp, notes, why):
    a = tone(150.0)
    hyps = {"silent": np.zeros(SR, np.float32), "short": tone(150.0, 0.3), "long": tone(150.0, 2.5), "tone": a,
            }
    score = [{"lyric": "la", "midi": 50, "seconds": 1.0}] if notes == "ok" else notes
    (r,) = get(metric).score([Sample("x", ref_audio=a, hyp_audio=hyps[hyp], notes=score)])
    assert isinstance(r, MetricError) and why in str(r), r


def test_mcd_leaves_the_excluded_span_out():
    """An output that differs from the reference only in 0.5-0.8 s (noise there) reads ~0 once
    0.4-0.9 s is left out (the analysis spreads a change by under 0.1 s). A gliding tone, so
    every frame is distinct and DTW's path outside the span is the diagonal."""
    t = np.arange(int(1.5 * SR)) / SR
    phase = 2 * np.pi * np.cumsum(np.geomspace(110.0, 260.0, len(t))) / SR
    a = sum(np.sin(k * phase) / k for k in range(1, 40))
    a = (0.3 * a / np.abs(a).max()).astype(np.float32)
    b = a.copy()
    b[int(0.5 * SR):int(0.8 * SR)] = np.random.default_rng(0).standard_normal(int(0.3 * SR)).astype(np.float32) * 0.1
    assert W.mcd(a, b) > 2.0
    assert W.mcd(a, b, exclude_s=(0.4, 0.9)) < 1e-3
    (r,) = get("mcd").score([Sample("x", ref_audio=a, hyp_audio=b, exclude_span=[0.9, 0.2])])
    assert isinstance(r, MetricError) and "0 <= start < end" in str(r)


def test_edit_pair_shares_everything_outside_the_span():
    from uniaudio.demo.edited_speech import edit_pair

    p = edit_pair("THE OLD LANTERN CROSSED THE RIVER", "purple", "en-us")
    assert p["old_word"] == "LANTERN" and p["edited_text"] == "THE OLD PURPLE CROSSED THE RIVER"
    lo, hi = (round(v * SR) for v in p["span_s"])
    tail = len(p["edited"]) - hi
    assert np.array_equal(p["edited"][:lo], p["original"][:lo]) and lo > 0
    assert np.array_equal(p["edited"][hi:], p["original"][-tail:]) and tail > 0
    assert not np.array_equal(p["edited"][lo:hi], p["original"][lo:lo + hi - lo])


def _items(out, task, system):
    path = out / "results" / task / system / "items.jsonl"
    return {it["id"]: it for it in map(json.loads, path.read_text().splitlines())}


@pytest.mark.slow
def test_svs_floor_and_ceiling(tmp_path):
    """Festival sings 3 demo scores; ground truth beats the shuffled floor on F0 RMSE, MCD and
    WER; an item with no notes is a NaN with its reason and the others are scored."""
    from uniaudio.benchmark.tasks.svs import svs_records

    suite = tmp_path / "suite"
    rows = svs_records(suite / "ref", seed=0, count=3)
    bad = Record(**{**rows[0].__dict__, "id": "no-notes", "extra": {"singer": "kal_diphone"}})
    assert rows[0].extra["notes"] and rows[1].speaker != rows[0].speaker  # both singers
    manifest.write_manifest(suite / "svs.parquet", rows + [bad])
    res = {s: run(["svs"], s, str(suite), None, tmp_path / "out", progress=False)[0]["metrics"]
           for s in ("ground-truth", "shuffled")}
    gt, floor = res["ground-truth"], res["shuffled"]
    assert gt["f0"]["value"]["f0_rmse_cents"] == 0.0 and floor["f0"]["value"]["f0_rmse_cents"] > 100
    assert gt["mcd"]["value"]["mcd"] == 0.0 and floor["mcd"]["value"]["mcd"] > 5
    assert gt["wer"]["value"]["wer"] < floor["wer"]["value"]["wer"]
    assert gt["f0"]["items_failed"] == 1
    b = _items(tmp_path / "out", "svs", "ground-truth")["no-notes"]
    assert math.isnan(b["values"]["f0"]) and "missing notes" in b["errors"]["f0"]


@pytest.mark.slow
def test_speech_edit_floor_and_ceiling(tmp_path, demo_root):
    """Three edit pairs: the reference edit beats the shuffled floor on WER, SIM and MCD. The
    unedited original (the passthrough system's output) is close to the reference outside the
    edit (MCD < 3 dB there; its missing edit shows in WER: 0.25 vs 0.16 on the 12 demo items)."""
    from uniaudio.benchmark.tasks.speech_edit import speech_edit_records
    from uniaudio.pipeline.recipes import records

    speech = sorted(records("librispeech", demo_root / "LibriSpeech", split="test-clean"), key=lambda r: r.id)[:3]
    suite = tmp_path / "suite"
    rows = speech_edit_records(speech, suite)
    manifest.write_manifest(suite / "speech_edit.parquet", rows)
    res = {s: run(["speech_edit"], s, str(suite), None, tmp_path / "out", progress=False)[0]["metrics"]
           for s in ("ground-truth", "shuffled")}
    gt, floor = res["ground-truth"], res["shuffled"]
    assert gt["wer"]["value"]["wer"] < floor["wer"]["value"]["wer"]
    assert gt["sim"]["value"]["sim"] > floor["sim"]["value"]["sim"]
    assert gt["mcd"]["value"]["mcd"] == 0.0 and floor["mcd"]["value"]["mcd"] > 5
    for r in rows:
        ref, original = audio.load(r.path, SR)[0], audio.load(r.extra["input_path"], SR)[0]
        outside = W.mcd(ref, original, r.extra["edit_span_s"])
        assert outside < 3 and outside < W.mcd(ref, original)
