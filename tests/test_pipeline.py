import io
import json

import numpy as np
import pytest
import soundfile as sf

from pipeline_helpers import config, rejects, shard_ids, tar_state
from uniaudio import manifest
from uniaudio.config import ConfigError, from_dict
from uniaudio.pipeline.config import PipelineConfig
from uniaudio.pipeline.plan import stable_shard
from uniaudio.pipeline.run import run
from uniaudio.pipeline.shards import sample_key
from uniaudio.pipeline.verify import verify


def demo_inputs(root):
    return [{"recipe": "librispeech", "root": str(root / "LibriSpeech")},
            {"recipe": "audiocaps", "root": str(root / "audiocaps")},
            {"recipe": "musiccaps", "root": str(root / "musiccaps")}]


def test_demo_to_audio_shards_exactly_once(tmp_path, demo_root, ray_local):
    out = tmp_path / "out"
    report = run(config(out, demo_inputs(demo_root)), progress=False)
    ids = shard_ids(out)
    expected = [r.id for p in sorted((out / "manifests").glob("*.parquet")) for r in manifest.iter_records(p)]
    assert sorted(ids) == sorted(expected) and len(set(ids)) == len(ids) == 52
    assert report["samples"] == 52 and report["rejected"] == 0
    assert set(report["by_domain"]) == {"speech", "sound", "music"}
    assert report["by_corpus"]["musiccaps"]["hours_out"] == pytest.approx(8 * 10 / 3600, abs=1e-3)
    assert verify(out)["problems"] == []

    # a sample decodes to the 16 kHz mono audio of its source file
    import webdataset as wds

    sample = next(iter(wds.WebDataset(str(next((out / "shards").glob("musiccaps-*.tar"))), shardshuffle=False)))
    meta = json.loads(sample["json"])
    wav, sr = sf.read(io.BytesIO(sample["flac"]), dtype="float32")
    assert sr == 16000 and wav.ndim == 1 and len(wav) == meta["frames"] == 160000
    assert meta["tokenizer"]["name"] == "none" and meta["caption"]

    # resume: nothing is rewritten, finished shards keep checksum and mtime
    before = tar_state(out)
    again = run(config(out, demo_inputs(demo_root)), progress=False)
    assert again["shards"]["written_this_run"] == 0 and tar_state(out) == before


@pytest.mark.parametrize("actors", [None, 1], ids=["fused-task", "actor-pool"])
def test_tokenized_shards(tmp_path, demo_root, ray_local, actors):
    out = tmp_path / "tok"
    cfg = config(out, demo_inputs(demo_root)[:1], tokenizer="mulaw", ray={"tokenizer_actors": actors})
    report = run(cfg, progress=False)
    assert report["samples"] == 32 and report["tokens"] > 0
    import webdataset as wds

    for s in wds.WebDataset(sorted(str(p) for p in (out / "shards").glob("*.tar")), shardshuffle=False):
        codes = np.load(io.BytesIO(s["codes.npy"]))
        meta = json.loads(s["json"])
        assert codes.dtype == np.int16 and codes.shape == (1, meta["frames"]) and 0 <= codes.min() <= codes.max() < 256
        assert s["txt"].decode() == meta["text"]
    assert verify(out)["problems"] == []


def test_damaged_shard_is_redone_and_verify_catches_it(tmp_path, demo_root, ray_local):
    out = tmp_path / "dmg"
    cfg = config(out, demo_inputs(demo_root)[2:])
    run(cfg, progress=False)
    tar = sorted((out / "shards").glob("*.tar"))[0]
    data = bytearray(tar.read_bytes())
    data[700] ^= 0xFF
    tar.write_bytes(bytes(data))
    assert any("sha256 mismatch" in p for p in verify(out)["problems"])
    report = run(cfg, progress=False)
    assert report["shards"]["written_this_run"] == 1
    assert verify(out)["problems"] == [] and len(shard_ids(out)) == 8


def test_resume_trusts_unchanged_size_and_mtime_unless_rehash(tmp_path, demo_root, ray_local):
    """Resume does not re-read finished shards whose size and mtime match their record; a
    damage that kept both (a silent disk error) is found by verify and by --rehash."""
    import os

    out = tmp_path / "fast"
    cfg = config(out, demo_inputs(demo_root)[2:])
    run(cfg, progress=False)
    tar = sorted((out / "shards").glob("*.tar"))[0]
    st = tar.stat()
    data = bytearray(tar.read_bytes())
    data[700] ^= 0xFF
    tar.write_bytes(bytes(data))
    os.utime(tar, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert run(cfg, progress=False)["shards"]["written_this_run"] == 0  # trusted: not re-hashed
    assert any("sha256 mismatch" in p for p in verify(out)["problems"])
    assert run(cfg, progress=False, rehash=True)["shards"]["written_this_run"] == 1
    assert verify(out)["problems"] == []


def test_resume_with_other_config_is_refused(tmp_path, demo_root, ray_local):
    out = tmp_path / "cfg"
    run(config(out, demo_inputs(demo_root)[2:]), progress=False)
    with pytest.raises(RuntimeError, match="different configuration"):
        run(config(out, demo_inputs(demo_root)[2:], sample_rate=24000), progress=False)


def test_bad_input_is_quarantined(tmp_path, ray_local):
    from bad_corpus import EXPECTED, GOOD, make_bad_corpus

    root = make_bad_corpus(tmp_path / "corpus")
    out = tmp_path / "out"
    inputs = [{"recipe": "folder", "root": str(root / "files"), "name": "files"},
              {"recipe": "folder", "root": str(root), "options": {"manifest": "listed.jsonl"}, "name": "listed"},
              {"recipe": "librispeech", "root": str(root / "LibriSpeech"), "name": "ls"}]
    report = run(config(out, inputs, filters={"max_duration": 20.0}), progress=False)
    got = rejects(out)
    for uid, reason in EXPECTED.items():
        assert got.get(uid, "").startswith(reason), (uid, got.get(uid))
    assert len(EXPECTED) >= 12
    assert sorted(shard_ids(out)) == sorted(GOOD)
    assert report["rejected"] == len(got) == len(EXPECTED)
    assert verify(out)["problems"] == []


def test_plan_is_deterministic_and_keys_are_safe():
    assert stable_shard("2300-790-0000", 7) == stable_shard("2300-790-0000", 7)
    counts = np.bincount([stable_shard(f"utt{i}", 10) for i in range(5000)], minlength=10)
    assert counts.min() > 400  # roughly uniform
    assert sample_key("a.b/c d") != sample_key("a_b_c_d") and "." not in sample_key("a.b")
    assert sample_key("LJ001-0001") == "LJ001-0001"


@pytest.mark.parametrize("data,field", [
    ({"inputs": [], "output": "o"}, "inputs"),
    ({"inputs": [{"recipe": "nope", "root": "r"}], "output": "o"}, "inputs[].recipe"),
    ({"inputs": [{"recipe": "folder", "root": "r"}], "output": "o", "filters": {"min_duratoin": 1}}, "filters.min_duratoin"),
    ({"inputs": [{"recipe": "folder", "root": "r"}], "output": "o", "shard": {"max_samples": "many"}}, "shard.max_samples"),
    ({"inputs": [{"recipe": "folder", "root": "r"}], "output": "o", "tokenizer": "wavtokenizer"}, "tokenizer"),
    ({"inputs": [{"recipe": "folder", "root": "r"}]}, "output"),
])
def test_config_errors_name_the_field(data, field):
    with pytest.raises(ConfigError) as ei:
        from_dict(PipelineConfig, data)
    assert ei.value.field == field and f"'{field}'" in str(ei.value)
