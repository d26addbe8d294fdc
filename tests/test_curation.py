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
