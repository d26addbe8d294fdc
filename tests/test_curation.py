"""Curation of in-the-wild audio (issue 42): voice-activity segmentation of long recordings, checked
against where the demo placed its utterances and pauses; silence is a reject with its reason."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline_helpers import config, plan_rows, rejects, tar_state
from uniaudio.config import ConfigError, from_dict
from uniaudio.pipeline.run import run
from uniaudio.pipeline.segment import SegmentSpec, plan_segments


def expected_groups(utterances: list[dict], spec: SegmentSpec) -> list[list[str]]:
    """The utterances one segment should hold: runs joined by pauses up to join_gap, within max;
    a run shorter than min_seconds makes no segment."""
    groups: list[list[dict]] = []
    for u in utterances:
        if groups and u["start"] - groups[-1][-1]["end"] <= spec.join_gap and \
                u["end"] - groups[-1][0]["start"] <= spec.max_seconds:
            groups[-1].append(u)
        else:
            groups.append([u])
    return [[u["id"] for u in g] for g in groups if g[-1]["end"] - g[0]["start"] >= spec.min_seconds]


def test_segment_rule_joins_short_pauses_and_drops_short_speech():
    spec = SegmentSpec(min_seconds=2.0, max_seconds=10.0, join_gap=1.0, pad=0.1)
    regions = [(1.0, 3.0), (3.5, 6.0), (8.0, 9.0), (11.0, 12.0), (12.2, 19.5), (25.0, 25.5)]
    segs, dropped = plan_segments(regions, 26.0, spec)
    # 1-3 + 3.5-6 joined (0.5 s pause); 8-9 alone is under 2 s; 11-12 + 12.2-19.5 would exceed 10 s? no: 8.5 s
    assert segs == [(0.9, 6.1), (10.9, 19.6)] and dropped == 2
    with pytest.raises(ConfigError, match="segment.min_seconds"):
        from_dict(SegmentSpec, {"min_seconds": 30, "max_seconds": 10})


@pytest.mark.slow
def test_long_recordings_are_cut_at_their_pauses_and_silence_is_rejected(tmp_path, demo_root, ray_local):
    long = demo_root / "long"
    truth = json.loads((long / "spans.json").read_text())
    spec = SegmentSpec()
    out = tmp_path / "out"
    report = run(config(out, [{"recipe": "folder", "root": str(long), "name": "long"}], segment={},
                        shard={"max_samples": 16}), progress=False)
    summary = json.loads((out / "manifests" / "long.segmented.json").read_text())
    rows = [r for p in sorted((out / "plan" / "long.parts").glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
    segs = {}
    for r in rows:
        e = json.loads(r["extra"])
        if "segment_of" in e:
            segs.setdefault(e["segment_of"], []).append((r, e["span"]))
    for name, t in truth.items():
        if not t["utterances"]:
            continue
        got = sorted(segs[name], key=lambda x: x[1][0])
        for r, (a, b) in got:  # each segment: min..max seconds, inside its recording, its speaker = the recording
            assert spec.min_seconds <= b - a <= spec.max_seconds and 0 <= a < b <= t["seconds"]
            assert r["speaker"] == name and r["offset"] == pytest.approx(a) and r["duration"] == pytest.approx(b - a)

        def holds(span, u):  # most of the utterance lies inside the segment
            return min(span[1], u["end"]) - max(span[0], u["start"]) > 0.5 * (u["end"] - u["start"])
        held = [[u["id"] for u in t["utterances"] if holds(span, u)] for _, span in got]
        assert held == expected_groups(t["utterances"], spec), name  # cut at the long pauses, joined over short
    why = rejects(out)
    assert why == {"long-silence": "no_speech"} and report["rejects_by_reason"] == {"no_speech": 1}
    assert summary["rejected"] == {"no_speech": 1} and summary["segments"] == sum(len(v) for v in segs.values())
    before = tar_state(out)  # resume: the segmented manifest is read back, nothing is rewritten
    assert run(config(out, [{"recipe": "folder", "root": str(long), "name": "long"}], segment={},
                      shard={"max_samples": 16}), progress=False)["shards"]["written_this_run"] == 0
    assert tar_state(out) == before


@pytest.mark.slow
def test_quality_measure_and_filter_on_segments(tmp_path, demo_root, ray_local):
    """`measure: [dnsmos]` puts each segment's DNSMOS in index.parquet; `filters.min_dnsmos` rejects
    the segments under it (stage quality, the value in the detail) and keeps the rest; the shard's
    batch scores a segment as the scorer scores it alone (checked on the lowest kept and the
    highest rejected segment: the two nearest the floor)."""
    import re

    from uniaudio import audio
    from uniaudio.dnsmos import DNSMOSScorer

    long, floor, out = demo_root / "long", 2.0, tmp_path / "out"  # the shipped config's floor
    report = run(config(out, [{"recipe": "folder", "root": str(long), "name": "long"}], segment={},
                        measure=["dnsmos"], filters={"min_dnsmos": floor}, shard={"max_samples": 16}), progress=False)
    low = {r["id"]: float(re.search(r"OVRL ([0-9.]+) <", r["detail"]).group(1))
           for r in pq.read_table(out / "rejects.parquet").to_pylist() if r["reason"] == "low_quality"}
    kept = {r["id"]: json.loads(r["measures"])["dnsmos_ovrl"] for r in pq.read_table(out / "index.parquet").to_pylist()}
    assert low and kept and max(low.values()) < floor <= min(kept.values())
    assert report["rejects_by_reason"]["low_quality"] == len(low)
    segments = plan_rows(out)  # where each segment lies in its recording
    for seg_id, value in ((min(kept, key=kept.get), min(kept.values())), (max(low, key=low.get), max(low.values()))):
        seg = segments[seg_id]
        wav, _ = audio.load(seg["path"], 16000, offset=seg["offset"], duration=seg["duration"])
        (alone,) = DNSMOSScorer().score([wav])
        assert alone["dnsmos_ovrl"] == pytest.approx(value, abs=0.02), seg_id  # (16-bit source, rounding)
    with pytest.raises(ConfigError, match="filters.min_dnsmos.*add `dnsmos` to `measure`"):
        config(out, [{"recipe": "folder", "root": str(long)}], filters={"min_dnsmos": 3.0})


@pytest.mark.slow
def test_segments_get_transcripts_a_speaking_rate_filter_and_a_funnel(tmp_path, demo_root, ray_local):
    """`measure: [asr, prosody]` on segments without a transcript: Whisper tiny.en's text (close to
    what the demo said in them), the model named per row, words/s from it; `filters.speech_rate`
    rejects exactly the segments whose measured rate lies outside the bounds; report.json's funnel
    follows recordings -> segments -> items through every stage."""
    import re

    import jiwer

    long = demo_root / "long"
    truth = json.loads((long / "spans.json").read_text())
    said = {}
    for trans in (demo_root / "LibriSpeech").rglob("*.trans.txt"):
        for line in trans.read_text().splitlines():
            uid, text = line.split(" ", 1)
            said[uid] = text.lower()
    out, hi = tmp_path / "out", 3.55  # the demo's segments read at ~2.8-4.0 words/s: some on each side
    report = run(config(out, [{"recipe": "folder", "root": str(long), "name": "long"}], segment={},
                        measure=["asr", "prosody"], filters={"speech_rate": [0.5, hi]}, shard={"max_samples": 16}),
                 progress=False)
    rows = pq.read_table(out / "index.parquet").to_pylist()
    index = {r["id"]: json.loads(r["measures"]) for r in rows}
    refs, hyps = [], []
    for r in rows:  # the reference: what the demo said in the utterances whose middle lies in the segment
        m = index[r["id"]]
        assert m["asr_model"] == "tiny.en (faster-whisper)" and m["asr_language"] == "en" and 0.5 <= m["words_per_s"] <= hi
        rec, start = r["id"].rsplit("_", 1)
        a, b = int(start) / 1000, int(start) / 1000 + r["seconds"]
        refs.append(" ".join(said[u["id"]] for u in truth[rec]["utterances"] if a <= (u["start"] + u["end"]) / 2 <= b))
        hyps.append(m["asr_text"].lower().replace(",", "").replace(".", ""))
    assert jiwer.wer(refs, hyps) < 0.3  # tiny.en reads the demo's espeak speech at ~8% WER per utterance
    fast = {r["id"]: float(re.match(r"([\d.]+) words/s", r["detail"])[1])
            for r in pq.read_table(out / "rejects.parquet").to_pylist() if r["reason"] == "speech_rate"}
    assert fast and index and all(v > hi for v in fast.values())
    funnel = {f["stage"]: f for f in report["funnel"]}
    assert list(funnel) == ["segment", "plan", "decode", "filter", "transcribe", "speech_rate", "tokenize"]
    seg = funnel["segment"]
    assert seg["items_in"] == len(truth) and seg["reasons"] == {"no_speech": 1}
    assert seg["items_out"] == funnel["plan"]["items_in"] == len(rows) + len(fast) + 0
    assert seg["hours_in"] == pytest.approx(sum(t["seconds"] for t in truth.values()) / 3600, abs=1e-4)
    assert funnel["speech_rate"]["rejected"] == len(fast) and funnel["speech_rate"]["reasons"] == {"speech_rate": len(fast)}
    assert funnel["tokenize"]["items_out"] == report["samples"] == len(rows)
    assert funnel["tokenize"]["hours_out"] == pytest.approx(report["hours_out"], abs=1e-4)


def test_transcript_check_measure_rejects_with_reasons(monkeypatch):
    """The measure step on one item: a transcript the ASR disagrees with is a `transcript_mismatch`
    (WER above max_wer, what was heard in the detail); a row in another language than the offline
    English ASR is `unsupported_language`; an ASR that raises is `asr_failed`, never a crash."""
    import numpy as np

    from uniaudio.pipeline import stages

    class Heard:
        def __init__(self, text):
            self.text = text

        def transcribe(self, wavs, language=None):
            if self.text is None:
                raise RuntimeError("decoder blew up")
            self.language = language
            return [self.text for _ in wavs]

        def detect_language(self, wav):
            return "zh", 0.93

    def item(text, language=None):
        return {"row": {"text": text, "language": language}, "wav": np.zeros(16000, np.float32)}

    task = {"measure": ["transcript_check"], "filters": {"max_wer": 0.3}}
    monkeypatch.setattr(stages, "_asr", lambda device=None, spec=None: Heard("the cat sat on the mat"))
    ok = item("The cat sat on the mat.")
    assert stages._measure(ok, task, 16000) is None and ok["measures"]["asr_wer"] == 0.0
    reason, detail, stage = stages._measure(item("A dog ran in the park today."), task, 16000)
    assert (reason, stage) == ("transcript_mismatch", "transcript_check") and "the cat sat" in detail
    assert stages._measure(item("Guten Tag.", "de"), task, 16000)[0] == "unsupported_language"
    monkeypatch.setattr(stages, "_asr", lambda device=None, spec=None: Heard(None))
    assert stages._measure(item(None), {"measure": ["asr"], "filters": {}}, 16000)[:2] == \
        ("asr_failed", "RuntimeError: decoder blew up")
    with pytest.raises(ConfigError, match="filters.max_wer.*transcript_check"):
        config(Path("x"), [{"recipe": "folder", "root": "x"}], filters={"max_wer": 0.3})
    with pytest.raises(ConfigError, match="asr.language.*English-only"):
        config(Path("x"), [{"recipe": "folder", "root": "x"}], asr={"language": "zh"})
    # a multilingual model set to zh: zh rows are transcribed, English ones are the ones left out
    zh = {"measure": ["asr"], "filters": {}, "asr": {"backend": "faster-whisper", "model": "large-v3",
                                                      "language": "zh", "options": {}}}
    monkeypatch.setattr(stages, "_asr", lambda device=None, spec=None: Heard(f"{spec['language']}:{spec['model']}"))
    done = item(None, "zh-CN")
    assert stages._measure(done, zh, 16000) is None
    assert done["measures"]["asr_text"] == "zh:large-v3" and done["measures"]["asr_model"] == "large-v3 (faster-whisper)"
    assert stages._measure(item(None, "en"), zh, 16000)[0] == "unsupported_language"
    # `asr.language: auto`: a row without a language is identified, then transcribed in it; a row
    # that names its language is transcribed in that one
    heard = Heard("你好")
    monkeypatch.setattr(stages, "_asr", lambda device=None, spec=None: heard)
    auto = dict(zh, asr=dict(zh["asr"], language="auto"))
    unknown, french = item(None, None), item(None, "fr")
    assert stages._measure(unknown, auto, 16000) is None and heard.language == "zh"
    assert unknown["measures"]["language_detected"] == "zh" and unknown["measures"]["language_prob"] == 0.93
    assert stages._measure(french, auto, 16000) is None and heard.language == "fr"
    assert "language_detected" not in french["measures"] and french["measures"]["asr_language"] == "fr"
    with pytest.raises(ConfigError, match="asr.language.*auto"):
        config(Path("x"), [{"recipe": "folder", "root": "x"}], asr={"language": "auto", "backend": "transformers",
                                                                     "model": "openai/whisper-large-v3"})


@pytest.mark.slow
def test_duplicates_and_transcript_check_leave_sentences_the_first_clean_copy(tmp_path, demo_root, ray_local):
    """`dedup: true` + `measure: [transcript_check]`: rows of the same audio under other ids are
    exact duplicates, a trimmed copy of one utterance (same speaker and text, duration within 5 %)
    a near duplicate; a row whose transcript is another utterance's is rejected by the check.
    duplicates.parquet lists each later copy (first by id kept) with the id it repeats; the
    sentence metadata leaves them out; the funnel counts both stages."""
    from uniaudio import manifest
    from uniaudio.pipeline.plan import plan_files
    from uniaudio.pipeline.recipes import records
    from uniaudio.pipeline.sentences.config import SentenceConfig
    from uniaudio.pipeline.sentences.plan import metadata

    src = sorted(records("librispeech", demo_root / "LibriSpeech"), key=lambda r: r.id)[:7]
    keep, wrong, other = src[:5], src[5], src[6]
    copies = [manifest.Record(**{**r.__dict__, "id": f"zz-copy-{k}"}) for k, r in enumerate(keep[:2])]
    near = manifest.Record(**{**keep[2].__dict__, "id": "zz-near", "offset": 0.04, "duration": keep[2].duration - 0.04})
    mislabelled = manifest.Record(**{**wrong.__dict__, "text": other.text})
    path = tmp_path / "m.parquet"
    manifest.write_manifest(path, keep + copies + [near, mislabelled])
    out = tmp_path / "out"
    report = run(config(out, [{"manifest": str(path), "name": "m"}], dedup=True, measure=["transcript_check"],
                        filters={"max_wer": 0.5}), progress=False)
    dups = {r["id"]: (r["duplicate_of"], r["reason"]) for r in pq.read_table(out / "duplicates.parquet").to_pylist()}
    assert dups == {"zz-copy-0": (keep[0].id, "exact_duplicate"), "zz-copy-1": (keep[1].id, "exact_duplicate"),
                    "zz-near": (keep[2].id, "near_duplicate")}
    assert report["duplicates"] == 3 and rejects(out) == {wrong.id: "transcript_mismatch"}
    measures = {r["id"]: json.loads(r["measures"]) for r in pq.read_table(out / "index.parquet").to_pylist()}
    assert all(m["asr_wer"] <= 0.5 and m["asr_wer_normalizer"] == "whisper-english" for m in measures.values())
    funnel = {f["stage"]: f for f in report["funnel"]}
    assert funnel["transcript_check"]["reasons"] == {"transcript_mismatch": 1}
    assert funnel["dedup"]["items_in"] == 8 and funnel["dedup"]["items_out"] == 5
    assert funnel["dedup"]["reasons"] == {"exact_duplicate": 2, "near_duplicate": 1}
    work = tmp_path / "work"
    work.mkdir()
    meta = metadata(str(out / "index.parquet"), plan_files(out), work, SentenceConfig(tokens=str(out), output="x"),
                    str(out / "duplicates.parquet"))
    assert sorted(r["id"] for r in pq.read_table(meta).to_pylist()) == sorted(r.id for r in keep)


def test_measure_actor_pool_writes_what_the_shard_task_writes(tmp_path, demo_root, ray_local):
    """`ray.measure_actors` runs the measure step in an actor pool of its own (the GPU layout:
    decode -> measure -> tokenize -> write): the same shards, measures and rejects as the fused
    shard task."""
    from uniaudio import manifest
    from uniaudio.pipeline.recipes import records

    src = sorted(records("librispeech", demo_root / "LibriSpeech"), key=lambda r: r.id)[:4]
    src.append(manifest.Record(**{**src[1].__dict__, "id": "zz-copy"}))
    path = tmp_path / "m.parquet"
    manifest.write_manifest(path, src)
    got = {}
    for name, ray in (("fused", {}), ("staged", {"measure_actors": 1, "tokenizer_actors": 1})):
        out = tmp_path / name
        run(config(out, [{"manifest": str(path), "name": "m"}], tokenizer="mulaw", measure=["prosody"], dedup=True,
                   filters={"speech_rate": [0.5, 3.5]}, ray=ray), progress=False)
        got[name] = ({k: v[1] for k, v in tar_state(out).items()}, pq.read_table(out / "index.parquet").to_pylist(),
                     rejects(out), pq.read_table(out / "duplicates.parquet").to_pylist())
    assert got["staged"] == got["fused"]
    index, why, dups = got["fused"][1:]  # the demo reads at 3.4-4.0 words/s: the bound keeps some, drops some
    assert dups and why and index and all(r == "speech_rate" for r in why.values())
    with pytest.raises(ConfigError, match="ray.num_gpus.*unknown stage 'decode'"):
        config(tmp_path / "x", [{"manifest": str(path)}], ray={"num_gpus": {"decode": 1}})


@pytest.mark.slow
def test_language_id_with_a_real_multilingual_whisper(tiny_multilingual_whisper):
    """`asr.language: auto` on a real multilingual Whisper that faster-whisper loads from a folder
    as it loads large-v3 (a tiny CTranslate2 conversion built here; its identification is planted
    on zh): a row without a language is identified as zh with its probability and transcribed in
    zh; a row that names its language keeps it; the English-only offline model refuses to guess."""
    import numpy as np

    from uniaudio.pipeline import stages
    from uniaudio.transcribers import FasterWhisper

    spec = {"backend": "faster-whisper", "model": str(tiny_multilingual_whisper), "language": "auto", "options": {}}
    task = {"measure": ["asr"], "filters": {}, "asr": spec}
    noise = (np.random.default_rng(0).standard_normal(32000) * 0.1).astype(np.float32)
    unknown, french = ({"row": {"text": None, "language": lang}, "wav": noise} for lang in (None, "fr"))
    assert stages._measure(unknown, task, 16000) is None
    m = unknown["measures"]
    assert m["language_detected"] == "zh" and 0.9 < m["language_prob"] <= 1.0 and m["asr_language"] == "zh"
    assert m["asr_model"] == f"{tiny_multilingual_whisper} (faster-whisper)"
    assert stages._measure(french, task, 16000) is None
    assert "language_detected" not in french["measures"] and french["measures"]["asr_language"] == "fr"
    with pytest.raises(RuntimeError, match="English-only"):
        FasterWhisper().detect_language(noise)


def test_transcript_check_rules_are_checked_when_the_config_loads(monkeypatch):
    """A zh (or auto) transcript check needs Seed-TTS-eval's zh rule (zhon, zhconv: the bench
    extra): a node without them is told when the config loads, not by a crash on its first zh row."""
    import sys

    zh = {"backend": "faster-whisper", "model": "large-v3", "language": "zh", "options": {}}
    config(Path("x"), [{"recipe": "folder", "root": "x"}], measure=["transcript_check"], asr=zh)  # all here
    monkeypatch.setitem(sys.modules, "zhconv", None)  # as on a core-only install
    for language in ("zh", "auto"):
        with pytest.raises(ConfigError, match="measure.*transcript_check.*zhconv"):
            config(Path("x"), [{"recipe": "folder", "root": "x"}], measure=["transcript_check"],
                   asr=dict(zh, language=language))
    config(Path("x"), [{"recipe": "folder", "root": "x"}], measure=["transcript_check"])  # English needs neither
