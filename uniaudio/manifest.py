"""The record schema shared by pipeline, trainer and benchmark.

A manifest is a Parquet file of `Record` rows (one utterance or clip each). It is
written and read in row batches so that a 165k-hour corpus never has to fit in memory.

Paths (the `path` column and every `*_path` key of `extra`) follow one rule, so that a
manifest built in one folder works from any other: the writer makes a relative path
absolute (against the working directory it was given in), then stores it relative to the
manifest's own folder when the file lies under that folder (a suite or corpus folder stays
movable) and absolute otherwise; every reader here resolves relative paths against the
manifest's folder. Manifests written before this rule (schema tag `manifest/1`) stored
paths as typed; their relative paths are read against the working directory, as then.
`problems(record)` lists what is wrong with one row without raising (the pipeline turns
those into rejects); `validate` raises a `ManifestError` naming the field and the row.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from . import storage

# "text": text-only items (MMLU questions, text streams of auditory sentences); path names their source file
DOMAINS = ("speech", "sound", "music", "singing", "text")

SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("corpus", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("domain", pa.string(), nullable=False),
        pa.field("path", pa.string(), nullable=False),
        pa.field("offset", pa.float64(), nullable=False),
        # Unknown until the header is read (null): recipes that cannot read it cheaply leave it.
        pa.field("duration", pa.float64()),
        pa.field("sample_rate", pa.int32()),
        pa.field("channels", pa.int16()),
        pa.field("text", pa.string()),
        pa.field("caption", pa.string()),
        pa.field("speaker", pa.string()),
        pa.field("language", pa.string()),
        # Corpus-specific fields (extra captions, chapter, gender, labels) as a JSON object.
        pa.field("extra", pa.string()),
    ],
    metadata={b"uniaudio.schema": b"manifest/2"},
)
COLUMNS = tuple(SCHEMA.names)
# `extra` key of a row that a step before planning (segmentation, pair simulation) found unusable:
# {"stage", "reason", "detail"}. The row is planned like any other and the decode step turns it
# into a reject without reading audio: one path for every reject, counted in rejects.parquet.
PLANNED_REJECT = "planned_reject"


def planned_reject(extra: dict, stage: str, reason: str, detail: str) -> dict:
    """`extra` with the planned-reject marker (a new dict)."""
    return {**extra, PLANNED_REJECT: {"stage": stage, "reason": reason, "detail": detail}}
LEGACY_TAG = b"manifest/1"  # paths stored as typed (relative to whatever cwd wrote them)


def is_path_key(key: str) -> bool:
    """Keys of `extra` that hold file paths (prompt_path, input_path, enroll_path, ...)."""
    return key.endswith("_path")


def store_path(value: str, base: Path | None) -> str:
    """How the writer stores a path: absolute, or relative to `base` (the manifest's folder,
    resolved; None for a manifest in object storage) when it lies under it; a remote URI
    (s3://...) as given."""
    if storage.is_uri(value):
        return value
    p = Path(os.path.abspath(os.path.expanduser(storage.local(value))))
    if base is None:
        return str(p)
    try:
        return p.relative_to(base).as_posix()
    except ValueError:
        return str(p)


def resolve_path(value: str, base: Path | str) -> str:
    """How readers see a stored path: relative ones are joined to the manifest's folder."""
    if not value or os.path.isabs(value) or storage.is_uri(value):
        return value
    return storage.join(str(base), value)


def _extra_paths(extra: Any, fn) -> Any:
    """Apply `fn` to the `*_path` values of an extra (a JSON string or a dict)."""
    if not extra:
        return extra
    obj = json.loads(extra) if isinstance(extra, str) else extra
    if not isinstance(obj, dict) or not any(is_path_key(k) and isinstance(v, str) for k, v in obj.items()):
        return extra
    obj = {k: fn(v) if is_path_key(k) and isinstance(v, str) else v for k, v in obj.items()}
    return json.dumps(obj, ensure_ascii=False, sort_keys=True) if isinstance(extra, str) else obj


class ManifestError(ValueError):
    """A manifest row or file that breaks the schema; names the row and the field."""

    def __init__(self, message: str, *, row: int | str | None = None, field: str | None = None):
        self.row = row
        self.field = field
        where = []
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__((", ".join(where) + ": " if where else "") + message)


@dataclass
class Record:
    id: str
    corpus: str
    split: str
    domain: str
    path: str
    offset: float = 0.0
    duration: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    text: str | None = None
    caption: str | None = None
    speaker: str | None = None
    language: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_row(self) -> dict[str, Any]:
        row = asdict(self)
        row["extra"] = json.dumps(self.extra, ensure_ascii=False, sort_keys=True) if self.extra else None
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Record":
        kw = {f.name: row.get(f.name) for f in fields(cls)}
        extra = kw.get("extra")
        kw["extra"] = json.loads(extra) if isinstance(extra, str) and extra else (extra or {})
        if kw.get("offset") is None:
            kw["offset"] = 0.0
        return cls(**kw)

    @property
    def end(self) -> float | None:
        return None if self.duration is None else self.offset + self.duration


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def problems(rec: Record | dict[str, Any]) -> list[tuple[str, str]]:
    """Everything wrong with one row, as (field, message) pairs; empty when valid."""
    row = rec.to_row() if isinstance(rec, Record) else rec
    out: list[tuple[str, str]] = []
    for name in ("id", "corpus", "split", "path"):
        v = row.get(name)
        if not isinstance(v, str) or not v.strip():
            out.append((name, f"must be a non-empty string, got {v!r}"))
    if row.get("domain") not in DOMAINS:
        out.append(("domain", f"must be one of {DOMAINS}, got {row.get('domain')!r}"))
    off = row.get("offset", 0.0)
    if not _is_number(off) or not math.isfinite(off) or off < 0:
        out.append(("offset", f"must be a finite number >= 0, got {off!r}"))
    dur = row.get("duration")
    if dur is not None and (not _is_number(dur) or not math.isfinite(dur) or dur <= 0):
        out.append(("duration", f"must be a finite number > 0 or null, got {dur!r}"))
    for name in ("sample_rate", "channels"):
        v = row.get(name)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v <= 0):
            out.append((name, f"must be a positive integer or null, got {v!r}"))
    for name in ("text", "caption", "speaker", "language"):
        v = row.get(name)
        if v is not None and not isinstance(v, str):
            out.append((name, f"must be a string or null, got {type(v).__name__}"))
    extra = row.get("extra")
    if extra is not None:
        try:
            obj = json.loads(extra) if isinstance(extra, str) else extra
            if not isinstance(obj, dict):
                raise ValueError("not an object")
        except ValueError as e:
            out.append(("extra", f"must be a JSON object: {e}"))
    unknown = set(row) - set(COLUMNS)
    if unknown:
        out.append((sorted(unknown)[0], f"unknown field(s) {sorted(unknown)}; the schema has {list(COLUMNS)}"))
    return out


def validate(rec: Record | dict[str, Any], row: int | str | None = None) -> None:
    """Raise `ManifestError` for the first problem of a row."""
    bad = problems(rec)
    if bad:
        name, msg = bad[0]
        rid = rec.id if isinstance(rec, Record) else rec.get("id")
        raise ManifestError(f"{msg} (id={rid!r})", row=row, field=name)


class ManifestWriter:
    """Append records to a Parquet manifest in row groups of `batch_size`.

    Writes through `storage.output_path` (a temporary file, renamed or uploaded on a clean
    close), so a crashed writer never leaves a manifest that looks complete. With `strict`, an
    invalid row raises ManifestError. `path` may be a local path or a URI (s3://...)."""

    def __init__(self, path: str | os.PathLike, *, batch_size: int = 10_000, strict: bool = True):
        self.path = str(path) if storage.is_uri(path) else Path(path)
        self._out = storage.output_path(str(path))
        self._tmp = self._out.__enter__()
        self._base = None if storage.is_uri(path) else self.path.parent.resolve()
        self._writer = pq.ParquetWriter(self._tmp, SCHEMA, compression="zstd")
        self._buf: list[dict[str, Any]] = []
        self.batch_size = batch_size
        self.strict = strict
        self.count = 0

    def write(self, rec: Record | dict[str, Any]) -> None:
        row = rec.to_row() if isinstance(rec, Record) else dict(rec)
        if self.strict:
            validate(row, row=self.count)
        if isinstance(row.get("path"), str) and row["path"].strip():
            row["path"] = store_path(row["path"], self._base)
        if row.get("extra"):
            try:
                row["extra"] = _extra_paths(row["extra"], lambda v: store_path(v, self._base) if v else v)
            except ValueError:
                pass  # not JSON: kept as is for the planner to reject (strict=False writers)
        self._buf.append(row)
        self.count += 1
        if len(self._buf) >= self.batch_size:
            self._flush()

    def _flush(self) -> None:
        if self._buf:
            self._writer.write_table(pa.Table.from_pylist(self._buf, schema=SCHEMA))
            self._buf = []

    def close(self) -> Path | str:
        self._flush()
        self._writer.close()
        self._out.__exit__(None, None, None)
        return self.path

    def abort(self) -> None:
        self._writer.close()
        self._out.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> "ManifestWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_manifest(path: str | os.PathLike, records: Iterable[Record | dict[str, Any]], **kw: Any) -> int:
    """Stream records into a Parquet manifest; returns the row count."""
    with ManifestWriter(path, **kw) as w:
        for r in records:
            w.write(r)
    return w.count


def _check_schema(path: Path, schema: pa.Schema) -> None:
    missing = [n for n in ("id", "corpus", "split", "domain", "path") if n not in schema.names]
    if missing:
        raise ManifestError(f"{path} is not a uniaudio manifest: missing column(s) {missing}", field=missing[0])


def path_base(path: str | os.PathLike, schema: pa.Schema) -> Path | str:
    """The folder a manifest's relative paths are relative to: its own (the working
    directory for legacy `manifest/1` files); a URI's parent prefix for a remote manifest."""
    tag = (schema.metadata or {}).get(b"uniaudio.schema")
    if tag == LEGACY_TAG:
        return Path.cwd()
    return os.path.dirname(str(path)) if storage.is_uri(path) else Path(path).parent.resolve()


def _schema(path: str | os.PathLike) -> pa.Schema:
    """A manifest's schema (local or remote), or FileNotFoundError naming it."""
    if not storage.exists(str(path)):
        raise FileNotFoundError(f"manifest not found: {path}")
    with storage.arrow_file(str(path)) as f:
        return pq.read_schema(f)


def _resolve_column(col: pa.Array, base: Path) -> pa.Array:
    """Vectorised `resolve_path` over a string column (no per-row Python for big manifests)."""
    import pyarrow.compute as pc

    prefix = str(base).rstrip("/") + "/"
    # absolute, a URI (s3://...), null or blank (the row's problem, left for validation to report) stay as they are
    absolute = pc.fill_null(pc.or_(pc.or_(pc.starts_with(col, "/"), pc.match_substring_regex(col, r"^[A-Za-z0-9]+://")),
                                   pc.equal(pc.utf8_trim_whitespace(col), "")), True)
    joined = pc.binary_join_element_wise(pa.scalar(prefix), col, "")
    return pc.if_else(absolute, col, joined)


def _resolve_batch(batch: pa.RecordBatch | pa.Table, base: Path):
    names = batch.schema.names
    if "path" in names:
        i = names.index("path")
        batch = batch.set_column(i, "path", _resolve_column(batch.column(i), base))
    if "extra" in names:
        i = names.index("extra")
        vals = batch.column(i).to_pylist()
        if any(v and "_path" in v for v in vals):  # cheap test before any JSON parsing
            fixed = []
            for v in vals:
                try:
                    fixed.append(_extra_paths(v, lambda x: resolve_path(x, base)) if v and "_path" in v else v)
                except ValueError:
                    fixed.append(v)  # invalid JSON: the row's problem, reported by validation
            batch = batch.set_column(i, "extra", pa.array(fixed, pa.string()))
    return batch


def iter_batches(path: str | os.PathLike, batch_size: int = 10_000, columns: list[str] | None = None,
                 row_groups: list[int] | None = None) -> Iterator[pa.RecordBatch]:
    """Arrow record batches of a manifest (of some of its row groups), paths resolved (see the
    module docstring)."""
    from .files import iter_parquet

    schema = _schema(path)
    _check_schema(path, schema)
    base = path_base(path, schema)
    for batch in iter_parquet(path, batch_size, columns=columns, row_groups=row_groups):
        yield _resolve_batch(batch, base)


def iter_records(path: str | os.PathLike, batch_size: int = 10_000, *, validate_rows: bool = True) -> Iterator[Record]:
    """Records of a manifest, one batch in memory at a time."""
    n = 0
    for batch in iter_batches(path, batch_size):
        for row in batch.to_pylist():
            if validate_rows:
                validate(row, row=n)
            yield Record.from_row(row)
            n += 1


def read_table(path: str | os.PathLike, columns: list[str] | None = None) -> pa.Table:
    """Whole manifest as an Arrow table, paths resolved: for small manifests and id/size-only columns."""
    schema = _schema(path)
    with storage.arrow_file(str(path)) as f:
        table = pq.read_table(f, columns=columns)
    _check_schema(path, table.schema) if columns is None else None
    return _resolve_batch(table, path_base(path, schema))


def read_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """A small manifest (a test set) as dicts, paths resolved."""
    return read_table(path).to_pylist()


def count(path: str | os.PathLike) -> int:
    with storage.arrow_file(str(path)) as f:
        return pq.ParquetFile(f).metadata.num_rows
