"""Curation of in-the-wild audio (issue 42): voice-activity segmentation of long recordings, checked
against where the demo placed its utterances and pauses; silence is a reject with its reason."""

import json

import pyarrow.parquet as pq
import pytest

from pipeline_helpers import config, rejects, tar_state
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
    the segments under it (stage quality, the value in the detail) and keeps the rest. The floor is
    set between the scores the scorer gives the same segments here."""
    from uniaudio import audio
    from uniaudio.dnsmos import DNSMOSScorer
    from uniaudio.pipeline.segment import speech_regions

    long = demo_root / "long"
    spec, scorer, direct = SegmentSpec(), DNSMOSScorer(), {}
    for f in sorted(long.glob("long-0*.wav")):
        wav, _ = audio.load(f, 16000)
        for a, b in plan_segments(speech_regions(wav, spec), len(wav) / 16000, spec)[0]:
            direct[f"{f.stem}_{int(round(a * 1000)):08d}"] = wav[int(round(a * 16000)):int(round(b * 16000))]
    scores = dict(zip(direct, (r["dnsmos_ovrl"] for r in scorer.score(list(direct.values())))))
    v = sorted(scores.values())  # the floor in the widest gap of the middle half: no score sits near it
    j = max(range(len(v) // 4, 3 * len(v) // 4), key=lambda i: v[i + 1] - v[i])
    floor = (v[j] + v[j + 1]) / 2
    assert v[j + 1] - v[j] > 0.04
    out = tmp_path / "out"
    report = run(config(out, [{"recipe": "folder", "root": str(long), "name": "long"}], segment={},
                        measure=["dnsmos"], filters={"min_dnsmos": floor}, shard={"max_samples": 16}), progress=False)
    low = {k for k, v in scores.items() if v < floor}
    why = rejects(out)
    assert low and {k for k, r in why.items() if r == "low_quality"} == low
    assert report["rejects_by_reason"]["low_quality"] == len(low)
    kept = {r["id"]: json.loads(r["measures"]) for r in pq.read_table(out / "index.parquet").to_pylist()}
    assert set(kept) == set(scores) - low
    for k, m in kept.items():  # the shard's batch scored what the scorer scores alone (16-bit source)
        assert m["dnsmos_ovrl"] == pytest.approx(scores[k], abs=0.02) and m["dnsmos_ovrl"] >= floor
    with pytest.raises(ConfigError, match="filters.min_dnsmos.*add `dnsmos` to `measure`"):
        config(out, [{"recipe": "folder", "root": str(long)}], filters={"min_dnsmos": 3.0})


@pytest.mark.slow
def test_segments_get_transcripts_and_a_speaking_rate_filter(tmp_path, demo_root, ray_local):
    """`measure: [asr, prosody]` on segments without a transcript: Whisper tiny.en's text (close to
    what the demo said in them), the model named per row, words/s from it; `filters.speech_rate`
    rejects exactly the segments whose measured rate lies outside the bounds."""
    import jiwer

    long = demo_root / "long"
    truth = json.loads((long / "spans.json").read_text())
    said = {}
    for trans in (demo_root / "LibriSpeech").rglob("*.trans.txt"):
        for line in trans.read_text().splitlines():
            uid, text = line.split(" ", 1)
            said[uid] = text.lower()
    inp = [{"recipe": "folder", "root": str(long), "name": "long"}]
    out = tmp_path / "all"
    run(config(out, inp, segment={}, measure=["asr", "prosody"], shard={"max_samples": 16}), progress=False)
    rows = pq.read_table(out / "index.parquet").to_pylist()
    index = {r["id"]: json.loads(r["measures"]) for r in rows}
    refs, hyps = [], []
    for r in rows:  # the reference: what the demo said in the utterances whose middle lies in the segment
        m = index[r["id"]]
        assert m["asr_model"].startswith("whisper tiny.en") and m["words_per_s"] > 0
        rec, start = r["id"].rsplit("_", 1)
        a, b = int(start) / 1000, int(start) / 1000 + r["seconds"]
        refs.append(" ".join(said[u["id"]] for u in truth[rec]["utterances"] if a <= (u["start"] + u["end"]) / 2 <= b))
        hyps.append(m["asr_text"].lower().replace(",", "").replace(".", ""))
    assert jiwer.wer(refs, hyps) < 0.3  # tiny.en reads the demo's espeak speech at ~8% WER per utterance
    rates = sorted(m["words_per_s"] for m in index.values())
    hi = (rates[len(rates) // 2] + rates[len(rates) // 2 + 1]) / 2
    out2 = tmp_path / "bounded"
    report = run(config(out2, inp, segment={}, measure=["asr", "prosody"], filters={"speech_rate": [0.5, hi]},
                        shard={"max_samples": 16}), progress=False)
    fast = {u for u, m in index.items() if m["words_per_s"] > hi}
    assert fast and {u for u, r in rejects(out2).items() if r == "speech_rate"} == fast
    assert report["rejects_by_reason"]["speech_rate"] == len(fast)


def test_exact_duplicates_are_listed_and_left_out_of_sentences(tmp_path, demo_root, ray_local):
    """`dedup: true`: two manifest rows of the same audio under other ids: duplicates.parquet lists
    each later copy (first by id kept) with the id it repeats; the sentence metadata leaves them out."""
    from uniaudio import manifest
    from uniaudio.pipeline.plan import plan_files
    from uniaudio.pipeline.recipes import records
    from uniaudio.pipeline.sentences.config import SentenceConfig
    from uniaudio.pipeline.sentences.plan import metadata

    src = sorted(records("librispeech", demo_root / "LibriSpeech"), key=lambda r: r.id)[:6]
    copies = [manifest.Record(**{**r.__dict__, "id": f"zz-copy-{k}"}) for k, r in enumerate(src[:2])]
    path = tmp_path / "m.parquet"
    manifest.write_manifest(path, src + copies)
    out = tmp_path / "out"
    report = run(config(out, [{"manifest": str(path), "name": "m"}], dedup=True), progress=False)
    dups = {r["id"]: r["duplicate_of"] for r in pq.read_table(out / "duplicates.parquet").to_pylist()}
    assert dups == {"zz-copy-0": src[0].id, "zz-copy-1": src[1].id} and report["duplicates"] == 2
    work = tmp_path / "work"
    work.mkdir()
    meta = metadata(str(out / "index.parquet"), plan_files(out), work, SentenceConfig(tokens=str(out), output="x"),
                    str(out / "duplicates.parquet"))
    assert sorted(r["id"] for r in pq.read_table(meta).to_pylist()) == sorted(r.id for r in src)
