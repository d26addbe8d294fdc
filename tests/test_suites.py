"""Published suites built from corpus layouts as users download them (made offline from the demo
speech): item rules, list files read exactly, missing items named, builds never mixed, and suites
scored end to end with their name and version on the leaderboard."""

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from uniaudio import audio, manifest
from uniaudio.benchmark.suites import SuiteError, build, card_line, read_card
from uniaudio.pipeline.recipes import records

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def speech(demo_root):
    """The demo LibriSpeech test-clean utterances (8, two speakers, 3.2-5.6 s)."""
    return sorted(records("librispeech", demo_root / "LibriSpeech", split="test-clean"), key=lambda r: r.id)


def test_librispeech_asr_suite_and_what_a_suite_folder_refuses(demo_root, speech, tmp_path):
    ls, out = demo_root / "LibriSpeech", tmp_path / "ls-clean"
    card = build("librispeech-test-clean", ls, out)
    assert card["tasks"] == {"asr": len(speech)} and card["published_items"] == {"asr": 2620}
    assert card["missing"]["count"] == 0 and card["source_root"] == str(ls.resolve())
    assert read_card(out) == card and card_line(card) == "librispeech-test-clean v1"
    rows = manifest.read_rows(out / "asr.parquet")
    assert [r["id"] for r in rows] == [r.id for r in speech] and all(Path(r["path"]).is_file() for r in rows)

    assert build("librispeech-test-clean", ls, out)["tasks"] == card["tasks"]  # the same build: replaced
    with pytest.raises(SuiteError, match="another build"):
        build("librispeech-test-clean-tts", ls, out)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("mine")
    with pytest.raises(SuiteError, match="no `benchmark suite build` made"):
        build("librispeech-test-clean", ls, tmp_path / "junk")
    with pytest.raises(SuiteError, match="LibriSpeech as openslr ships it"):
        build("librispeech-test-clean", demo_root / "audiocaps", tmp_path / "wrong")
    assert not (tmp_path / "wrong").exists()  # a failed build leaves nothing


def test_zero_shot_tts_rule(demo_root, speech, tmp_path):
    out = tmp_path / "tts"
    build("librispeech-test-clean-tts", demo_root / "LibriSpeech", out)
    rows = manifest.read_rows(out / "tts.parquet")
    want = [r.id for r in speech if 4.0 <= r.duration <= 10.0]
    assert [r["id"] for r in rows] == want and want
    by_id = {r.id: r for r in speech}
    for r in rows:
        extra = json.loads(r["extra"])
        prompt = by_id[extra["prompt_id"]]
        assert prompt.speaker == r["speaker"] and prompt.id != r["id"]  # same speaker, another utterance
        wav, sr = audio.load(extra["prompt_path"])
        assert Path(extra["prompt_path"]).is_relative_to(out) and len(wav) == 3 * sr  # a 3 s cut
        src, _ = audio.load(prompt.path, sr, duration=3.0)
        assert np.abs(wav - src).max() < 1e-3
    stored = manifest.iter_batches(out / "tts.parquet")  # stored relative: the folder moves as one
    import pyarrow.parquet as pq
    raw = pq.read_table(out / "tts.parquet").column("extra").to_pylist()
    assert all('"prompt_path": "prompts/' in e for e in raw) and stored


def pc_line(p, t) -> str:
    return f"{p.id}\t{p.duration:.2f}\t{p.text.capitalize()}.\t{t.id}\t{t.duration:.2f}\t{t.text.capitalize()}."


def test_a_published_list_is_read_exactly_and_missing_items_are_named(demo_root, speech, tmp_path):
    ls = demo_root / "LibriSpeech"
    pairs = [(speech[i], speech[(i + 1) % len(speech)]) for i in range(len(speech))]
    lst = tmp_path / "cross_sentence.lst"
    lst.write_text("\n".join(pc_line(p, t) for p, t in pairs) + "\n"
                   + f"{speech[0].id}\t3.00\tA prompt.\t1234-5678-0000\t5.00\tGone from this copy.\n")
    with pytest.raises(SuiteError, match=r"1 item\(s\) of the list are not in .*1234-5678-0000.*--allow-missing"):
        build("librispeech-pc-test-clean", ls, tmp_path / "pc", list_file=lst)
    card = build("librispeech-pc-test-clean", ls, tmp_path / "pc", list_file=lst, allow_missing=True)
    assert card["missing"] == {"count": 1, "ids": ["1234-5678-0000"]} and card["list"]["file"] == lst.name
    assert card["list"]["is_published"] is False  # not F5-TTS's list: the card (and the CLI) say so
    assert card_line(card) == f"librispeech-pc-test-clean v1 ({len(pairs)} of {len(pairs) + 1} items)"
    rows = {r["id"]: r for r in manifest.read_rows(tmp_path / "pc" / "tts.parquet")}
    p, t = pairs[0]
    extra = json.loads(rows[t.id]["extra"])
    assert rows[t.id]["text"] == t.text.capitalize() + "." and extra["prompt_id"] == p.id
    assert extra["prompt_text"] == p.text.capitalize() + "." and extra["prompt_path"] == p.path

    bad = tmp_path / "bad.lst"
    bad.write_text(pc_line(*pairs[0]) + "\n" + "only\tfive\tfields\there\tnow\n")
    with pytest.raises(SuiteError, match=r"bad.lst line 2: expected six tab-separated fields"):
        build("librispeech-pc-test-clean", ls, tmp_path / "pc2", list_file=bad)


def seed_tts_folder(speech, root: Path) -> Path:
    """seedtts_testset/en as shipped: meta.lst, prompt-wavs/, wavs/ (one item without its recording,
    one with a fifth field, one whose prompt is absent)."""
    en = root / "seedtts_testset" / "en"
    (en / "prompt-wavs").mkdir(parents=True)
    (en / "wavs").mkdir()
    lines = []
    for k, (p, t) in enumerate(zip(speech[:4], speech[4:8])):
        uid = f"common_voice_en_{k}"
        wav, sr = audio.load(p.path)
        audio.save(en / "prompt-wavs" / f"{uid}.wav", wav, sr)
        if k != 1:
            shutil.copy(t.path, en / "wavs" / f"{uid}.flac")
        target = f"|wavs/{uid}.flac" if k != 1 else ""
        lines.append(f"{uid}|{p.text.lower()}|prompt-wavs/{uid}.wav|{t.text.lower()}{target}")
    lines.append("common_voice_en_9|a prompt|prompt-wavs/not-shipped.wav|a target")
    (en / "meta.lst").write_text("\n".join(lines) + "\n")
    return root / "seedtts_testset"


def test_seed_tts_eval_as_shipped(speech, tmp_path):
    root = seed_tts_folder(speech, tmp_path)
    with pytest.raises(SuiteError, match="common_voice_en_9"):
        build("seed-tts-eval-en", root, tmp_path / "seed")
    card = build("seed-tts-eval-en", root, tmp_path / "seed", allow_missing=True)
    assert card["tasks"] == {"tts": 4} and card["list"]["file"] == "meta.lst" and card["published_items"] == {"tts": 1088}
    rows = {r["id"]: r for r in manifest.read_rows(tmp_path / "seed" / "tts.parquet")}
    e0, e1 = (json.loads(rows[f"common_voice_en_{k}"]["extra"]) for k in (0, 1))
    assert e0["has_recording"] and rows["common_voice_en_0"]["path"].endswith("wavs/common_voice_en_0.flac")
    assert not e1["has_recording"] and rows["common_voice_en_1"]["path"] == e1["prompt_path"]
    assert rows["common_voice_en_2"]["text"] == speech[6].text.lower() and rows["common_voice_en_2"]["language"] == "en"
    # ROOT may also be the language folder itself
    assert build("seed-tts-eval-en", root / "en", tmp_path / "seed-b", allow_missing=True)["tasks"] == {"tts": 4}
    (root / "en" / "meta.lst").write_text("common_voice_en_0|just|three\n")
    with pytest.raises(SuiteError, match=r"meta.lst line 1: expected meta.lst: one item a line"):
        build("seed-tts-eval-en", root, tmp_path / "seed-c")


def voicebank_folder(speech, root: Path) -> Path:
    from uniaudio.benchmark.tasks.se import add_noise

    for d in ("clean_testset_wav", "noisy_testset_wav", "testset_txt"):
        (root / d).mkdir(parents=True)
    for k, r in enumerate(speech[:3]):
        uid = f"p232_{k + 1:03d}"
        wav, sr = audio.load(r.path)
        audio.save(root / "clean_testset_wav" / f"{uid}.wav", wav, sr)
        audio.save(root / "noisy_testset_wav" / f"{uid}.wav", add_noise(wav, 5.0, k), sr)
        (root / "testset_txt" / f"{uid}.txt").write_text(r.text + "\n")
    audio.save(root / "noisy_testset_wav" / "p257_999.wav", np.zeros(1600, np.float32), 16000)  # no clean pair
    return root


def run_cli(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([str(BIN / "uniaudio"), *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_voicebank_demand_scored_end_to_end_with_its_name_on_the_leaderboard(speech, tmp_path):
    root = voicebank_folder(speech, tmp_path / "VoiceBank-DEMAND")
    run_cli("benchmark", "suite", "build", "voicebank-demand", "--root", str(root), "--out", str(tmp_path / "vb"),
            "--allow-missing")
    card = read_card(tmp_path / "vb")
    assert card["tasks"] == {"se": 3} and card["missing"]["ids"] == ["p257_999"]
    res, boards = tmp_path / "res", tmp_path / "boards"
    run_cli("benchmark", "run", "--task", "se", "--system", "passthrough", "--suite", str(tmp_path / "vb"),
            "--out", str(res), "--publish", str(boards))
    agg = json.loads((res / "results" / "se" / "passthrough" / "aggregate.json").read_text())
    assert agg["suite_card"]["line"] == "voicebank-demand v1 (3 of 4 items)" and agg["items"] == 3
    assert np.isfinite(agg["metrics"]["pesq"]["value"]["pesq"])
    assert "voicebank-demand v1 (3 of 4 items)" in (boards / "task-se.html").read_text()


@pytest.mark.slow
def test_whisper_tiny_on_a_librispeech_suite(demo_root, speech, tmp_path):
    run_cli("benchmark", "suite", "build", "librispeech-test-clean", "--root", str(demo_root / "LibriSpeech"),
            "--out", str(tmp_path / "ls"))
    shown = run_cli("benchmark", "suite", "show", str(tmp_path / "ls")).stdout
    assert json.loads(shown)["name"] == "librispeech-test-clean"
    res, boards = tmp_path / "res", tmp_path / "boards"
    run_cli("benchmark", "run", "--task", "asr", "--system", "whisper-tiny", "--suite", str(tmp_path / "ls"),
            "--out", str(res), "--publish", str(boards))
    agg = json.loads((res / "results" / "asr" / "whisper-tiny" / "aggregate.json").read_text())
    assert agg["items"] == len(speech) and 0 <= agg["metrics"]["wer"]["value"]["wer"] < 0.5
    assert "test set: librispeech-test-clean v1" in (boards / "task-asr.html").read_text()

    # the published figures beside the measured row, marked and cited, never ranked with it
    out = run_cli("benchmark", "publish", str(res), "--out", str(tmp_path / "boards2"), "--reported", "cited").stdout
    assert "1 reported row(s) beside measured rows of their suite" in out
    page = (tmp_path / "boards2" / "task-asr.html").read_text()
    measured, reported = page.split("Reported in publications")
    assert "whisper-tiny" in measured and "UniAudio 2.0" not in measured
    assert "UniAudio 2.0 <span class=\"mark\">reported</span>" in reported and "2.71%" in reported
    board = json.loads((tmp_path / "boards2" / "leaderboard.json").read_text())
    (asr,) = board["tasks"]
    assert [r["kind"] for r in asr["rows"]] == ["measured"] and asr["reported"][0]["kind"] == "reported"
    assert asr["reported"][0]["values"]["wer"]["value"] == pytest.approx(0.0271)
    csv_rows = (tmp_path / "boards2" / "leaderboard.csv").read_text().splitlines()
    assert any(line.startswith("asr,UniAudio 2.0,wer,") and ",reported," in line for line in csv_rows)


def test_sound_music_and_mmlu_suites_from_their_layouts(demo_root, tmp_path):
    from uniaudio.benchmark.tasks.mmlu import DEMO

    card = build("audiocaps-test", demo_root / "audiocaps", tmp_path / "ac")
    test_clips = [r for r in records("audiocaps", demo_root / "audiocaps", split="test")]
    assert card["tasks"] == {"tta": len(test_clips), "caption": len(test_clips)} and test_clips
    row = manifest.read_rows(tmp_path / "ac" / "caption.parquet")[0]
    assert json.loads(row["extra"])["captions"]  # every reference caption of the clip
    card = build("musiccaps", demo_root / "musiccaps", tmp_path / "mc")
    assert card["tasks"] == {"ttm": len(list(records("musiccaps", demo_root / "musiccaps", split="eval")))}
    with pytest.raises(SuiteError, match="MMLU's CSV layout"):
        build("mmlu", demo_root / "audiocaps", tmp_path / "mm-bad")
    assert build("mmlu", DEMO, tmp_path / "mm")["tasks"] == {"mmlu": 15}

    # a clip gone from a YouTube-downloaded corpus is a missing item, named
    gone = shutil.copytree(demo_root / "audiocaps", tmp_path / "audiocaps-copy")
    victim = Path(test_clips[0].path.replace(str(demo_root / "audiocaps"), str(gone)))
    victim.unlink()
    with pytest.raises(SuiteError, match=test_clips[0].id):
        build("audiocaps-test", gone, tmp_path / "ac2")
    card = build("audiocaps-test", gone, tmp_path / "ac2", allow_missing=True)
    assert card["missing"] == {"count": 1, "ids": [test_clips[0].id]}


def clotho_folder(speech, clotho: Path) -> Path:
    """Clotho v2 evaluation: a captions CSV and the clips."""
    (clotho / "evaluation").mkdir(parents=True)
    lines = ["file_name,caption_1,caption_2,caption_3,caption_4,caption_5"]
    for k, r in enumerate(speech[:2]):
        shutil.copy(r.path, clotho / "evaluation" / f"clip{k}.flac")
        lines.append(f"clip{k}.flac," + ",".join(f"caption {j} of clip {k}" for j in range(5)))
    (clotho / "clotho_captions_evaluation.csv").write_text("\n".join(lines) + "\n")
    return clotho


def vctk_folder(speech, vctk: Path) -> Path:
    """VCTK 0.92: two speakers, six utterances."""
    for k, r in enumerate(speech[:6]):
        spk, uid = f"p{225 + k % 2}", f"p{225 + k % 2}_{k:03d}"
        (vctk / "txt" / spk).mkdir(parents=True, exist_ok=True)
        (vctk / "wav48_silence_trimmed" / spk).mkdir(parents=True, exist_ok=True)
        (vctk / "txt" / spk / f"{uid}.txt").write_text(r.text + "\n")
        shutil.copy(r.path, vctk / "wav48_silence_trimmed" / spk / f"{uid}_mic1.flac")
    return vctk


def libri2mix_folder(speech, root: Path) -> Path:
    """Libri2Mix wav16k/min test: three mixtures of the two demo speakers."""
    base = root / "wav16k" / "min"
    for sub in ("mix_clean", "s1", "s2"):
        (base / "test" / sub).mkdir(parents=True)
    (base / "metadata").mkdir()
    a, b = [r for r in speech if r.speaker == speech[0].speaker], [r for r in speech if r.speaker != speech[0].speaker]
    mixtures = [(a[0], b[0]), (b[1], a[1]), (a[2], b[2])]
    meta = ["mixture_ID,mixture_path,source_1_path,source_2_path,length"]
    for s1, s2 in mixtures:
        mid = f"{s1.id}_{s2.id}"
        w1, w2 = audio.load(s1.path, 16000)[0], audio.load(s2.path, 16000)[0]
        n = min(len(w1), len(w2))
        audio.save(base / "test" / "s1" / f"{mid}.wav", w1[:n], 16000)
        audio.save(base / "test" / "s2" / f"{mid}.wav", w2[:n], 16000)
        audio.save(base / "test" / "mix_clean" / f"{mid}.wav", (w1[:n] + w2[:n]) / 2, 16000)
        meta.append(f"{mid},x,x,x,{n}")
    (base / "metadata" / "mixture_test_mix_clean.csv").write_text("\n".join(meta) + "\n")
    return root


def test_clotho_vctk_and_libri2mix_suites(speech, tmp_path):
    assert build("clotho-eval", clotho_folder(speech, tmp_path / "clotho"), tmp_path / "cl")["tasks"] == {"caption": 2}

    build("vctk-vc", vctk_folder(speech, tmp_path / "VCTK"), tmp_path / "vc")
    rows = manifest.read_rows(tmp_path / "vc" / "vc.parquet")
    assert len(rows) == 6
    for r in rows:
        extra = json.loads(r["extra"])
        assert extra["prompt_id"].split("_")[0] != r["id"].split("_")[0]  # another speaker's voice

    # target s1, enrollment another utterance of s1's speaker
    card = build("libri2mix-test", libri2mix_folder(speech, tmp_path / "Libri2Mix"), tmp_path / "tse")
    assert card["tasks"] == {"tse": 3} and card["published_items"] == {"tse": 3000}
    for r in manifest.read_rows(tmp_path / "tse" / "tse.parquet"):
        extra = json.loads(r["extra"])
        assert extra["enroll_id"].split("-")[0] == r["speaker"] and extra["enroll_id"] != extra["target_utterance"]


def test_the_packaged_published_list_is_f5_ttss(demo_root, tmp_path):
    """F5-TTS's LibriSpeech-PC list ships with uniaudio and is the suite's default list: read whole
    (1,127 items, as published); the demo corpus holds none of its utterances."""
    from uniaudio.files import sha256_file as sha256_of
    from uniaudio.benchmark.suites.librispeech import PC_LIST, PC_SHA256, parse_pc_list

    assert sha256_of(PC_LIST) == PC_SHA256 and len(parse_pc_list(PC_LIST)) == 1127
    with pytest.raises(SuiteError, match=r"1127 item\(s\) of the list are not in"):
        build("librispeech-pc-test-clean", demo_root / "LibriSpeech", tmp_path / "pc")



@pytest.mark.slow
def test_seed_tts_eval_layout_of_real_speech_scored_end_to_end(ljspeech_mini, tmp_path):
    """A Seed-TTS-eval folder of real speech (ljspeech-mini: held out, only scored here): each
    clip the target, the next clip its prompt; the ground-truth system scored through the CLI."""
    en = tmp_path / "seedtts_testset" / "en"
    (en / "wavs").mkdir(parents=True)
    (en / "prompt-wavs").mkdir()
    meta = [line.split("|") for line in (ljspeech_mini / "metadata.csv").read_text().splitlines()[:6]]
    lines = []
    for k, (uid, _, text) in enumerate(meta):
        puid, _, ptext = meta[(k + 1) % len(meta)]
        shutil.copy(ljspeech_mini / "wavs" / f"{uid}.wav", en / "wavs" / f"{uid}.wav")
        shutil.copy(ljspeech_mini / "wavs" / f"{puid}.wav", en / "prompt-wavs" / f"{puid}.wav")
        lines.append(f"{uid}|{ptext}|prompt-wavs/{puid}.wav|{text}")
    (en / "meta.lst").write_text("\n".join(lines) + "\n")
    run_cli("benchmark", "suite", "build", "seed-tts-eval-en", "--root", str(tmp_path / "seedtts_testset"),
            "--out", str(tmp_path / "seed"))
    # the suite's own preset (Whisper-large-v3, WavLM-large + ECAPA) is not here offline: score with the
    # offline models, which the result then records as not the paper setting
    run_cli("benchmark", "run", "--task", "tts", "--system", "ground-truth", "--suite", str(tmp_path / "seed"),
            "--out", str(tmp_path / "res"), "--protocol", "offline-defaults")
    agg = json.loads((tmp_path / "res" / "results" / "tts" / "ground-truth" / "aggregate.json").read_text())
    assert agg["items"] == 6 and agg["suite_card"]["line"] == "seed-tts-eval-en v1"
    assert agg["protocol"]["name"] == "offline-defaults" and agg["protocol"]["paper_setting"] is False
    assert agg["metrics"]["wer"]["value"]["wer"] < 0.2  # real speech read back by whisper-tiny
    assert agg["metrics"]["sim"]["items_scored"] == 6


@pytest.mark.slow
def test_every_other_suite_is_scored_end_to_end(demo_root, speech, tmp_path):
    """The suites the tests above do not score, each built from its layout and scored by a built-in
    system through the runner (the same path as `benchmark run --suite DIR`)."""
    from uniaudio.benchmark.runner import run
    from uniaudio.benchmark.tasks.mmlu import DEMO

    builds = [("librispeech-test-clean-tts", demo_root / "LibriSpeech", "tts", "ground-truth"),
              ("vctk-vc", vctk_folder(speech, tmp_path / "VCTK"), "vc", "passthrough"),
              ("libri2mix-test", libri2mix_folder(speech, tmp_path / "Libri2Mix"), "tse", "ground-truth"),
              ("clotho-eval", clotho_folder(speech, tmp_path / "clotho"), "caption", "ground-truth"),
              ("audiocaps-test", demo_root / "audiocaps", "tta", "ground-truth"),
              ("musiccaps", demo_root / "musiccaps", "ttm", "ground-truth"),
              ("mmlu", DEMO, "mmlu", "ground-truth")]
    for name, root, task, system in builds:
        card = build(name, root, tmp_path / name)
        (res,) = run([task], system, str(tmp_path / name), None, tmp_path / "res", progress=False)
        assert res["suite_card"]["line"] == f"{name} v1" and res["items"] == card["tasks"][task], name
        for metric, m in res["metrics"].items():
            assert not m.get("error"), (name, metric, m.get("error"))


def test_a_reported_numbers_file_is_checked_line_by_line(tmp_path):
    from uniaudio.benchmark.publish.reported import SHIPPED, ReportedError, load

    assert len(load(SHIPPED)) >= 10  # the shipped figures pass their own checks
    good = "- system: X\n  suite: librispeech-test-clean\n  values: {wer: 2.5}\n  source: Paper, Table 1\n"
    assert load(_write(tmp_path, good))[0]["values"] == {"wer": 0.025}  # percent as printed -> fraction
    for body, why in [("  suite: no-such-suite\n  values: {wer: 2.5}\n", "unknown suite 'no-such-suite'"),
                      ("  suite: librispeech-test-clean\n  values: {wer: two}\n", "the value of wer is not a number"),
                      ("  suite: librispeech-test-clean\n  values: {sim: 0.5}\n", "'sim' is not a value the asr task"),
                      ("  suite: audiocaps-test\n  values: {cider: 0.5}\n", "task None is not one of audiocaps-test's")]:
        path = _write(tmp_path, good + "- system: Y\n" + body + "  source: Paper, Table 2\n")
        with pytest.raises(ReportedError, match=r"line 5: " + why.replace("(", "\\(")):
            load(path)


def _write(tmp_path, text: str) -> Path:
    p = tmp_path / "reported.yaml"
    p.write_text(text)
    return p



@pytest.mark.slow
def test_a_suites_protocol_preset_is_used_and_never_swapped_for_another_model(speech, tmp_path):
    """seed-tts-eval-en names its preset: Whisper-large-v3 WER and WavLM-large + ECAPA SIM. Neither
    is here offline, so both are NaN with the model's name (never another model's number under the
    preset's name); --metric-option overrides are recorded and the result is then not the paper's."""
    from uniaudio.benchmark.runner import run

    root = seed_tts_folder(speech, tmp_path)
    (root / "en" / "meta.lst").write_text("\n".join((root / "en" / "meta.lst").read_text().splitlines()[:4]) + "\n")
    card = build("seed-tts-eval-en", root, tmp_path / "seed")
    assert card["protocol_preset"] == "seed-tts-eval"
    (res,) = run(["tts"], "ground-truth", str(tmp_path / "seed"), None, tmp_path / "res", progress=False)
    assert res["protocol"]["name"] == "seed-tts-eval" and res["protocol"]["paper_setting"] is True
    sim, wer = res["metrics"]["sim"], res["metrics"]["wer"]
    assert sim["items_scored"] == 0 and wer["items_scored"] == 0 and wer["card"]["normalizer"] == "seed-tts-eval"
    items = (tmp_path / "res" / "results" / "tts" / "ground-truth" / "items.jsonl").read_text()
    assert "wavlm-large-ecapa" in items and "whisper-large-v3 is not available offline" in items.replace("'", "")
    (res,) = run(["tts"], "ground-truth", str(tmp_path / "seed"), None, tmp_path / "res2", progress=False,
                 metric_options={"sim": {"backend": "resemblyzer"}})
    assert res["protocol"]["overridden"] == {"sim": {"backend": "resemblyzer"}} and not res["protocol"]["paper_setting"]
    assert res["metrics"]["sim"]["items_scored"] == 4
    (res,) = run(["tts"], "ground-truth", str(tmp_path / "seed"), None, tmp_path / "res3", progress=False,
                 protocol="offline-defaults")
    assert res["protocol"]["name"] == "offline-defaults" and res["metrics"]["wer"]["items_scored"] == 4


def test_protocol_presets_are_listed_and_an_unknown_one_is_a_clear_error(tmp_path):
    from click.testing import CliRunner

    from uniaudio.cli import main

    listed = CliRunner().invoke(main, ["benchmark", "protocols"])
    assert listed.exit_code == 0 and "seed-tts-eval:" in listed.output and "normalizer=seed-tts-eval" in listed.output
    assert "uniaudio: " in listed.output and "visqol: mapper=lattice" in listed.output  # UniAudio's own scripts
    bad = CliRunner().invoke(main, ["benchmark", "run", "--task", "asr", "--system", "ground-truth",
                                    "--protocol", "no-such", "--out", str(tmp_path / "r")])
    assert bad.exit_code != 0 and "unknown protocol 'no-such'" in bad.output and "open-asr-leaderboard" in bad.output



def test_aishell1_test_suite_from_its_layout_scored_by_cer(demo_root, tmp_path):
    """aishell1-test from the demo's Mandarin corpus (AISHELL-1's layout): every test utterance with
    its characters; its preset scores asr by CER on characters (zh-cer: punctuation, spaces and
    width folded, transcripts to simplified): the references score 0, another item's text does not."""
    from uniaudio.benchmark.runner import run

    out = tmp_path / "ai"
    card = build("aishell1-test", demo_root / "aishell", out)
    rows = manifest.read_rows(out / "asr.parquet")
    assert card["tasks"] == {"asr": len(rows)} and card["published_items"] == {"asr": 7176} and rows
    assert all(r["language"] == "zh" and r["split"] == "test" and " " not in r["text"] for r in rows)
    assert card["protocol_preset"] == "aishell-cer"
    with pytest.raises(SuiteError, match="AISHELL-1 as openslr ships it"):
        build("aishell1-test", demo_root / "LibriSpeech", tmp_path / "wrong")
    got = {}
    for system in ("ground-truth", "shuffled"):
        (res,) = run(["asr"], system, str(out), None, tmp_path / "bench", progress=False)
        got[system] = res["metrics"]["cer"]["value"]["cer"]
        assert res["protocol"]["name"] == "aishell-cer"
    assert got["ground-truth"] == 0.0 and got["shuffled"] > 0.3


def test_fleurs_language_folder_as_shipped(demo_root, tmp_path):
    """fleurs-test from a FLEURS-layout copy of the demo's Mandarin test speech (data/cmn_hans_cn:
    test.tsv + audio/test/*.wav): the raw transcription is the reference, the folder gives zh, a
    listed wav that is not there is missing (named), a line of the wrong shape names its line."""
    import shutil

    from uniaudio.benchmark.runner import run

    root = tmp_path / "data" / "cmn_hans_cn"
    (root / "audio" / "test").mkdir(parents=True)
    listing = demo_root / "aishell" / "data_aishell" / "transcript" / "aishell_transcript_v0.8.txt"
    texts = dict(line.split(" ", 1) for line in listing.read_text().splitlines())
    wavs = sorted((demo_root / "aishell" / "data_aishell" / "wav" / "test").rglob("*.wav"))
    lines = []
    for k, w in enumerate(wavs):
        shutil.copy(w, root / "audio" / "test" / f"{1000 + k}.wav")
        raw = texts[w.stem].replace(" ", "")
        lines.append(f"{k}\t{1000 + k}.wav\t{raw}。\t{raw}\tx\t{16000 * 3}\t{'MALE' if k % 2 else 'FEMALE'}")
    lines.append("99\tgone.wav\t不在\t不在\tx\t16000\tFEMALE")
    (root / "test.tsv").write_text("\n".join(lines) + "\n")
    with pytest.raises(SuiteError, match="gone"):
        build("fleurs-test", root, tmp_path / "s0")
    card = build("fleurs-test", root, tmp_path / "s", allow_missing=True)
    rows = manifest.read_rows(tmp_path / "s" / "asr.parquet")
    assert card["tasks"] == {"asr": len(wavs)} and card["missing"]["count"] == 1 and card["protocol_preset"] == "fleurs"
    assert all(r["language"] == "zh" and r["text"].endswith("。") for r in rows)
    (res,) = run(["asr"], "ground-truth", str(tmp_path / "s"), None, tmp_path / "bench", progress=False)
    assert res["metrics"]["cer"]["value"]["cer"] == 0.0 and res["protocol"]["name"] == "fleurs"
    (root / "test.tsv").write_text("1\tonly\tthree\n")
    with pytest.raises(SuiteError, match="line 1: expected 7"):
        build("fleurs-test", root, tmp_path / "s2")
    (root / "test.tsv").write_text("1\t../../etc/passwd\tx\tx\tx\t1\tMALE\n")  # never read outside the folder
    with pytest.raises(SuiteError, match="line 1: the file name .* is a path"):
        build("fleurs-test", root, tmp_path / "s3")


@pytest.mark.slow
def test_demo_zh_suite_asr_and_tts_scored_by_cer(demo_root, tmp_path, tiny_multilingual_whisper):
    """`--suite demo-zh`: the demo's held-out Mandarin speaker as asr and tts items, built from the
    demo suite's corpora. asr: CER on characters (references 0, another item's text > 0.3), the
    English-only baseline refuses zh items with the reason; tts: Paraformer-zh's CER (the preset's
    ASR; without FunASR each item is NaN with the install step), or a multilingual faster-whisper
    told zh (a tiny real model here: its transcripts are empty, so every character is deleted)."""
    from uniaudio.benchmark.runner import run

    root = tmp_path / "bench"
    (root / "demo").mkdir(parents=True)
    (root / "demo" / "corpora").symlink_to(demo_root)
    results = run(None, "ground-truth", "demo-zh", root, tmp_path / "r", progress=False)  # --task all: its two
    assert [r["task"] for r in results] == ["asr", "tts"] and all(r["protocol"]["name"] == "demo-zh" for r in results)
    rows = manifest.read_rows(root / "demo-zh" / "tts.parquet")
    prompts = [json.loads(r["extra"])["prompt_id"] for r in rows]  # the same speaker, another utterance
    assert len(rows) >= 6 and all(r["language"] == "zh" and p != r["id"] and p.split("W")[0] == r["id"].split("W")[0]
                                  for r, p in zip(rows, prompts))
    assert results[0]["metrics"]["cer"]["value"]["cer"] == 0.0
    assert results[1]["metrics"]["wer"]["items_failed"] == len(rows)
    assert "pip install funasr" in _item_errors(tmp_path / "r", "tts", "ground-truth")
    asr = {r["system"]: r for r in run(["asr"], None, "demo-zh", root, tmp_path / "r", progress=False,
                                        all_builtins=True)}
    assert asr["shuffled"]["metrics"]["cer"]["value"]["cer"] > 0.3
    assert asr["whisper-tiny"]["metrics"]["cer"]["items_failed"] == len(rows)
    assert "English-only" in _item_errors(tmp_path / "r", "asr", "whisper-tiny")
    (tts,) = run(["tts"], "espeak", "demo-zh", root, tmp_path / "r", progress=False, metric_options={
        "wer": {"asr_backend": "faster-whisper", "asr_model": str(tiny_multilingual_whisper)}})
    wer = tts["metrics"]["wer"]  # espeak-ng's Mandarin voice spoke every item; the tiny model heard nothing
    assert wer["items_failed"] == 0 and wer["value"]["wer"] == 1.0 and wer["card"]["asr"]["language"] == "zh"


def _item_errors(out: Path, task: str, system: str) -> str:
    return "\n".join(json.dumps(json.loads(line)["errors"], ensure_ascii=False)
                     for p in out.rglob("items.jsonl") if task in p.parts and system in p.parts
                     for line in p.read_text().splitlines())
