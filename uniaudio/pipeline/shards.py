"""WebDataset shard files: `{prefix}-{index:06d}.tar`, one sample per utterance.

Members per sample key: `codes.npy` (int16 [n_codebooks, frames]) or `flac` (audio mode),
`json` (the manifest row + tokenizer), `txt` when there is text. Tars are written
deterministically (sorted members, fixed mtime/owner) to a temporary name and renamed, so
a shard is on disk whole or not at all, and rewriting it gives the same bytes."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import Iterator

from .. import storage
from ..files import safe_name
from ..files import sha256_file as file_sha256


def sample_key(uid: str) -> str:
    """A webdataset-safe key (webdataset splits keys at the first dot): `files.safe_name`
    without dots."""
    return safe_name(uid, dots=False)


def write_tar(path: str | Path, samples: list[tuple[str, dict[str, bytes]]]) -> tuple[str, int]:
    """Write samples [(key, {ext: bytes})] whole (`storage.output_path`: a local path or an
    object); returns (sha256, size)."""
    with storage.output_path(str(path)) as tmp:
        with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
            for key, members in samples:
                for ext in sorted(members):
                    data = members[ext]
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size, info.mtime, info.mode = len(data), 0, 0o644
                    tar.addfile(info, io.BytesIO(data))
        sha = file_sha256(tmp)
        size = os.path.getsize(tmp)
    return sha, size


def unchanged(path: str, record: dict, sha256: str | None = None, rehash: bool = False) -> bool:
    """The one "unchanged" rule for a tar that a done record describes (local or remote): one
    whose size and time equal the record's is trusted without reading it (resuming a 165k-hour
    run must not read every finished byte again); any other, or every one with `rehash`, is
    hashed against `sha256` (the record's own by default)."""
    want = sha256 or record.get("sha256")
    st = storage.stat(str(path))
    if st is None or want is None:
        return False
    if record.get("sha256") == want:
        if st[0] != record.get("bytes"):
            return False
        if not rehash and record.get("mtime_ns") == st[1]:
            return True
    return storage.sha256(str(path)) == want


def read_tar(path: str | Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Samples of a shard (local or remote, read front to back) in order, grouped by key as
    webdataset groups them."""
    current, members = None, {}
    with storage.open_stream(str(path)) as f, tarfile.open(fileobj=f, mode="r|") as tar:
        for info in tar:
            if not info.isfile():
                continue
            key, _, ext = info.name.partition(".")
            if key != current and current is not None:
                yield current, members
                members = {}
            current = key
            members[ext] = tar.extractfile(info).read()
    if current is not None:
        yield current, members


def read_npy(members: dict[str, bytes], ext: str, key: str):
    """A sample's .npy member as an array, or ValueError naming the member."""
    if ext not in members:
        raise ValueError(f"{key}: no {key}.{ext} member")
    return load_npy(members[ext], f"{key}.{ext}")


def load_npy(data: bytes, name: str):
    """.npy bytes as an array, or ValueError naming `name`. Never unpickles (and never passes on
    numpy's advice to): shard members are data from elsewhere."""
    import numpy as np

    try:
        return np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"{name} is not a readable .npy array ({str(e).splitlines()[0][:120]})") from None


class TarMembers:
    """Random access to the members of the tars in one folder (token shards, sentence bundles):
    a tar's member offsets are read once, in one pass over its headers, then each member is one
    seek and read. A tar that cannot be indexed, or that `check(path)` rejects (by raising) when
    it is first opened, keeps its exception and raises it on every later read; a missing member
    is a ValueError. Used by the sentence builder (token codes) and the trainer (bundles)."""

    def __init__(self, folder: str | Path):
        self.folder = str(folder)
        self.members: dict[str, dict[str, tuple[int, int]] | Exception] = {}

    def index(self, tar: str, check=None) -> dict[str, tuple[int, int]]:
        """Member name -> (data offset, size) of one tar."""
        if tar not in self.members:
            path = storage.join(self.folder, tar)
            try:
                if check is not None:
                    check(path)
                with storage.open_input(str(path)) as f, tarfile.open(fileobj=f) as t:
                    self.members[tar] = {m.name: (m.offset_data, m.size) for m in t if m.isfile()}
            except (OSError, tarfile.TarError) as e:
                self.members[tar] = ValueError(f"unreadable shard {tar}: {e}")
            except Exception as e:  # what `check` raised: kept, so every read of the tar says why
                self.members[tar] = e
        got = self.members[tar]
        if isinstance(got, Exception):
            raise got
        return got

    def read(self, tar: str, name: str, check=None) -> bytes:
        index = self.index(tar, check)
        if name not in index:
            raise ValueError(f"{tar} has no member {name}")
        off, size = index[name]
        return storage.read_range(storage.join(self.folder, tar), off, size)
