"""The local working copy of an s3:// output (uniaudio/mirror.py) against the test S3 server: pull is
the store's state, push uploads what changed oldest write first and deletes what was removed, and
an object key that would land outside the copy is refused."""

import os
import time

import pytest

from uniaudio import storage
from uniaudio.mirror import Mirror


def test_pull_push_and_what_a_push_uploads_first(s3, tmp_path):
    prefix = s3.bucket("mirror") + "/run"
    storage.write_text(f"{prefix}/log.jsonl", "step 1\n")
    storage.write_text(f"{prefix}/ckpt/model.pt", "weights 1")
    m = Mirror(prefix, tmp_path / "copy").pull()
    assert (m.local / "ckpt" / "model.pt").read_text() == "weights 1" and m.push() == 0  # nothing changed

    (m.local / "ckpt" / "model.pt").write_text("weights 2")
    time.sleep(0.01)
    (m.local / "last.pt").write_text("state 2")  # written after model.pt: uploaded after it
    os.unlink(m.local / "log.jsonl")
    uploaded = []
    real = storage.upload
    try:
        storage.upload = lambda src, dst: (uploaded.append(dst.rsplit("/run/", 1)[1]), real(src, dst))
        assert m.push() == 2
    finally:
        storage.upload = real
    assert uploaded == ["ckpt/model.pt", "last.pt"]
    assert storage.listing(prefix) == {"ckpt/model.pt": 9, "last.pt": 7}  # log.jsonl deleted in the store

    # a fresh machine: an empty copy pulled from the store; a stale local file is replaced
    other = Mirror(prefix, tmp_path / "fresh")
    (other.local).mkdir()
    (other.local / "stale.txt").write_text("not in the store")
    other.pull()
    assert sorted(p.name for p in other.local.rglob("*") if p.is_file()) == ["last.pt", "model.pt"]


def test_a_key_outside_the_copy_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(storage, "listing", lambda prefix: {"ok.txt": 2, "../escape.txt": 3})
    with pytest.raises(storage.StorageError, match="outside the local copy"):
        Mirror("s3://bucket/run", tmp_path / "copy").pull()
    assert not (tmp_path / "escape.txt").exists()
