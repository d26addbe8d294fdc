"""File helpers shared across the package: content checksums and atomic writes."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from . import storage


_UNSAFE = {True: re.compile(r"[^A-Za-z0-9_.-]"), False: re.compile(r"[^A-Za-z0-9_-]")}


def safe_name(uid: str, *, dots: bool = True) -> str:
    """The one mapping from an untrusted id (test sets, manifests) to a file name or a
    webdataset key. An id of letters, digits, `_`, `-` (and `.` when `dots`, not leading)
    maps to itself; any other is sanitised and gets a short hash of the original, so it can
    never name a path outside its folder (`/`, `..`, a leading `.`) and distinct ids stay
    distinct. `dots=False` is for webdataset keys, which split at the first dot."""
    name = _UNSAFE[dots].sub("_", uid)
    if name.startswith("."):
        name = "_" + name[1:]
    if name != uid or not name:
        name = f"{name}_{hashlib.blake2b(uid.encode(), digest_size=4).hexdigest()}"
    return name


def sha256_file(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes (`storage.sha256`: cached per path, size and mtime, so a file
    that changes in place is hashed again rather than reusing a stale digest)."""
    return storage.sha256(str(path))


def sha256_tree(path: str | os.PathLike) -> str:
    """Checksum of a file, or of every file under a folder (weights directories)."""
    p = Path(path)
    if not p.is_dir():
        return sha256_file(p)
    h = hashlib.sha256()
    for f in sorted(x for x in p.rglob("*") if x.is_file()):
        h.update(str(f.relative_to(p)).encode())
        h.update(sha256_file(f).encode())
    return h.hexdigest()


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write to a temporary sibling and rename: readers see the old file or the whole new one."""
    return atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """`storage.write_bytes` for a local path (a temporary sibling, then a rename)."""
    storage.write_bytes(str(path), data)
    return Path(path)


def iter_parquet(path: str | os.PathLike, batch_size: int = 65_536, columns: list[str] | None = None,
                 row_groups: list[int] | None = None):
    """Record batches of a Parquet file in bounded memory. pre_buffer is off: with it, pyarrow's
    reader keeps the row groups it has read (measured: +26 MB per million rows of a streamed
    index), so memory would grow with the file."""
    import pyarrow.parquet as pq

    with storage.arrow_file(str(path)) as f:
        pf = pq.ParquetFile(f, pre_buffer=False)
        yield from pf.iter_batches(batch_size=batch_size, columns=columns, row_groups=row_groups)


def sql_literal(value: str | os.PathLike) -> str:
    """A path or string as a SQL string literal (DuckDB queries over Parquet files)."""
    return "'" + str(value).replace("'", "''") + "'"
