"""The one place that opens paths: local files, object storage and members of containers.

A *path* here is one string, of three kinds:
- a local path (`/data/x.flac`, `rel/x.flac`, `file:///data/x.flac`);
- a URI of a filesystem pyarrow opens (`s3://bucket/key`, `gs://...`, `hdfs://...`): the
  endpoint and credentials come from the usual environment variables (`AWS_ENDPOINT_URL`,
  `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, ...), as pyarrow and the AWS
  tools read them;
- a *member* of a container, either of the two above: `SHARD.tar::tar:OFFSET:SIZE:NAME` (the
  bytes of tar member NAME, read with one ranged read) or `FILE.parquet::parquet:RG:ROW:COLUMN`
  (the audio bytes in row ROW of row group RG: a `{bytes, path}` struct or a binary column).

Object storage has no atomic rename and a listing may show what is still being written, so the
writers here put an object whole (`write_bytes`: locally a temporary name and a rename) and the
pipeline's readers go by its index, never by a listing. Errors are `StorageError`s whose message
names the object and the reason (missing, access denied, unreachable endpoint)."""

from __future__ import annotations

import fnmatch
import functools
import glob as _glob
import os
from dataclasses import dataclass
from pathlib import Path

MEMBER = "::"  # container :: kind : ...


class StorageError(OSError):
    """An object that cannot be read or written; the message names it and why. `kind`:
    "missing" (this object: an item's problem), "denied" or "unreachable" (the store or the
    credentials: every object's problem, so readers stop instead of rejecting item after item),
    or "other"."""

    def __init__(self, message: str, kind: str = "other"):
        super().__init__(message)
        self.kind = kind

    def __reduce__(self):  # keep the kind across processes (Ray)
        return (StorageError, (str(self), self.kind))


def is_uri(path: str | os.PathLike) -> bool:
    """A remote URI (s3://, gs://, ...): not a local path, not file://."""
    s = str(path)
    scheme, sep, _ = s.partition("://")
    return bool(sep) and scheme.isalnum() and scheme.lower() != "file"


def is_member(path: str | os.PathLike) -> bool:
    return _member_at(str(path)) >= 0


def is_local(path: str | os.PathLike) -> bool:
    """A plain local file or folder (not remote, not a member)."""
    return not is_uri(path) and not is_member(path)


def local(path: str | os.PathLike) -> str:
    """A local path without a file:// prefix."""
    s = str(path)
    return s[len("file://"):] if s.startswith("file://") else s


def join(base: str | os.PathLike, *parts: str) -> str:
    """base/part/...: '/'-joined for URIs, os.path.join locally."""
    if is_uri(base):
        return "/".join([str(base).rstrip("/"), *(p.strip("/") for p in parts)])
    return os.path.join(local(base), *parts)


@functools.lru_cache(maxsize=16)
def _filesystem(scheme_and_authority: str):
    import pyarrow.fs as pafs

    try:
        fs, _ = pafs.FileSystem.from_uri(scheme_and_authority + "/")
    except Exception as e:  # pyarrow raises ArrowInvalid / OSError for unknown schemes and bad options
        low = str(e).lower()
        kind = "unreachable" if "network" in low or "resolve" in low or "connect" in low else \
            "denied" if "access" in low or "forbidden" in low else "other"
        raise StorageError(f"{scheme_and_authority}: cannot open this filesystem ({e})", kind) from None
    return fs


def filesystem(path: str):
    """(pyarrow FileSystem, path inside it) of a local path or URI."""
    if not is_uri(path):
        import pyarrow.fs as pafs

        return pafs.LocalFileSystem(), os.path.abspath(local(path))
    scheme, _, rest = path.partition("://")
    bucket = rest.split("/", 1)[0]
    return _filesystem(f"{scheme}://{bucket}"), rest


def _raise(path: str, e: Exception) -> None:
    msg = str(e)
    low = msg.lower()
    if isinstance(e, FileNotFoundError) or "not found" in low or "nosuchkey" in low or "does not exist" in low:
        kind, why = "missing", "missing"
    elif "access_denied" in low or "access denied" in low or "forbidden" in low or isinstance(e, PermissionError):
        kind, why = "denied", "access denied (check the credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
    elif "curl" in low or "connect" in low or "resolve" in low or "timed out" in low:
        kind, why = "unreachable", "endpoint unreachable (check AWS_ENDPOINT_URL and the network)"
    else:
        kind, why = "other", msg.splitlines()[0][:300] if msg else type(e).__name__
    raise StorageError(f"{path}: {why}", kind) from None


def open_input(path: str):
    """A seekable binary file (local or remote: reads become ranged requests)."""
    if not is_uri(path):
        try:
            return open(local(path), "rb")
        except OSError as e:
            _raise(path, e)
    fs, p = filesystem(path)
    try:
        return fs.open_input_file(p)
    except Exception as e:
        _raise(path, e)


def open_stream(path: str):
    """A sequential binary stream (read once, front to back: no seeks, large reads)."""
    if not is_uri(path):
        return open_input(path)
    fs, p = filesystem(path)
    try:
        return fs.open_input_stream(p)
    except Exception as e:
        _raise(path, e)


def read_bytes(path: str) -> bytes:
    """The whole object, or a container member's bytes."""
    if is_member(path):
        return read_member(path)
    with open_stream(path) as f:
        try:
            return f.read()
        except Exception as e:
            _raise(path, e)


def read_range(path: str, offset: int, size: int) -> bytes:
    """`size` bytes at `offset` (remotely: the open's HEAD request and one ranged GET)."""
    with open_input(path) as f:
        try:
            f.seek(offset)
            data = f.read(size)
        except Exception as e:
            _raise(path, e)
    if len(data) != size:
        raise StorageError(f"{path}: {size} bytes at {offset} wanted, {len(data)} there (truncated)")
    return data


def write_bytes(path: str, data: bytes) -> str:
    """Write an object whole: locally through a temporary sibling and a rename; remotely as one
    upload, which the store makes visible only once complete."""
    if not is_uri(path):
        from .files import atomic_write_bytes

        atomic_write_bytes(Path(local(path)), data)
        return path
    fs, p = filesystem(path)
    try:
        with fs.open_output_stream(p) as f:
            f.write(data)
    except Exception as e:
        _raise(path, e)
    return path


def delete(path: str) -> None:
    """Remove a file or object (gone already: nothing to do)."""
    fs, p = filesystem(path)
    try:
        fs.delete_file(p)
    except FileNotFoundError:
        pass
    except Exception as e:
        _raise(path, e)


def info(path: str) -> tuple[bool, int | None]:
    """(exists, size in bytes: None for a folder)."""
    import pyarrow.fs as pafs

    fs, p = filesystem(path)
    try:
        i = fs.get_file_info(p)
    except Exception as e:
        _raise(path, e)
    if i.type == pafs.FileType.NotFound:
        return False, None
    return True, (i.size if i.type == pafs.FileType.File else None)


def exists(path: str) -> bool:
    return info(path)[0]


def glob(pattern: str) -> list[str]:
    """The files a pattern names, sorted (`*`, `?`, `[..]` in the last components; a path with
    no wildcard names itself). Remote: one listing of the prefix before the first wildcard."""
    if not any(c in pattern for c in "*?["):
        return [pattern]
    if not is_uri(pattern):
        return sorted(_glob.glob(local(pattern)))
    import pyarrow.fs as pafs

    scheme, _, rest = pattern.partition("://")
    static = rest[: min(rest.index(c) for c in "*?[" if c in rest)].rsplit("/", 1)[0]
    fs, _ = filesystem(f"{scheme}://{static}")
    try:
        found = fs.get_file_info(pafs.FileSelector(static, recursive=True, allow_not_found=True))
    except Exception as e:
        _raise(f"{scheme}://{static}", e)
    depth = rest.count("/")  # as a local glob: a wildcard does not cross a "/"
    return sorted(f"{scheme}://{i.path}" for i in found if i.type == pafs.FileType.File
                  and i.path.count("/") == depth and fnmatch.fnmatchcase(i.path, rest))


# --- members of containers --------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    container: str
    kind: str  # "tar" | "parquet"
    fields: tuple  # tar: (offset, size, name); parquet: (row_group, row, column)

    @property
    def name(self) -> str:
        return self.fields[2]


def _member_at(s: str) -> int:
    return max(s.rfind(MEMBER + "tar:"), s.rfind(MEMBER + "parquet:"))


def tar_member(container: str, name: str, offset: int, size: int) -> str:
    return f"{container}{MEMBER}tar:{offset}:{size}:{name}"


def parquet_member(container: str, row_group: int, row: int, column: str) -> str:
    return f"{container}{MEMBER}parquet:{row_group}:{row}:{column}"


def parse_member(path: str) -> Member | None:
    at = _member_at(path)
    if at < 0:
        return None
    container, spec = path[:at], path[at + len(MEMBER):]
    kind, a, b, name = spec.split(":", 3)
    try:
        return Member(container, kind, (int(a), int(b), name))
    except ValueError:
        raise StorageError(f"{path}: not a member reference ({kind}:{a}:{b}:...)") from None


def read_member(path: str) -> bytes:
    m = parse_member(path)
    if m is None:
        raise StorageError(f"{path}: not a member reference")
    if m.kind == "tar":
        offset, size, _ = m.fields
        return read_range(m.container, offset, size)
    row_group, row, column = m.fields
    table = _row_group(m.container, row_group, column)
    if row >= table.num_rows:
        raise StorageError(f"{path}: row group {row_group} has {table.num_rows} rows")
    value = table.column(0)[row].as_py()
    if isinstance(value, dict):
        value = value.get("bytes")
    if not value:
        raise StorageError(f"{path}: no audio bytes in column {column!r} (null or empty)")
    return value


@functools.lru_cache(maxsize=2)
def _row_group(container: str, row_group: int, column: str):
    """One Parquet row group's audio column: the rows of a decode task come in file order, so
    each row group is read once for all its rows."""
    import pyarrow.parquet as pq

    try:
        with open_input(container) as f:
            return pq.ParquetFile(f).read_row_group(row_group, columns=[column])
    except StorageError:
        raise
    except Exception as e:
        _raise(container, e)
