"""instruct_tts: attribute agreement (median F0 band, speaking rate band) measured from audio,
planted values, bad instructions as NaN with reasons, and the demo's floor vs ceiling."""

import json
import math

import numpy as np
import pytest

from uniaudio import manifest
from uniaudio.benchmark.metrics import MetricError, Sample, get
from uniaudio.benchmark.metrics.prosody import median_f0, speech_seconds
from uniaudio.benchmark.runner import run
from uniaudio.manifest import Record

SR = 16000


def voiced(f0: float, seconds: float) -> np.ndarray:
    """A harmonic tone (5 partials) with a 4 Hz amplitude wobble: voiced to pYIN."""
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    return (0.2 * x * (1 + 0.3 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)


def test_f0_and_speech_time_planted():
    """A 180 Hz tone reads 180 Hz (librosa pYIN on the same array); 1 s of tone between 0.5 s
    silences reads 1 s of speech plus half a split frame (512 samples) at each edge, within a
    hop (256); 3 words in it read ~2.8-3 words/s (the 'normal' band)."""
    import librosa

    x = voiced(180.0, 1.0)
    f0, v, _ = librosa.pyin(x, fmin=50, fmax=500, sr=SR, frame_length=1024)
    assert median_f0(x) == pytest.approx(float(np.median(f0[v])), rel=1e-9)
    assert median_f0(x) == pytest.approx(180.0, rel=0.02)
    padded = np.concatenate([np.zeros(SR // 2, np.float32), x, np.zeros(SR // 2, np.float32)])
    assert speech_seconds(padded) == pytest.approx(1.0 + 2 * 512 / SR, abs=256 / SR)
    (r,) = get("attributes").score([Sample("a", ref_text="one two three", hyp_audio=padded,
                                           attributes={"pitch": "medium", "rate": "normal"})])
    assert r["attributes_f0_hz"] == pytest.approx(180.0, rel=0.02) and r["attributes_pitch_ok"] == 1.0
    assert r["attributes_rate_wps"] == pytest.approx(3 / (1.0 + 2 * 512 / SR), rel=0.02) and r["attributes"] == 1.0
    (r,) = get("attributes").score([Sample("b", ref_text="one two three", hyp_audio=padded,
                                           attributes={"pitch": "low", "rate": "fast"})])
    assert r["attributes"] == 0.0


@pytest.mark.parametrize("attrs,audio_,why", [
    ({"loudness": "high"}, "tone", "unknown attribute 'loudness'"),
    ({"pitch": "ultra"}, "tone", "unknown pitch 'ultra'"),
    ({}, "tone", "no requested attributes"),
    ({"pitch": "low"}, "silent", "no voiced frames"),
    ({"rate": "slow"}, "silent", "output: silent"),
    ({"pitch": "low"}, "short", "too short"),
])
def test_bad_instructions_and_outputs_are_errors(attrs, audio_, why):
    wav = {"tone": voiced(120.0, 1.0), "silent": np.zeros(SR, np.float32), "short": voiced(120.0, 0.05)}[audio_]
    (r,) = get("attributes").score([Sample("x", ref_text="a b c", hyp_audio=wav, attributes=attrs)])
    assert isinstance(r, MetricError) and why in str(r)


@pytest.mark.slow
def test_floor_and_ceiling_on_instructed_speech(tmp_path, demo_root):
    """Ground truth (espeak rendering the instruction) meets every requested attribute; the
    shuffled floor (another item's speech) and the espeak baseline (ignores the instruction)
    score lower; WER of the ground truth is below the shuffled floor's. A bad instruction in the
    test set is a NaN with its reason, the rest are scored."""
    from uniaudio.benchmark.tasks.instruct_tts import instruction, render_instructed
    from uniaudio.pipeline.recipes import records

    speech = sorted(records("librispeech", demo_root / "LibriSpeech", split="test-clean"), key=lambda r: r.id)[:4]
    asks = [{"pitch": "low", "rate": "slow"}, {"pitch": "medium", "rate": "normal"}, {"pitch": "high", "rate": "fast"},
            {"pitch": "high", "rate": "slow"}]
    suite = tmp_path / "suite"
    rows = []
    for r, a in zip(speech, asks):
        ref = render_instructed(r.text, a, suite / "ref" / f"{r.id}.wav")
        rows.append(Record(**{**r.__dict__, "path": str(ref), "extra": {"instruction": instruction(a), "attributes": a}}))
    bad = Record(**{**rows[0].__dict__, "id": "bad-instruction", "extra": {"attributes": {"timbre": "warm"}}})
    manifest.write_manifest(suite / "instruct_tts.parquet", rows + [bad])
    res = {s: run(["instruct_tts"], s, str(suite), None, tmp_path / "out", progress=False)[0]["metrics"]
           for s in ("ground-truth", "shuffled", "espeak")}
    ceiling = res["ground-truth"]["attributes"]["value"]
    assert ceiling["attributes"] == 1.0 and res["ground-truth"]["attributes"]["items_failed"] == 1
    for floor in ("shuffled", "espeak"):
        assert res[floor]["attributes"]["value"]["attributes"] < 0.8, (floor, res[floor]["attributes"])
    assert res["ground-truth"]["wer"]["value"]["wer"] < res["shuffled"]["wer"]["value"]["wer"]
    items = [json.loads(x) for x in (tmp_path / "out" / "results" / "instruct_tts" / "ground-truth" / "items.jsonl")
             .read_text().splitlines()]
    (b,) = [it for it in items if it["id"] == "bad-instruction"]
    assert math.isnan(b["values"]["attributes"]) and "unknown attribute 'timbre'" in b["errors"]["attributes"]


def test_mandarin_rate_is_syllables_with_its_own_bands():
    """A Mandarin transcript's rate is characters (syllables) per second of speech, banded by the
    Mandarin bands (English words/s bands would call every Mandarin row slow or fast); the
    speech-rate filter, which reads words/s, leaves it alone. The attributes metric counts the
    same way."""
    from uniaudio import prosody
    from uniaudio.benchmark import metrics as M

    t = np.arange(32000) / 16000
    wav = (0.3 * np.sin(2 * np.pi * 150 * t)).astype(np.float32)  # 2 s of voiced sound
    zh = prosody.measure(wav, 16000, "小明 周末 买了三本新书")
    assert zh["syllables_per_s"] == pytest.approx(10 / zh["speech_s"]) and "words_per_s" not in zh
    assert zh["rate"] == prosody.band("rate", zh["syllables_per_s"], prosody.RATE_BANDS_SPS_ZH) == "normal"
    assert prosody.band("rate", zh["syllables_per_s"]) == "fast"  # what the English bands would say
    (r,) = M.get("attributes").score([M.Sample("a", ref_text="小明周末买了三本新书", hyp_audio=wav,
                                               attributes={"rate": "normal"})])
    assert r["attributes"] == 1.0 and r["attributes_rate_sps"] == pytest.approx(zh["syllables_per_s"], rel=0.01)
    en = prosody.measure(wav, 16000, "hello there world")
    assert en["words_per_s"] == pytest.approx(3 / en["speech_s"]) and en["rate"]
