"""Corpora as they ship: WebDataset tar shards and Parquet with the audio inside, from a local disk
and from a real S3 server (SeaweedFS), through the pipeline; `uniaudio.storage` on S3."""

import io
import json

import numpy as np
import pytest
import soundfile as sf
from pipeline_helpers import config, rejects
from shipped_corpora import make_parquet, make_wds

from uniaudio import audio, storage
from uniaudio.pipeline.run import run
from uniaudio.pipeline.verify import verify


def shard_audio(out) -> dict[str, np.ndarray]:
    """id -> decoded FLAC of every sample in the output's shards (read with webdataset)."""
    import webdataset as wds

    urls = sorted(str(p) for p in (out / "shards").glob("*.tar"))
    return {json.loads(s["json"])["id"]: sf.read(io.BytesIO(s["flac"]), dtype="float32")[0]
            for s in wds.WebDataset(urls, shardshuffle=False, empty_check=False)}


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("shipped")
    return root, make_wds(root / "wds"), make_parquet(root / "hf")


def inputs(wds_root: str, pq_root: str, fields: dict) -> list[dict]:
    return [{"recipe": "wds", "root": wds_root, "name": "wds"},
            {"recipe": "parquet", "root": pq_root, "name": "hf", "options": {"fields": fields}}]


def test_tar_shards_and_parquet_through_the_pipeline(corpora, tmp_path, ray_local):
    root, wds_c, pq_c = corpora
    out = tmp_path / "out"
    report = run(config(out, inputs(str(root / "wds" / "*.tar"), str(root / "hf" / "*.parquet"), pq_c["fields"])),
                 progress=False)
    got = shard_audio(out)
    assert sorted(got) == sorted([*wds_c["good"], *pq_c["good"]])
    for uid, wav in {**wds_c["good"], **pq_c["good"]}.items():  # 16 kHz sources: the same samples
        lossy = uid.startswith(("EN_B", "opus"))  # mp3, opus: their decoder's delay and loss
        if not lossy:
            assert np.abs(got[uid] - wav[: len(got[uid])]).max() < 2e-4 and abs(len(got[uid]) - len(wav)) == 0, uid
        else:
            assert abs(len(got[uid]) - len(wav)) < 0.1 * len(wav), uid
    bad = rejects(out)
    for uid, reason in {**wds_c["rejects"], **pq_c["rejects"]}.items():
        assert bad.get(uid, "").startswith(reason), (uid, bad.get(uid))
    assert report["rejected"] == len(bad) == len(wds_c["rejects"]) + len(pq_c["rejects"])
    assert verify(out)["problems"] == []
    meta = {json.loads(s)["id"]: json.loads(s) for s in _jsons(out)}
    assert meta["EN_B00001"]["text"] == "utterance number 1" and meta["EN_B00001"]["speaker"] == "spk1"
    assert meta["hf-3"]["text"] == "hugging face row 3" and meta["hf-3"]["speaker"] == "c1"

    # Lhotse out: members cannot be a Lhotse source, so they come out as a Shar set (audio inside)
    from lhotse import CutSet

    from uniaudio.pipeline.lhotse_export import export

    res = export(str(out), str(tmp_path / "lh"))
    assert res["cuts"] == 0 and res["shar_cuts"] == len(got)
    cuts = {c.id: c for c in CutSet.from_shar(in_dir=tmp_path / "lh" / "shar")}
    assert sorted(cuts) == sorted(got)
    assert cuts["EN_B00001"].supervisions[0].text == "utterance number 1"
    for uid in ("laion-clip4", "hf-3"):  # lossless sources: the audio the pipeline wrote
        wav = cuts[uid].load_audio()[0]
        assert len(wav) == len(got[uid]) and np.abs(wav - got[uid]).max() < 2e-4, uid


def _jsons(out):
    import webdataset as wds

    urls = sorted(str(p) for p in (out / "shards").glob("*.tar"))
    return [s["json"] for s in wds.WebDataset(urls, shardshuffle=False, empty_check=False)]


def test_storage_reads_and_writes_objects_and_says_why_it_cannot(s3):
    bucket = s3.bucket("storage-test")
    storage.write_bytes(f"{bucket}/a/one.bin", b"0123456789")
    storage.write_bytes(f"{bucket}/a/two.bin", b"abc")
    storage.write_bytes(f"{bucket}/b/three.txt", b"x")
    storage.write_bytes(f"{bucket}/a/deeper/four.bin", b"x")
    assert storage.glob(f"{bucket}/a/*.bin") == [f"{bucket}/a/one.bin", f"{bucket}/a/two.bin"]
    assert storage.glob(f"{bucket}/*/*.txt") == [f"{bucket}/b/three.txt"]
    assert storage.read_bytes(f"{bucket}/a/one.bin") == b"0123456789"
    assert storage.read_range(f"{bucket}/a/one.bin", 3, 4) == b"3456"
    assert storage.info(f"{bucket}/a/one.bin") == (True, 10) and not storage.exists(f"{bucket}/nope")
    with pytest.raises(storage.StorageError, match=r"storage-test/nope\.bin: missing"):
        storage.read_bytes(f"{bucket}/nope.bin")
    with pytest.raises(storage.StorageError, match="truncated"):
        storage.read_range(f"{bucket}/a/two.bin", 1, 10)
    with pytest.raises(audio.AudioError, match="missing"):
        audio.load(f"{bucket}/missing.flac")


def test_wrong_credentials_and_an_unreachable_endpoint_are_one_line_errors(s3, monkeypatch):
    import subprocess
    import sys

    bucket = s3.bucket("creds-test")
    storage.write_bytes(f"{bucket}/x.bin", b"x")
    code = ("from uniaudio import storage\ntry:\n    storage.read_bytes('s3://creds-test/x.bin')\n"
            "except storage.StorageError as e:\n    print(e)")
    env = dict(__import__("os").environ, AWS_SECRET_ACCESS_KEY="wrong")
    said = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120).stdout
    assert said.strip().startswith("s3://creds-test/x.bin: access denied"), said
    env = dict(env, AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_SECRET_ACCESS_KEY=s3_secret())
    said = subprocess.run([sys.executable, "-c", code.replace("x.bin", "y.bin")], env=env, capture_output=True,
                          text=True, timeout=300).stdout
    assert "endpoint unreachable" in said, said


def s3_secret():
    import s3_server

    return s3_server.SECRET


def test_tar_shards_and_parquet_from_s3_give_the_same_shards(corpora, s3, tmp_path, ray_local):
    root, wds_c, pq_c = corpora
    bucket = s3.bucket("corpora")
    for f in sorted((root / "wds").glob("*.tar")) + sorted((root / "hf").glob("*.parquet")):
        storage.write_bytes(f"{bucket}/{f.parent.name}/{f.name}", f.read_bytes())
    local, remote = tmp_path / "local", tmp_path / "remote"
    run(config(local, inputs(str(root / "wds" / "*.tar"), str(root / "hf" / "*.parquet"), pq_c["fields"])),
        progress=False)
    report = run(config(remote, inputs(f"{bucket}/wds/*.tar", f"{bucket}/hf/*.parquet", pq_c["fields"])),
                 progress=False)
    a, b = shard_audio(local), shard_audio(remote)
    assert sorted(a) == sorted(b) == sorted([*wds_c["good"], *pq_c["good"]])
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert set(rejects(remote)) == set(rejects(local)) and report["rejected"] == len(rejects(local))


def test_shards_on_s3_read_with_webdataset_and_ray_data(corpora, s3, tmp_path, ray_local):
    """A finished output copied to object storage reads back with webdataset (through
    `pipe:uniaudio data cat`) and with ray.data.read_webdataset (through storage's filesystem)."""
    import sys
    from pathlib import Path

    import pyarrow.parquet as pq
    import ray
    import webdataset as wds

    root, _, pq_c = corpora
    out = tmp_path / "out"
    run(config(out, inputs(str(root / "wds" / "*.tar"), str(root / "hf" / "*.parquet"), pq_c["fields"])),
        progress=False)
    bucket = s3.bucket("shards")
    for f in sorted((out / "shards").glob("*.tar")):
        storage.write_bytes(f"{bucket}/out/shards/{f.name}", f.read_bytes())
    want = sorted(pq.read_table(out / "index.parquet").column("id").to_pylist())
    cat = Path(sys.executable).parent / "uniaudio"
    urls = [f"pipe:{cat} data cat {u}" for u in storage.glob(f"{bucket}/out/shards/*.tar")]
    got = sorted(json.loads(s["json"])["id"] for s in wds.WebDataset(urls, shardshuffle=False, empty_check=False))
    assert got == want
    fs, prefix = storage.filesystem(f"{bucket}/out/shards")
    ds = ray.data.read_webdataset(prefix, filesystem=fs)
    rows = ds.take_all()  # ray decodes the .json member itself
    assert sorted((r["json"] if isinstance(r["json"], dict) else json.loads(r["json"]))["id"] for r in rows) == want


def test_a_containers_items_share_a_shard_and_are_read_in_runs(tmp_path, ray_local):
    """Position placement: each output shard holds consecutive members of one tar (two shards a
    tar here), an id repeated in another tar is rejected once (the first copy kept), and a
    decode task reads its members in one request."""
    import pyarrow.parquet as pq
    from shipped_corpora import encode, speechlike, write_tar

    from uniaudio.pipeline.member_spans import MemberSpans, read_order
    from uniaudio.pipeline.plan import plan_input

    audio_of = {}
    for t in range(3):
        members = []
        for k in range(8):
            uid = "dup" if k == 7 and t in (0, 2) else f"t{t}-{k}"
            data = encode(speechlike(10 * t + k, 0.6), "flac")
            audio_of.setdefault(uid, data)
            members += [(f"{uid}.flac", data), (f"{uid}.txt", f"item {uid}".encode())]
        write_tar(tmp_path / "wds" / f"s-{t:06d}.tar", members)
    out = tmp_path / "out"
    cfg = config(out, [{"recipe": "wds", "root": str(tmp_path / "wds" / "*.tar"), "name": "wds"}],
                 shard={"max_samples": 4})
    plan = plan_input(cfg.inputs[0], cfg, str(out))
    assert plan.placement == "position" and plan.n_shards == 6
    for s in range(plan.n_shards):
        part, rg = plan.location(s)
        rows = pq.ParquetFile(part).read_row_group(rg).to_pylist()
        tars = {storage.parse_member(r["path"]).container.rsplit("/", 1)[-1] for r in rows}
        assert tars == {f"s-{s // 2:06d}.tar"}, (s, tars)  # 4 consecutive members of one tar
        rows.sort(key=lambda r: read_order(r["path"], r["offset"]))  # as a decode task reads them
        spans = MemberSpans([r["path"] for r in rows])
        for r in rows:
            assert spans.read(r["path"]) == storage.read_member(r["path"]) == audio_of[r["id"]]
        assert spans.requests == 1
    dups = [r for r in pq.read_table(plan.rejects_path).to_pylist() if r["reason"] == "duplicate_id"]
    assert len(dups) == 1 and dups[0]["id"] == "dup" and "s-000002.tar" in dups[0]["path"]
    report = run(cfg, progress=False)
    assert report["samples"] == 23 and verify(out)["problems"] == []
