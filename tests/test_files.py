import hashlib
import os

from uniaudio.files import atomic_write_text, sha256_file, sha256_tree


def test_sha256_follows_in_place_changes(tmp_path):
    p = tmp_path / "x.bin"
    p.write_bytes(b"one")
    assert sha256_file(p) == hashlib.sha256(b"one").hexdigest()
    p.write_bytes(b"two!")  # same path, new content: the cache must not answer with the old digest
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 1))
    assert sha256_file(p) == hashlib.sha256(b"two!").hexdigest()


def test_tree_checksum_covers_names_and_contents(tmp_path):
    (tmp_path / "a").write_text("1")
    (tmp_path / "b").write_text("2")
    before = sha256_tree(tmp_path)
    (tmp_path / "b").rename(tmp_path / "c")
    assert sha256_tree(tmp_path) != before


def test_atomic_write_leaves_no_temp(tmp_path):
    atomic_write_text(tmp_path / "r.json", "{}")
    assert (tmp_path / "r.json").read_text() == "{}" and [p.name for p in tmp_path.iterdir()] == ["r.json"]
