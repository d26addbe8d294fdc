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

import contextlib
import fnmatch
import functools
import glob as _glob
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

MEMBER = "::"  # container :: kind : ...
STREAM_BUFFER = 8 << 20  # bytes per request of a remote sequential read


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
    return arrow_file(path)


def arrow_file(path: str):
    """A pyarrow random-access file (local or remote) for pyarrow readers (Parquet, Arrow IPC):
    native reads, no Python file object in between."""
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
        # buffered: readers such as tarfile ask for 512 bytes at a time, and an unbuffered
        # remote stream makes each of those a request (a tar listing took 0.7 s, not 0.03 s)
        return fs.open_input_stream(p, buffer_size=STREAM_BUFFER)
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
        with output_path(path) as tmp, open(tmp, "wb") as f:
            f.write(data)
        return path
    fs, p = filesystem(path)
    try:
        with fs.open_output_stream(p) as f:
            f.write(data)
    except Exception as e:
        _raise(path, e)
    return path


@contextlib.contextmanager
def output_path(path: str):
    """A local file to write `path` through, made visible whole when the block ends without an
    error: locally a temporary sibling renamed over `path`; remotely a local temporary file
    uploaded to `path` (one upload, which the store shows only once complete). An error or a
    kill inside the block leaves `path` as it was. Writers that need a file name (tar, Parquet,
    Arrow writers) use this; small objects use `write_bytes`."""
    if not is_uri(path):
        p = Path(local(path))
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
        try:
            yield str(tmp)
            os.replace(tmp, p)
        finally:
            tmp.unlink(missing_ok=True)
        return
    tmp = _temp_file("upload", path)
    try:
        yield tmp
        upload(tmp, path)
    finally:
        os.unlink(tmp)


def _temp_file(kind: str, path: str) -> str:
    """A new empty local temporary file named after the object it stands for."""
    fd, tmp = tempfile.mkstemp(prefix=f"uniaudio-{kind}-", suffix="-" + path.rsplit("/", 1)[-1][-40:])
    os.close(fd)
    return tmp


def upload(src: str, path: str) -> None:
    """Copy a local file to `path` (any store), streaming, as one visible-when-complete write.
    The file is complete before the upload starts (pyarrow's streams cannot abort an upload, so
    nothing that can fail halfway runs inside it but the network write itself; the readers'
    checks, a done record's size and sha256, catch what would slip through)."""
    fs, p = filesystem(path)
    try:
        with open(src, "rb") as f, fs.open_output_stream(p) as out:
            shutil.copyfileobj(f, out, 8 << 20)
    except Exception as e:
        _raise(path, e)


def download(path: str, dest: str) -> None:
    """Copy `path` (any store) to the local file `dest` (through a temporary sibling)."""
    with output_path(dest) as tmp, open_stream(path) as f, open(tmp, "wb") as out:
        try:
            shutil.copyfileobj(f, out, 8 << 20)
        except Exception as e:
            _raise(path, e)


@contextlib.contextmanager
def local_file(path: str):
    """A local file holding `path`'s bytes, for tools that open only local files (DuckDB's
    Parquet reader here): the file itself, or a temporary download removed afterwards."""
    if not is_uri(path):
        yield local(path)
        return
    tmp = _temp_file("download", path)
    try:
        download(path, tmp)
        yield tmp
    finally:
        os.unlink(tmp)


def read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8")


def write_text(path: str, text: str) -> str:
    return write_bytes(path, text.encode("utf-8"))


def absolute(path: str | os.PathLike) -> str:
    """A path every worker resolves the same way: local ones made absolute, URIs as given."""
    s = str(path)
    return s.rstrip("/") if is_uri(s) else str(Path(local(s)).resolve())


def makedirs(path: str) -> None:
    """A local folder and its parents; nothing for object storage (it has no folders)."""
    if not is_uri(path):
        Path(local(path)).mkdir(parents=True, exist_ok=True)


def stat(path: str) -> tuple[int, int] | None:
    """(size, modification time in ns) of a file or object; None when it does not exist. What
    the resume checks compare to tell "unchanged" without reading the bytes again."""
    if not is_uri(path):
        try:
            st = os.stat(local(path))
        except FileNotFoundError:
            return None
        return st.st_size, st.st_mtime_ns
    import pyarrow.fs as pafs

    fs, p = filesystem(path)
    try:
        i = fs.get_file_info(p)
    except Exception as e:
        _raise(path, e)
    if i.type != pafs.FileType.File:
        return None
    return i.size, i.mtime_ns or 0


def sha256(path: str) -> str:
    """sha256 of a file or object's bytes (local files: cached per size and mtime)."""
    if not is_uri(path):
        st = os.stat(local(path))
        return _sha256_cached(local(path), st.st_size, st.st_mtime_ns)
    return _sha256_stream(path)


@functools.lru_cache(maxsize=4096)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    return _sha256_stream(path)


def _sha256_stream(path: str) -> str:
    h = hashlib.sha256()
    with open_stream(path) as f:
        try:
            for chunk in iter(lambda: f.read(8 << 20), b""):
                h.update(chunk)
        except Exception as e:
            _raise(path, e)
    return h.hexdigest()


def delete_tree(path: str) -> None:
    """Remove a folder, or every object under a prefix (absent: nothing to do)."""
    if not is_uri(path):
        shutil.rmtree(local(path), ignore_errors=True)
        return
    fs, p = filesystem(path)
    try:
        fs.delete_dir_contents(p, missing_dir_ok=True)
    except FileNotFoundError:
        pass
    except Exception as e:
        _raise(path, e)


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


def listing(prefix: str) -> dict[str, int]:
    """Every file under a folder or prefix, recursively: path relative to it -> size. (For
    whole-folder copies only: the pipeline's readers go by their index, never by a listing.)"""
    import pyarrow.fs as pafs

    fs, p = filesystem(prefix)
    try:
        found = fs.get_file_info(pafs.FileSelector(p, recursive=True, allow_not_found=True))
    except Exception as e:
        _raise(prefix, e)
    base = p.rstrip("/") + "/"
    return {i.path[len(base):]: i.size for i in found if i.type == pafs.FileType.File and i.path.startswith(base)}


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
        with arrow_file(container) as f:
            return pq.ParquetFile(f).read_row_group(row_group, columns=[column])
    except StorageError:
        raise
    except Exception as e:
        _raise(container, e)
