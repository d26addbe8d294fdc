import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from uniaudio import audio, manifest
from uniaudio.benchmark import metrics as M
from uniaudio.benchmark.runner import run
from uniaudio.benchmark.tasks.se import add_noise
from uniaudio.manifest import Record
from uniaudio.pipeline.recipes import records

SR = 16000


@pytest.fixture(scope="module")
def small_suite(tmp_path_factory, demo_root):
    """A 3-utterance suite for every task, from the demo corpora."""
    suite = tmp_path_factory.mktemp("suite")
    speech = sorted(records("librispeech", demo_root / "LibriSpeech", split="test-clean"), key=lambda r: r.id)[:3]
    manifest.write_manifest(suite / "asr.parquet", speech)
    manifest.write_manifest(suite / "codec.parquet", speech)
    manifest.write_manifest(suite / "tts.parquet", [
        Record(**{**r.__dict__, "extra": {"prompt_path": speech[(i + 1) % 3].path}}) for i, r in enumerate(speech)])
    se = []
    for i, r in enumerate(speech):
        noisy = audio.save(suite / "noisy" / f"{r.id}.wav", add_noise(audio.load(r.path, SR)[0], 5.0, i), SR)
        se.append(Record(**{**r.__dict__, "extra": {"input_path": str(noisy)}}))
    manifest.write_manifest(suite / "se.parquet", se)
    return suite, [r.id for r in speech], speech


def noisy_pair(seconds=3.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    ref = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    return ref, (ref + 0.05 * rng.standard_normal(len(ref))).astype(np.float32)


# --- fidelity: our numbers are the libraries' numbers ----------------------------------

def test_pesq_stoi_equal_direct_calls():
    from pesq import pesq
    from pystoi import stoi

    ref, deg = noisy_pair()
    s = M.Sample("x", ref_audio=ref, hyp_audio=deg)
    assert M.get("pesq").score([s])[0]["pesq"] == pesq(SR, ref, deg, "wb")
    assert M.get("stoi").score([s])[0]["stoi"] == stoi(ref, deg, SR, extended=False)
    # ESTOI is not bit-reproducible even between two direct calls (~1e-13)
    assert M.get("stoi", extended=True).score([s])[0]["estoi"] == pytest.approx(stoi(ref, deg, SR, extended=True), rel=1e-9)
    nb = M.get("pesq", mode="nb").score([s])[0]["pesq_nb"]
    assert nb == pesq(8000, audio.resample(ref, SR, 8000), audio.resample(deg, SR, 8000), "nb")


def test_wer_equals_jiwer_and_planted_counts():
    import jiwer

    wer = M.get("wer", normalizer_name="none")
    ref = "the cat sat on the mat today"
    hyp = "the dog sat on on the mat"  # 1 substitution, 1 insertion, 1 deletion
    (r,) = wer.score([M.Sample("a", ref_text=ref, hyp_text=hyp)])
    assert (r["wer_S"], r["wer_I"], r["wer_D"], r["wer_N"]) == (1, 1, 1, 7)
    assert r["wer"] == pytest.approx(jiwer.wer(ref, hyp)) == pytest.approx(3 / 7)
    # corpus WER weights by length; the per-utterance mean does not
    (r2,) = wer.score([M.Sample("b", ref_text="hello world", hyp_text="hello")])
    agg = wer.aggregate([r, r2])
    assert agg["wer"] == pytest.approx(4 / 9) and agg["wer_utt_mean"] == pytest.approx((3 / 7 + 1 / 2) / 2)


def test_whisper_normalizer_is_applied():
    wer = M.get("wer")
    (r,) = wer.score([M.Sample("a", ref_text="Mr. Smith paid $5, colour!", hyp_text="mister smith paid five dollars color")])
    assert r["wer"] == 0.0


def test_asr_options_reach_the_backend_and_the_card(tmp_path, demo_root):
    wer = M.get("wer", asr_options={"beam_size": 1})
    r = sorted(records("librispeech", demo_root / "LibriSpeech"), key=lambda r: r.id)[0]
    (row,) = wer.score([M.Sample(r.id, ref_text=r.text, hyp_audio=audio.load(r.path, SR)[0])])
    assert wer.asr.decoding["beam_size"] == 1 and row["transcript"] and math.isfinite(row["wer"])
    assert wer.card()["asr"]["decoding"]["temperature"] == 0.0
    assert wer.card()["asr"]["options"] == {"beam_size": 1}
    with pytest.raises(TypeError, match="rejected asr_options"):
        M.get("wer", asr_options={"no_such_option": 1}).asr
    with pytest.raises(TypeError, match="mapping"):
        M.get("wer", asr_options="cuda")


def test_mel_distance_zero_for_identity_and_positive_otherwise():
    ref, deg = noisy_pair()
    m = M.get("mel_distance")
    assert m.score([M.Sample("a", ref_audio=ref, hyp_audio=ref)])[0]["mel_distance"] == 0.0
    assert m.score([M.Sample("a", ref_audio=ref, hyp_audio=deg)])[0]["mel_distance"] > 0.1


@pytest.mark.slow
def test_visqol_is_five_for_identity_and_falls_with_noise():
    """ViSQOL v3 speech mode (visqol-python, its models shipped): the polynomial mapper scaled to 5
    for an identical signal, lower as noise rises; the card names the mapper."""
    ref, _ = noisy_pair()
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(len(ref)).astype(np.float32) * np.sqrt(np.mean(ref ** 2))
    m = M.get("visqol")
    scores = [m.score([M.Sample("a", ref_audio=ref, hyp_audio=ref + g * noise)])[0]["visqol"] for g in (0.0, 0.1, 1.0)]
    assert scores[0] == pytest.approx(5.0, abs=1e-6) and scores[0] > scores[1] > scores[2] >= 1.0
    assert m.card()["mapper"] == "polynomial"
    lattice = M.get("visqol", mapper="lattice")  # the C++ tool's default and UniAudio's compute_visqol.py
    lat = [lattice.score([M.Sample("a", ref_audio=ref, hyp_audio=ref + g * noise)])[0]["visqol"] for g in (0.0, 1.0)]
    assert 4.0 < lat[0] <= 5.0 and lat[0] > lat[1] >= 1.0 and lattice.card()["mapper"] == "lattice"


# --- the runner on bad outputs: NaN + reason, never a fake number ----------------------

def write_bad_outputs(root, ids, speech):
    se, asr = root / "se", root / "asr"
    se.mkdir(parents=True)
    asr.mkdir()
    clean = [audio.load(r.path, SR)[0] for r in speech]
    # se: id0 -> 0.1 s clip; id1 -> stereo 44.1 kHz (valid: resampled + mixed down); id2 missing
    audio.save(se / f"{ids[0]}.wav", clean[0][: SR // 10], SR)
    x = audio.resample(clean[1], SR, 44100)
    sf.write(se / f"{ids[1]}.wav", np.stack([x, x], 1), 44100)
    # asr: id0 non-UTF-8; id1 correct; id2 missing
    (asr / f"{ids[0]}.txt").write_bytes(b"caf\xe9 \xff")
    (asr / f"{ids[1]}.txt").write_text(speech[1].text.lower())
    return root


@pytest.mark.slow
def test_bad_outputs_give_nan_and_reasons(tmp_path, small_suite):
    suite, ids, speech = small_suite
    system = write_bad_outputs(tmp_path / "sys", ids, speech)
    results = {r["task"]: r for r in run(["se", "asr"], str(system), str(suite), None, tmp_path / "out", progress=False)}

    items = {json.loads(l)["id"]: json.loads(l) for l in
             (tmp_path / "out/results/se/sys/items.jsonl").read_text().splitlines()}
    assert math.isnan(items[ids[0]]["values"]["pesq"]) and "0.25 s" in items[ids[0]]["errors"]["pesq"]
    assert math.isnan(items[ids[0]]["values"]["stoi"])
    assert 1.0 < items[ids[1]]["values"]["pesq"] <= 4.7  # stereo 44.1 kHz is scored after resampling
    assert items[ids[2]]["errors"]["pesq"].startswith("missing")
    se = results["se"]["metrics"]
    assert se["pesq"]["items_failed"] == 2 and se["pesq"]["items_scored"] == 1
    assert se["pesq"]["failure_reasons"] == {"MetricError": 1, "missing": 1}
    assert se["pesq"]["value"]["pesq"] == items[ids[1]]["values"]["pesq"]  # the failures are not averaged in

    asr_items = {json.loads(l)["id"]: json.loads(l) for l in
                 (tmp_path / "out/results/asr/sys/items.jsonl").read_text().splitlines()}
    assert "UTF-8" in asr_items[ids[0]]["errors"]["wer"] and math.isnan(asr_items[ids[0]]["values"]["wer"])
    assert asr_items[ids[1]]["values"]["wer"] == 0.0
    assert results["asr"]["metrics"]["wer"]["items_failed"] == 2


def test_empty_and_nan_audio_are_failures(tmp_path, small_suite):
    suite, ids, speech = small_suite
    se = tmp_path / "sys" / "se"
    se.mkdir(parents=True)
    sf.write(se / f"{ids[0]}.wav", np.zeros((0,), np.float32), SR)
    bad = audio.load(speech[1].path, SR)[0]
    bad[100] = np.nan
    sf.write(se / f"{ids[1]}.wav", bad, SR, subtype="FLOAT")
    shutil.copy(speech[2].path, se / f"{ids[2]}.flac")  # wrong extension: counts as missing .wav
    (res,) = run(["se"], str(tmp_path / "sys"), str(suite), None, tmp_path / "out", progress=False)
    items = [json.loads(l) for l in (tmp_path / "out/results/se/sys/items.jsonl").read_text().splitlines()]
    reasons = {i["id"]: i["errors"].get("stoi", "") for i in items}
    assert reasons[ids[0]].startswith("empty") and reasons[ids[1]].startswith("non_finite")
    assert reasons[ids[2]].startswith("missing")
    assert all(math.isnan(i["values"]["stoi"]) for i in items)
    assert math.isnan(res["metrics"]["stoi"]["value"]["stoi"]) and res["metrics"]["stoi"]["items_scored"] == 0


def test_resume_scores_only_new_items(tmp_path, small_suite):
    suite, ids, _ = small_suite
    out = tmp_path / "out"
    run(["asr"], "ground-truth", str(suite), None, out, progress=False)
    items = out / "results/asr/ground-truth/items.jsonl"
    lines = items.read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(l)["values"]["wer"] == 0.0 for l in lines)
    items.write_text("\n".join(lines[:1]) + "\n" + lines[1][:17])  # died after one item, mid-way through the next
    (res,) = run(["asr"], "ground-truth", str(suite), None, out, resume=True, progress=False)
    new = items.read_text().splitlines()
    assert len(new) == 3 and new[0] == lines[0] and res["items"] == 3


def test_a_changed_test_set_is_scored_again_and_never_with_stale_outputs(tmp_path, small_suite):
    """--resume (what a second `./run.sh demo` uses) keeps scores only for the test set they were
    made on; a built-in's outputs made for another test set are made again, not reused."""
    import shutil

    suite, ids, speech = small_suite
    mine = tmp_path / "suite"
    shutil.copytree(suite, mine)
    out = tmp_path / "out"
    run(["asr"], "ground-truth", str(mine), None, out, progress=False)
    items = out / "results/asr/ground-truth/items.jsonl"
    first = items.read_text()
    t0 = items.stat().st_mtime_ns
    run(["asr"], "ground-truth", str(mine), None, out, resume=True, progress=False)
    assert items.read_text() == first and items.stat().st_mtime_ns == t0  # nothing rescored
    changed = [Record(**{**r.__dict__, "text": "A CHANGED REFERENCE"}) for r in speech]
    manifest.write_manifest(mine / "asr.parquet", changed)
    (res,) = run(["asr"], "ground-truth", str(mine), None, out, resume=True, progress=False)
    lines = [json.loads(x) for x in items.read_text().splitlines()]
    assert [x["hyp"] for x in lines] == ["A CHANGED REFERENCE"] * 3  # outputs made again for the new set
    assert res["metrics"]["wer"]["value"]["wer"] == 0.0


@pytest.mark.slow
def test_metric_cards_name_models_and_versions(tmp_path, small_suite):
    suite, _, _ = small_suite
    (res,) = run(["tts"], "ground-truth", str(suite), None, tmp_path / "out", progress=False)
    cards = {k: v["card"] for k, v in res["metrics"].items()}
    assert cards["wer"]["asr"]["backend"] == "faster-whisper" and len(cards["wer"]["asr"]["checksum"]) == 64
    assert cards["wer"]["normalizer"] == "whisper-english"
    assert cards["sim"]["model"] == "resemblyzer-dvector" and len(cards["sim"]["checksum"]) == 64
    assert "DNSMOS" in cards["dnsmos"]["model"] and "pesq" not in cards
    # ground truth: the speaker prompt is another utterance of the same speaker
    assert res["metrics"]["sim"]["value"]["sim"] > 0.6


@pytest.mark.slow
def test_whisper_tiny_on_ljspeech_mini(tmp_path, ljspeech_mini):
    """The real-speech figure: corpus WER of Whisper tiny.en on the 32 LJ Speech utterances."""
    suite = tmp_path / "suite"
    manifest.write_manifest(suite / "asr.parquet", records("ljspeech", ljspeech_mini, split="test"))
    (res,) = run(["asr"], "whisper-tiny", str(suite), None, tmp_path / "out", progress=False)
    wer = res["metrics"]["wer"]["value"]["wer"]
    print(f"Whisper tiny.en corpus WER on ljspeech-mini: {wer:.4f}")
    assert 0.0 < wer < 0.12 and res["metrics"]["wer"]["items_failed"] == 0


@pytest.mark.slow
def test_wavlm_sim_backend_on_a_tiny_saved_model(tmp_path, small_suite):
    """The transformers WavLM x-vector path, on a tiny random model saved locally."""
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector

    model_dir = tmp_path / "tiny-wavlm-sv"
    cfg = WavLMConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                      conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 8), tdnn_dim=(8, 8), tdnn_kernel=(3, 1),
                      tdnn_dilation=(1, 1), xvector_output_dim=8, num_conv_pos_embeddings=16,
                      num_conv_pos_embedding_groups=2, num_buckets=8, max_bucket_distance=16)
    WavLMForXVector(cfg).save_pretrained(model_dir)
    Wav2Vec2FeatureExtractor(sampling_rate=16000).save_pretrained(model_dir)
    ref, deg = noisy_pair()
    sim = M.get("sim", backend="wavlm", model=str(model_dir))
    (same,) = sim.score([M.Sample("a", hyp_audio=ref, prompt_audio=ref)])
    assert same["sim"] == pytest.approx(1.0, abs=1e-5)
    assert sim.card()["model"] == str(model_dir) and len(sim.card()["checksum"]) == 64

    suite, _, _ = small_suite
    (res,) = run(["tts"], "ground-truth", str(suite), None, tmp_path / "out", progress=False,
                 metric_options={"sim": {"backend": "wavlm", "model": str(model_dir)}})
    assert res["metrics"]["sim"]["card"]["backend"] == "wavlm"
    assert -1.0 <= res["metrics"]["sim"]["value"]["sim"] <= 1.0


def test_si_sdr_planted():
    ref, _ = noisy_pair()
    rng = np.random.default_rng(3)
    noise = rng.standard_normal(len(ref)).astype(np.float64)
    r0 = ref.astype(np.float64) - ref.mean()
    noise -= noise.mean()
    noise -= (noise @ r0) / (r0 @ r0) * r0  # orthogonal to the reference: SI-SDR is exactly the SNR
    noise *= np.sqrt((r0 @ r0) / (noise @ noise) / 10 ** (7.5 / 10))
    m = M.get("si_sdr")
    (r,) = m.score([M.Sample("a", ref_audio=ref, hyp_audio=(0.5 * r0 + 0.5 * noise).astype(np.float64))])
    assert r["si_sdr"] == pytest.approx(7.5, abs=1e-3)  # and the 0.5 gain does not matter
    (bad,) = m.score([M.Sample("b", ref_audio=np.zeros(16000), hyp_audio=ref[:16000])])
    assert isinstance(bad, M.MetricError)


def test_si_sdr_equals_torchmetrics():
    """The reference implementation on the same inputs (float32 audio, as the harness reads it):
    noisy, scaled, delayed and identical outputs. The identical one is the task ceiling: finite."""
    import torch
    from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio as tm_si_sdr

    ref, noisy = noisy_pair()
    ref, noisy = ref.astype(np.float32), noisy.astype(np.float32)
    m = M.get("si_sdr")
    for hyp in (noisy, 0.3 * noisy, np.roll(ref, 40), ref.copy(), ref + 1e-4):
        (ours,) = m.score([M.Sample("x", ref_audio=ref, hyp_audio=hyp.astype(np.float32))])
        # torchmetrics takes eps from the input dtype: float32 audio, float32 eps (ours computes in float64)
        theirs = float(tm_si_sdr(torch.from_numpy(hyp.astype(np.float32)), torch.from_numpy(ref), zero_mean=True))
        assert ours["si_sdr"] == pytest.approx(theirs, abs=1e-3), (ours, theirs)
    (same,) = m.score([M.Sample("x", ref_audio=ref, hyp_audio=ref.copy())])
    assert 60 < same["si_sdr"] < 200


def test_vc_and_tse_demo_sets(tmp_path, demo_suite):
    """The demo suite's vc/tse sets: prompts from another speaker, enrollment from the same one,
    and the passthrough floor scores as a floor should."""
    suite = demo_suite
    vc = manifest.read_table(suite / "vc.parquet").to_pylist()
    tse = manifest.read_table(suite / "tse.parquet").to_pylist()
    for r in vc:
        assert json.loads(r["extra"])["prompt_id"].split("-")[0] != r["speaker"]
    for r in tse:
        e = json.loads(r["extra"])
        assert e["enroll_path"] != r["path"] and f"/{r['speaker']}/" in e["enroll_path"]
    for r in manifest.read_table(suite / "dereverb.parquet").to_pylist():  # rooms of the RT60 they claim
        e = json.loads(r["extra"])
        assert Path(e["input_path"]).is_file() and abs(e["rt60_measured_s"] - e["rt60_s"]) < 0.05 * e["rt60_s"]
    small = tmp_path / "small"
    small.mkdir()
    import pyarrow.parquet as pq

    pq.write_table(manifest.read_table(suite / "tse.parquet").slice(0, 2), small / "tse.parquet")
    (res,) = run(["tse"], "passthrough", str(small), None, tmp_path / "out", progress=False)
    sdr = res["metrics"]["si_sdr"]["value"]["si_sdr"]
    assert -3.0 < sdr < 3.0  # a 0 dB mixture scores about 0 dB against its target


def test_rt60_by_schroeder_integration_planted():
    """An exponential decay of amplitude 10^(-3 t / T) loses 60 dB of energy in T seconds: the
    energy decay curve is a line of slope -60 / T dB/s, so T20 reads T exactly; the demo's room
    responses read their target within 5%."""
    from uniaudio.mixing import measure_rt60, room_response

    t = np.arange(SR) / SR
    assert measure_rt60(10 ** (-3 * t / 0.5), SR) == pytest.approx(0.5, rel=1e-6)
    for rt60 in (0.4, 0.7, 1.0):
        for seed in range(3):
            assert measure_rt60(room_response(rt60, SR, seed), SR) == pytest.approx(rt60, rel=0.05)
    with pytest.raises(ValueError, match="-25 dB"):
        measure_rt60(np.ones(100), SR)


@pytest.mark.slow
def test_dereverb_ground_truth_beats_the_reverberant_input(tmp_path, small_suite):
    """The dereverb task: the dry reference (ceiling) scores better than the reverberant input
    (floor: passthrough) on every metric, SI-SDR included: the ceiling's output equals the
    reference, which torchmetrics' stabilised formula scores as a large finite value."""
    from uniaudio.mixing import reverberate

    suite, _, speech = small_suite
    d = tmp_path / "suite"
    rows = []
    for k, r in enumerate(speech):
        wet, rt60 = reverberate(audio.load(r.path, SR)[0], 0.7, SR, k)
        path = audio.save(d / "wet" / f"{r.id}.wav", wet, SR)
        rows.append(Record(**{**r.__dict__, "extra": {"input_path": str(path), "rt60_measured_s": rt60}}))
    manifest.write_manifest(d / "dereverb.parquet", rows)
    res = {s: run(["dereverb"], s, str(d), None, tmp_path / "out", progress=False)[0]["metrics"]
           for s in ("passthrough", "ground-truth")}
    floor, ceiling = res["passthrough"], res["ground-truth"]
    for m, key in (("pesq", "pesq"), ("stoi", "stoi"), ("dnsmos", "dnsmos_ovrl"), ("dnsmos", "dnsmos_bak")):
        assert floor[m]["items_failed"] == ceiling[m]["items_failed"] == 0
        assert ceiling[m]["value"][key] > floor[m]["value"][key] + 0.05, (key, floor[m], ceiling[m])
    assert floor["si_sdr"]["items_failed"] == ceiling["si_sdr"]["items_failed"] == 0
    assert ceiling["si_sdr"]["value"]["si_sdr"] > 60 > 20 > floor["si_sdr"]["value"]["si_sdr"]


def test_shuffled_stand_ins_are_another_speaker_not_the_prompt_and_not_the_request():
    """The shuffled floor's choice: never the item itself, its own prompt, its speaker or an item
    asking for the same attribute while another exists; a malformed attributes field asks for
    nothing (untrusted test sets), and a one-item set falls back to the item itself."""
    from uniaudio.benchmark.systems import stand_ins

    rows = [{"id": f"s{k // 3}-{k % 3}", "path": f"/a/{k}.wav", "speaker": f"s{k // 3}",
             "extra": json.dumps({"prompt_path": f"/a/{k // 3 * 3 + (k + 1) % 3}.wav",
                                  "attributes": {"pitch": ["low", "high"][k % 2]}})} for k in range(6)]
    rows.append({"id": "odd", "path": "/a/odd.wav", "speaker": None, "extra": json.dumps({"attributes": [1, 2]})})
    chosen = stand_ins(rows)
    for r in rows[:6]:
        c = chosen[r["id"]]
        e, ce = json.loads(r["extra"]), json.loads(c["extra"])
        assert c["id"] != r["id"] and c["path"] != e["prompt_path"] and c["speaker"] != r["speaker"]
        assert not isinstance(ce["attributes"], dict) or ce["attributes"] != e["attributes"], (r["id"], c["id"])
    assert chosen["odd"]["id"] != "odd"
    assert stand_ins(rows[:1])[rows[0]["id"]] is rows[0]
