"""Auditory sentences (issue 15): relations true of their source rows, bundles within the
context, round trips back to the token arrays and text, packing fill, exactly-once resume,
bad input left out with its reason, both layouts."""

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline_helpers import config, plan_rows
from uniaudio.config import ConfigError, from_dict
from uniaudio.pipeline.sentences import SentenceConfig, run
from uniaudio.pipeline.shards import read_tar
from uniaudio.pipeline.verify import verify


def sentences(tokens: Path, out: Path, **kw):
    return run(from_dict(SentenceConfig, {"tokens": str(tokens), "output": str(out), **kw}), progress=False)


def source_codes(token_out: Path, member: str = "codes.npy") -> dict[str, np.ndarray]:
    codes = {}
    for tar in (token_out / "shards").glob("*.tar"):
        for _, m in read_tar(tar):
            if member in m:
                codes[json.loads(m["json"])["id"]] = np.load(io.BytesIO(m[member]))
    return codes


def all_sequences(out: Path):
    from uniaudio.pipeline.sentences.inspect import BundleReader

    reader = BundleReader(out)
    for tar in sorted((out / "shards").glob("*.tar")):
        for key, members in read_tar(tar):
            meta = json.loads(members["json"])
            yield meta, reader.decode(members)


@pytest.mark.slow
def test_relations_hold_and_round_trip_to_the_source_tokens_and_text(sent_out, token_out):
    from uniaudio.prosody import PITCH_BANDS_HZ, instruction
    from uniaudio.tokenize.score import score_text

    out, report = sent_out
    rows, codes, content = plan_rows(token_out), source_codes(token_out), source_codes(token_out, "semantic.npy")
    frame_rate = report["tokenizer"]["frame_rate"]
    measures = {r["id"]: json.loads(r["measures"]) for r in pq.read_table(token_out / "index.parquet").to_pylist()
                if r["measures"]}
    assert measures and all("f0_hz" in m for m in measures.values())
    seen_tasks = set()
    for meta, seqs in all_sequences(out):
        assert meta["rows"] <= meta["context"] == 2048
        for s in seqs:
            seen_tasks.add(s["task"])
            segs = s["segments"]
            for g in segs:  # round trip: every segment gives back its source's codes or text
                src = rows[g["id"]]
                if "codes" in g:
                    a, b = g["frames"]
                    src_codes = content if g.get("member") == "semantic.npy" else codes
                    assert np.array_equal(g["codes"], src_codes[g["id"]][:, a:b])
                elif (s["task"], g["modality"]) in (("sound_edit", "text"), ("instruct_tts", "caption"), ("svs", "text")):
                    pass  # the instruction or the score, checked below
                elif g["modality"] == "caption":
                    caps = src["extra"].get("captions") or [src["caption"]]
                    assert g["text"] in [c.strip() for c in caps]  # the caption belongs to its clip
                else:
                    assert g["text"] == src["text"].strip()
            if s["task"] == "tts":  # same_speaker: a 3 s prompt from ANOTHER utterance of the speaker
                text, prompt, target = segs
                assert [g["modality"] for g in segs] == ["text", "prompt", "audio"]
                assert prompt["id"] != target["id"] and text["id"] == target["id"]
                assert rows[prompt["id"]]["speaker"] == rows[target["id"]]["speaker"]
                assert prompt["frames"][1] - prompt["frames"][0] == round(3.0 * frame_rate)
            if s["task"] == "interleave":  # consecutive utterances of one chapter, in order
                ids = [g["id"] for g in segs[::2]]
                assert len(ids) >= 2 and ids == sorted(ids) and len(set(ids)) == len(ids)
                assert len({(rows[i]["speaker"], rows[i]["extra"].get("chapter")) for i in ids}) == 1
                assert [g["modality"] for g in segs] == ["audio", "text"] * len(ids)
                assert all(segs[2 * k]["id"] == segs[2 * k + 1]["id"] for k in range(len(ids)))
            if s["task"] in ("tta", "ttm", "caption"):
                clip = [g for g in segs if "codes" in g][0]
                assert rows[clip["id"]]["domain"] == ("music" if s["task"] == "ttm" else
                                                      rows[clip["id"]]["domain"])
                assert all(g["id"] == clip["id"] for g in segs)
            if s["task"] == "asr":
                assert [g["modality"] for g in segs] == ["audio", "text"]
            if s["task"] == "instruct_tts":  # the instruction says the bands the engine measured on the target
                instr, text, target = segs
                m = measures[target["id"]]
                assert [g["modality"] for g in segs] == ["caption", "text", "audio"]
                assert instr["id"] == text["id"] == target["id"] and m["pitch"] and m["rate"]
                assert instr["text"] == instruction({"pitch": m["pitch"], "rate": m["rate"]})
                assert PITCH_BANDS_HZ[m["pitch"]][0] <= m["f0_hz"] < PITCH_BANDS_HZ[m["pitch"]][1]
            if s["task"] == "vc":  # content_of: the utterance's content codes + 3 s of ANOTHER utterance -> it
                sem, prompt, target = segs
                assert [g["modality"] for g in segs] == ["semantic", "prompt", "audio"]
                assert sem["id"] == target["id"] != prompt["id"] and sem["member"] == "semantic.npy"
                assert rows[prompt["id"]]["speaker"] == rows[target["id"]]["speaker"]
                assert sem["frames"] == [0, content[target["id"]].shape[1]] and sem["codes"].shape[0] == 2
                assert prompt["frames"][1] - prompt["frames"][0] == round(3.0 * frame_rate)
            if s["task"] == "speech_edit":  # infilling: the speech around one timed word + transcript -> all of it
                head, tail, text, target = segs
                assert [g["modality"] for g in segs] == ["audio", "audio", "text", "audio"]
                assert head["id"] == tail["id"] == text["id"] == target["id"]
                (a0, a), (b, b1) = head["frames"], tail["frames"]
                assert a0 == 0 and b1 == target["frames"][1] and 0 < a < b < b1
                inner = [(x, y) for _, x, y in measures[target["id"]]["words"][1:-1]]
                assert any(a == max(1, int(x * frame_rate)) and b == int(np.ceil(y * frame_rate)) for x, y in inner)
            if s["task"] == "svs":  # score: the song's notes as text -> that song
                score, song = segs
                assert [g["modality"] for g in segs] == ["text", "audio"] and score["id"] == song["id"]
                assert rows[song["id"]]["domain"] == "singing"
                assert score["text"] == score_text(rows[song["id"]]["extra"]["notes"])
                assert score["text"].split(" | ")[0].split()[0] == rows[song["id"]]["text"].split()[0]
            if s["task"] == "sound_edit":  # add: clip, instruction -> mixture; remove: the reverse
                first, instr, last = segs
                mixed = first if "sim_task" in rows[first["id"]]["extra"] else last
                clip = last if mixed is first else first
                made = rows[mixed["id"]]["extra"]
                assert made["sim_target"] == clip["id"] and made["event_id"] != clip["id"]
                assert instr["text"] == ("Remove" if mixed is first else "Add") + \
                    f" this event: {made['event_caption']}."
                assert [g["modality"] for g in segs] == ["audio", "text", "audio"] and mixed["frames"] == clip["frames"]
                continue
            if s["task"] in ("se", "dereverb", "tse"):  # the engine's pair: derived audio -> its source
                cond, target = segs[0], segs[-1]
                made = rows[cond["id"]]["extra"]
                assert made["sim_task"] == s["task"] and made["sim_target"] == target["id"]
                assert cond["frames"] == target["frames"] and rows[target["id"]]["domain"] == "speech"
                assert [g["modality"] for g in segs] == (["audio", "prompt", "audio"] if s["task"] == "tse"
                                                         else ["audio", "audio"])
            if s["task"] == "tse":  # enrollment: 3 s of ANOTHER utterance of the target speaker; the
                enroll = segs[1]     # interferer in the mixture is another speaker
                assert enroll["id"] not in (target["id"], cond["id"])
                assert rows[enroll["id"]]["speaker"] == rows[target["id"]]["speaker"]
                assert enroll["frames"][1] - enroll["frames"][0] == round(3.0 * frame_rate)
                assert rows[made["interferer_id"]]["speaker"] != rows[target["id"]]["speaker"]
            if s["task"] == "se":
                assert rows[made["noise_id"]]["domain"] in ("sound", "music")
    zh = [s for _, seqs in all_sequences(out) for s in seqs if s["task"] == "asr"
          and rows[s["segments"][0]["id"]]["language"] == "zh"]
    assert zh and all(g["text"] == rows[g["id"]]["text"] for s in zh for g in s["segments"] if "text" in g)
    assert seen_tasks == {"asr", "tts", "interleave", "caption", "tta", "ttm", "text", "se", "dereverb", "tse",
                          "sound_edit", "instruct_tts", "svs", "speech_edit", "vc"}
    assert verify(out)["problems"] == []


@pytest.mark.slow
def test_held_out_splits_never_reach_a_training_bundle(sent_out, token_out):
    from uniaudio.pipeline.sentences.inspect import BundleReader

    out, report = sent_out
    rows = plan_rows(token_out)
    held = lambda uid: rows[uid]["split"].startswith(("test", "dev", "val", "eval"))  # noqa: E731
    reader, seen = BundleReader(out), {"sentences": set(), "heldout": set()}
    for tar in sorted((out / "shards").glob("*.tar")):
        kind = tar.name.split("-")[0]
        for _, members in read_tar(tar):
            for s in reader.decode(members):
                ids = {g["id"] for g in s["segments"]}
                assert {held(i) for i in ids} == {kind == "heldout"}, (tar.name, s["seq"])  # no mixing
                seen[kind] |= ids
    assert seen["heldout"] and seen["sentences"] and report["bundles_heldout"] > 0
    index = pq.read_table(out / "index.parquet").to_pylist()
    assert {r["split"] for r in index} == {"train", "heldout"}


@pytest.mark.slow
def test_fill_report_and_padding_baseline(sent_out):
    out, r = sent_out
    assert r["fill"] >= 0.98 and r["padding_baseline_fill"] < r["fill"]
    assert r["rows"] + r["waste_rows"] == r["bundles"] * 2048
    assert r["sequences"] + r["left_out"] == r["sequences_planned"] + r["left_out_by_reason"].get("no_prompt", 0) \
        + sum(r["left_out_by_reason"].get(k, 0) for k in ("empty_transcript", "no_caption", "no_word_timings",
                                                          "no_enrollment", "no_content_codes", "no_score"))
    assert set(r["relations"]) == {"transcript", "same_speaker", "consecutive", "caption", "text", "noisy_of",
                                   "reverberant_of", "mixture_of", "event_edit", "measured_style", "score",
                                   "masked_word", "content_of"}
    assert abs(sum(r["modality_share"].values()) - 1) < 1e-3 and r["peak_rss_mb"]["driver"] > 0
    seqs = pq.read_table(out / "sequences.parquet").to_pylist()
    assert len(seqs) == r["sequences"] and len({s["seq"] for s in seqs}) == len(seqs)


@pytest.mark.slow
def test_multistream_layout_is_the_same_plan_in_streams(sent_out, token_out, tmp_path, ray_local):
    from uniaudio.tokenize.vocab import Vocabulary

    base, _ = sent_out
    ms_out = tmp_path / "ms"
    sentences(token_out, ms_out, layout="multistream")
    v = Vocabulary.load(ms_out / "vocab.json")
    empty, k = v.id("<empty>"), v.audio_range().codebooks
    for tar in sorted((ms_out / "shards").glob("*.tar")):
        other = dict(read_tar(base / "shards" / tar.name))
        for key, m in read_tar(tar):
            ms = np.load(io.BytesIO(m["tokens.npy"]))
            streams = np.load(io.BytesIO(m["streams.npy"])).astype(bool)
            loss = np.load(io.BytesIO(m["loss.npy"])).astype(bool)
            assert ms.shape[1] == k + 1 and ms.dtype == np.int32
            audio_rows = streams[:, 0]
            assert (streams[audio_rows, :k].all() and not streams[audio_rows, k].any()
                    and (ms[audio_rows, k] == empty).all())  # an audio row: K codes, text stream empty
            assert (streams[~audio_rows, k].all() and not streams[~audio_rows, :k].any()
                    and (ms[~audio_rows, :k] == empty).all())  # a text row: the other way round
            assert not (loss & ~streams).any()  # no loss on a silent stream
            uni = np.load(io.BytesIO(other[key]["tokens.npy"]))  # same packing, other layout
            assert np.array_equal(v.from_multistream(ms), uni)
            assert np.array_equal(loss.any(1), np.load(io.BytesIO(other[key]["loss.npy"])).astype(bool))
    assert verify(ms_out)["problems"] == []


@pytest.mark.slow
def test_resume_skips_and_changed_config_is_refused(sent_out, token_out):
    from uniaudio.pipeline.plan import PlanMismatch

    out, _ = sent_out
    before = {p.name: p.stat().st_mtime_ns for p in (out / "shards").glob("*.tar")}
    again = sentences(token_out, out)
    assert again["shards"]["written_this_run"] == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "shards").glob("*.tar")} == before
    cfg_before = (out / "config.json").read_bytes()
    with pytest.raises(PlanMismatch, match=r"context: 2048 -> 1024"):
        sentences(token_out, out, context=1024)
    assert (out / "config.json").read_bytes() == cfg_before


def damaged_copy(token_out: Path, dest: Path) -> dict:
    """A copy of the token output with the troubles of real data: one speaker reduced to a
    single utterance, an empty transcript, one token tar corrupted and one deleted."""
    from uniaudio.pipeline.plan import InputPlan

    shutil.copytree(token_out, dest)
    plan = InputPlan.load(dest / "plan" / "librispeech.json")
    assert all(f.startswith(str(dest.resolve())) for f in plan.files())  # the copy's own plan files
    speech = sorted(i for f in plan.files() for i in pq.read_table(f, columns=["id"]).column("id").to_pylist())
    lonely, silent, foreign = speech[0], speech[1], speech[2]
    for f in plan.files():
        t = pq.read_table(f)
        rows = t.to_pylist()
        for r in rows:
            if r["id"] == lonely:
                r["speaker"] = "lonely-speaker"
            if r["id"] == silent:
                r["text"] = "  "
            if r["id"] == foreign:  # a language no text front end is configured for
                r["language"] = "fr"
        pq.write_table(pa.Table.from_pylist(rows, schema=t.schema), f)
    damaged = sorted((dest / "shards").glob("librispeech-*.tar"))[-1]
    gone = sorted((dest / "shards").glob("audiocaps-*.tar"))[0]
    data = bytearray(damaged.read_bytes())
    data[700:720] = b"\xff" * 20
    damaged.write_bytes(bytes(data))
    gone.unlink()
    index = pq.read_table(dest / "index.parquet").to_pylist()
    in_tar = lambda tar: {r["id"] for r in index if r["shard"] == tar.name}  # noqa: E731
    return {"lonely": lonely, "silent": silent, "foreign": foreign, "damaged": in_tar(damaged), "gone": in_tar(gone)}


@pytest.mark.slow
def test_bad_input_is_left_out_with_reasons_and_the_run_goes_on(token_out, tmp_path, ray_local):
    bad = damaged_copy(token_out, tmp_path / "tokens")
    out = tmp_path / "sent"
    r = sentences(tmp_path / "tokens", out, context=400)  # music (10 s = 500 frames) no longer fits
    rej = pq.read_table(out / "rejects.parquet").to_pylist()
    by = {}
    for x in rej:
        by.setdefault(x["reason"], set()).add(x["id"])
    assert bad["lonely"] in by["no_prompt"] and bad["silent"] in by["empty_transcript"]
    assert bad["foreign"] in by["no_text_frontend"]  # never tokenized as English
    assert r["script_mismatch"] == {}  # every kept transcript is in its language's script
    assert by["missing_token_tar"] == bad["gone"]  # every clip of the deleted tar, and nothing else
    assert by["damaged_token_tar"] >= bad["damaged"] - {bad["silent"]}
    rows = plan_rows(tmp_path / "tokens")
    assert "music" in {rows[i]["domain"] for i in by["longer_than_context"]}  # every 10 s clip
    assert r["bundles"] > 0 and verify(out)["problems"] == []
    for _, seqs in all_sequences(out):  # no audio from a damaged or missing tar in any bundle
        for s in seqs:
            assert not {g["id"] for g in s["segments"] if "codes" in g} & (bad["damaged"] | bad["gone"])


@pytest.mark.slow
def test_sentences_need_a_finished_token_output(tmp_path, demo_root, ray_local):
    from uniaudio.pipeline.run import run as run_pipeline
    from uniaudio.pipeline.sentences.plan import TokenOutputError

    with pytest.raises(TokenOutputError, match="index.parquet is missing"):
        sentences(tmp_path / "nothing", tmp_path / "o1")
    audio_out = tmp_path / "audio"
    run_pipeline(config(audio_out, [{"recipe": "musiccaps", "root": str(demo_root / "musiccaps")}]), progress=False)
    with pytest.raises(TokenOutputError, match="FLAC audio, not tokens"):
        sentences(audio_out, tmp_path / "o2")
    # mu-law: 16,000 rows a second, so no 10 s music clip fits 2048 rows: refused, naming rate and context
    mulaw = tmp_path / "mulaw"
    run_pipeline(config(mulaw, [{"recipe": "musiccaps", "root": str(demo_root / "musiccaps")}], tokenizer="mulaw"),
                 progress=False)
    with pytest.raises(TokenOutputError, match=r"no audio segment fits the context.*16000 rows/s of mulaw.*2048 rows"):
        sentences(mulaw, tmp_path / "o3")
    assert not (tmp_path / "o3" / "plan" / "sentences.json").exists()


@pytest.mark.parametrize("data,field", [
    ({"layout": "frames"}, "layout"),
    ({"tasks": {"asr": 1, "speak": 1}}, "tasks.speak"),
    ({"tasks": {"asr": -1}}, "tasks.asr"),
    ({"tasks": {"asr": 0}}, "tasks"),
    ({"context": 8}, "context"),
    ({"memory_limit": "lots"}, "memory_limit"),
    ({"interleave_max": 1}, "interleave_max"),
])
def test_config_errors_name_the_field(data, field):
    with pytest.raises(ConfigError) as ei:
        from_dict(SentenceConfig, {"tokens": "t", "output": "o", **data})
    assert ei.value.field == field


@pytest.mark.slow
def test_inspect_prints_a_bundle_for_a_person(sent_out):
    import subprocess
    import sys

    out, _ = sent_out
    tar = sorted((out / "shards").glob("*.tar"))[0]
    res = subprocess.run([str(Path(sys.executable).parent / "uniaudio"), "pipeline", "inspect", str(tar),
                          "--limit", "1"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("bundle ") and "rows" in res.stdout and '"' in res.stdout
    key = res.stdout.split()[1].rstrip(":")
    one = subprocess.run([str(Path(sys.executable).parent / "uniaudio"), "pipeline", "inspect", f"{tar}:{key}"],
                         capture_output=True, text=True, timeout=120)
    assert one.returncode == 0 and one.stdout == res.stdout


def test_inspect_and_verify_name_a_damaged_member_and_an_extra_one(sent_out, tmp_path):
    """A bundle whose tokens.npy is garbage and a stray README.txt in a tar: inspect lists every
    other bundle and names both (no numpy pickle advice, no KeyError), verify counts only the
    record's bundles and names both members."""
    import json
    import shutil

    from uniaudio.files import sha256_file
    from uniaudio.pipeline.sentences.inspect import describe
    from uniaudio.pipeline.shards import read_tar, write_tar
    from uniaudio.pipeline.verify import verify

    out, _ = sent_out
    copy = tmp_path / "sent"
    shutil.copytree(out, copy)
    before = verify(copy)
    tar = sorted((copy / "shards").glob("sentences-*.tar"))[0]
    samples = list(read_tar(tar))
    bad_key = samples[0][0]
    samples[0][1]["tokens.npy"] = b"garbage bytes"
    samples.insert(1, ("README", {"txt": b"notes"}))
    write_tar(tar, samples)
    done = copy / "done" / f"{tar.stem}.json"  # as if the builder had written these bytes
    rec = json.loads(done.read_text())
    rec.update(sha256=sha256_file(tar), bytes=tar.stat().st_size, mtime_ns=tar.stat().st_mtime_ns)
    done.write_text(json.dumps(rec))
    text = describe(str(tar), limit=4)
    assert f"{bad_key}.tokens.npy is not a readable .npy array" in text and "README.txt" in text
    assert "pickle" not in text and text.count("layout uniaudio") == 2
    with pytest.raises(ValueError, match=f"{bad_key}.tokens.npy"):
        describe(f"{tar}:{bad_key}")
    after = verify(copy)
    assert after["samples"] == before["samples"] and after["shards"] == before["shards"]
    assert any(f"{bad_key}.tokens.npy" in p for p in after["problems"])
    assert any("README.txt belong to no bundle" in p for p in after["problems"])
    assert not any("pickle" in p for p in after["problems"])


@pytest.mark.slow
def test_kill_driver_mid_run_then_resume_is_exactly_once(token_out, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    import yaml

    out = tmp_path / "sent"
    cfg = tmp_path / "s.yaml"
    cfg.write_text(yaml.safe_dump({"shard_rows": 2048, "ray": {"num_cpus": 2}}))  # a shard per token tar
    cmd = [str(Path(sys.executable).parent / "uniaudio"), "pipeline", "sentences", str(cfg), "--shards", str(token_out),
           "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while len(list((out / "shards").glob("*.tar"))) < 2:
        assert proc.poll() is None, "finished before the crash point"
        assert time.time() - t0 < 240
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = {json.loads(p.read_text())["tar"] for p in (out / "done").glob("*.json")}
    finished = {p.name: p.stat().st_mtime_ns for p in (out / "shards").glob("*.tar") if p.name in done}
    assert finished and not (out / "report.json").exists()
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    for name, mtime in finished.items():
        assert (out / "shards" / name).stat().st_mtime_ns == mtime, f"{name} was rewritten"
    report = json.loads((out / "report.json").read_text())
    assert report["shards"]["skipped_done"] >= len(finished) and report["shards"]["planned"] >= 6
    assert report["shards"]["written_this_run"] >= 1  # the kill came before the end
    planned = pq.read_table(out / "plan" / "specs.parquet", columns=["seq"]).column("seq").to_pylist()
    bundled = pq.read_table(out / "sequences.parquet", columns=["seq"]).column("seq").to_pylist()
    dropped = [r["seq"] for r in pq.read_table(out / "rejects.parquet").to_pylist() if r["seq"]]
    assert len(bundled) == len(set(bundled)), "a sequence is in two bundles"
    assert sorted(bundled + dropped) == sorted(planned), "a planned sequence is missing"
    assert verify(out)["problems"] == []


def test_packer_never_cuts_never_overflows_and_fills():
    from uniaudio.pipeline.packing import Packer, padding_fill_sums

    rng = np.random.default_rng(0)
    lengths = [int(x) for x in rng.integers(20, 700, 400)]
    fillers = [int(x) for x in rng.integers(5, 40, 300)]
    p = Packer(1024, buffer=64, max_open=8)
    bins = []
    for i, n in enumerate(lengths):
        bins += p.add(n, ("seq", i))
    for i, n in enumerate(fillers):
        bins += p.add(n, ("fill", i), filler=True)
    rest, unused = p.finish()
    bins += rest
    placed = [payload for b in bins for _, payload in b.items]
    assert all(b.used <= 1024 and b.used == sum(n for n, _ in b.items) for b in bins)
    assert sorted(x for x in placed if x[0] == "seq") == [("seq", i) for i in range(len(lengths))]  # all, once
    assert sorted([x for x in placed if x[0] == "fill"] + unused) == sorted(("fill", i) for i in range(300))
    fill = sum(b.used for b in bins) / (len(bins) * 1024)
    assert fill > 0.98, fill
    with pytest.raises(ValueError, match="does not fit"):
        p.add(1025, "too long")
    assert padding_fill_sums([10, 20, 30], batch=2) == (60, 2 * 20 + 30)


def test_rows_layouts_round_trip_through_the_vocabulary():
    from uniaudio.tokenize.vocab import Vocabulary

    v = Vocabulary()
    v.add("text", 500)
    v.add("audio", 1024, codebooks=3)
    codes = np.arange(3 * 7).reshape(3, 7) % 1024
    prompt = codes[:, 2:5]
    rows = v.sequence_rows("tts", [("text", "text", [5, 6, 7]), ("prompt", "audio", prompt), ("audio", "audio", codes)], 2)
    assert len(rows) == 3 + 2 * 3 + 3 + 3 + 7 and rows.ids.shape == (len(rows), 3)
    assert rows.segment_rows == [(2, 7), (7, 12), (12, 21)]
    assert rows.loss[-1] == 1 and rows.loss[12] == 0 and rows.loss[13:21].all() and not rows.loss[:12].any()
    task, segs = v.parse_rows(rows.ids)
    assert task == "tts" and [s[0] for s in segs] == ["text", "prompt", "audio"]
    assert np.array_equal(segs[1][2], prompt) and np.array_equal(segs[2][2], codes)
    flat, mask = v.sequence("tts", [("text", "text", [5, 6, 7]), ("prompt", "audio", prompt), ("audio", "audio", codes)], 2)
    flat_task, flat_segs = v.parse(flat)  # the 1-D layout of `sequence` holds the same segments
    assert flat_task == task and all(a[:2] == b[:2] and np.array_equal(a[2], b[2]) for a, b in zip(flat_segs, segs))
    ms, streams, loss = v.multistream(rows.ids, rows.loss)
    assert ms.shape == (len(rows), 4) and np.array_equal(v.from_multistream(ms), rows.ids)
    assert (streams.sum(1) == np.where(v.is_audio_row(rows.ids), 3, 1)).all()
    assert np.array_equal(loss.any(1), rows.loss.astype(bool))
