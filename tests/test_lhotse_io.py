"""Lhotse in and out: cuts made by Lhotse itself go through the pipeline (`lhotse:` input, one item
per supervision, read from its span of the recording) and come back out as manifests Lhotse
loads (`uniaudio pipeline export --lhotse`), with the same ids, spans, texts and audio."""

import gzip
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from pipeline_helpers import config, rejects

from uniaudio import audio
from uniaudio.cli import main
from uniaudio.pipeline.run import run

lhotse = pytest.importorskip("lhotse")  # a dev dependency: reading cuts in needs only the standard library


@pytest.fixture(scope="module")
def lhotse_corpus(tmp_path_factory, demo_root):
    """Recordings of demo speech, two supervisions on the longest, one cut per recording."""
    from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet

    folder = tmp_path_factory.mktemp("lhotse")
    files = sorted(demo_root.glob("LibriSpeech/*/*/*/*.flac"))[:4]
    recs = RecordingSet.from_recordings(Recording.from_file(f) for f in files)
    sups = []
    for r in recs:
        sups.append(SupervisionSegment(id=f"{r.id}-a", recording_id=r.id, start=0.0, duration=round(r.duration / 2, 3),
                                       text=f"first half of {r.id}", speaker="s1", language="English"))
        sups.append(SupervisionSegment(id=f"{r.id}-b", recording_id=r.id, start=round(r.duration / 2, 3),
                                       duration=round(r.duration / 2 - 0.01, 3), text=f"second half of {r.id}"))
    sups.append(SupervisionSegment(id="orphan", recording_id="no-such-recording", start=0, duration=1.0))
    recs.to_file(folder / "recordings.jsonl.gz")
    SupervisionSet.from_segments(sups).to_file(folder / "supervisions.jsonl.gz")
    cuts = CutSet.from_manifests(recordings=recs, supervisions=SupervisionSet.from_segments(sups[:-1]))
    cuts.to_file(folder / "cuts.jsonl.gz")
    return folder, recs, sups


def test_lhotse_cuts_in_and_out(lhotse_corpus, tmp_path, ray_local):
    from lhotse import CutSet, RecordingSet, SupervisionSet

    folder, recs, sups = lhotse_corpus
    out = tmp_path / "out"
    inputs = [{"recipe": "lhotse", "root": f"{folder}/recordings.jsonl.gz,{folder}/supervisions.jsonl.gz",
               "name": "pairs"}]
    report = run(config(out, inputs, filters={"min_duration": 0.3}), progress=False)
    assert rejects(out) == {"orphan": "missing_recording"} and report["samples"] == len(sups) - 1

    res = CliRunner().invoke(main, ["pipeline", "export", str(out), "--lhotse", str(tmp_path / "lh")])
    assert res.exit_code == 0, res.output
    cuts = CutSet.from_file(tmp_path / "lh" / "cuts.jsonl.gz")
    RecordingSet.from_file(tmp_path / "lh" / "recordings.jsonl.gz")
    SupervisionSet.from_file(tmp_path / "lh" / "supervisions.jsonl.gz")
    by_id = {c.id: c for c in cuts}
    assert sorted(by_id) == sorted(s.id for s in sups[:-1])
    for s in sups[:-1]:
        c = by_id[s.id]
        assert c.recording.id == s.recording_id and c.start == pytest.approx(s.start)
        assert c.duration == pytest.approx(s.duration) and c.supervisions[0].text == s.text
        wav, sr = audio.load(c.recording.sources[0].source, offset=s.start, duration=s.duration)
        assert np.allclose(c.load_audio()[0][: len(wav)], wav[: c.num_samples], atol=1e-4)

    # cuts in (the other layout): the same items
    out2 = tmp_path / "out2"
    run(config(out2, [{"recipe": "lhotse", "root": str(folder / "cuts.jsonl.gz"), "name": "cuts"}],
               filters={"min_duration": 0.3}), progress=False)
    want = sorted(json.loads(line)["id"] for line in gzip.open(folder / "supervisions.jsonl.gz", "rt")
                  if "orphan" not in line)
    assert rejects(out2) == {} and sorted(pq.read_table(out2 / "index.parquet").column("id").to_pylist()) == want
