"""Parquet files with the audio inside (Hugging Face datasets, People's Speech, ...): ROOT is a
.parquet path or URI (s3://...), a glob of them (`data/train-*.parquet`) or a comma-separated
list; `audio_column` holds a `{bytes, path}` struct (Hugging Face's Audio feature), raw bytes,
or a path string (relative to the Parquet file's folder); `fields` maps record fields (id, text,
caption, speaker, language) to columns, every other scalar column goes to extra.

Files are read one row group at a time; an item's audio is addressed as a Parquet cell
(`storage.parquet_member`: its row group is read once per decode task), never written out.
A row with null or empty audio, or audio that does not decode, is a reject with the reason."""

from __future__ import annotations

import os
from collections.abc import Iterator

from ... import storage
from ...manifest import Record
from ..cluster import MapFn, serial_map
from .common import DEFAULT_FIELDS, REJECT_KEY, mapped_fields, memory_header, sources

ROOT_IS = "files"
PLACEMENT = "position"  # a file's row groups go to the same output shard, read in one pass
WINDOW = 32  # row groups listed at once


def recipe(root: str, split: str | None = None, corpus: str = "parquet", domain: str = "speech",
           audio_column: str = "audio", fields: dict | None = None, map_fn: MapFn = serial_map) -> Iterator[Record]:
    """Row groups are listed in parallel through `map_fn` (Ray tasks in `pipeline run`), WINDOW at
    a time, in file and row-group order."""
    import pyarrow.parquet as pq

    args = (audio_column, {**DEFAULT_FIELDS, **(fields or {})}, dict(corpus=corpus, split=split or "train",
                                                                       domain=domain))
    groups = []
    for path in sources(root):
        with storage.open_input(path) as f:
            meta = pq.ParquetFile(f)
            if audio_column not in meta.schema_arrow.names:
                raise ValueError(f"{path}: no audio column {audio_column!r} (columns: "
                                 f"{', '.join(meta.schema_arrow.names)}); set the input's audio_column option")
            groups += [(path, g) for g in range(meta.num_row_groups)]
    for k in range(0, len(groups), WINDOW):
        for recs in map_fn(row_group_records, [(path, g, *args) for path, g in groups[k:k + WINDOW]]):
            yield from recs


def row_group_records(path: str, g: int, audio_column: str, fields: dict, base: dict) -> list[Record]:
    """One listing task: the items (and rejects) of one row group."""
    import pyarrow.parquet as pq

    stem = os.path.basename(path).removesuffix(".parquet")
    with storage.open_input(path) as f:
        rows = pq.ParquetFile(f).read_row_group(g).to_pylist()
    return [_record(row, path, stem, g, i, audio_column, fields, base) for i, row in enumerate(rows)]


def _record(row: dict, path: str, stem: str, g: int, i: int, audio_column: str, fields: dict, base: dict) -> Record:
    cell = row.pop(audio_column)
    meta = {k: v for k, v in row.items() if v is None or isinstance(v, (str, int, float, bool))}
    rec, extra = mapped_fields(meta, fields)
    extra = {k: v for k, v in extra.items() if v is not None}
    uid = rec.pop("id", None) or f"{stem}-{g}-{i}"
    data = cell.get("bytes") if isinstance(cell, dict) else cell
    ref = cell.get("path") if isinstance(cell, dict) else None
    if isinstance(data, str):  # a path column
        data, ref = None, data
    if data:
        head, bad = memory_header(data, f"{path}:{audio_column}[{g}:{i}]")
        if bad:
            extra[REJECT_KEY] = bad
        return Record(id=uid, path=storage.parquet_member(path, g, i, audio_column), **base, **rec, **head, extra=extra)
    if ref and not storage.is_uri(ref) and not os.path.isabs(ref) and not storage.is_uri(path):
        ref = os.path.join(os.path.dirname(os.path.abspath(path)), ref)
    elif ref and not storage.is_uri(ref) and not os.path.isabs(ref):
        ref = storage.join(path.rsplit("/", 1)[0], ref)
    if ref:  # the audio lives beside the Parquet file: its header is read like any file's
        return Record(id=uid, path=ref, **base, **rec, extra=extra)
    return Record(id=uid, path=path, **base, **rec,
                  extra={**extra, REJECT_KEY: f"no_audio: {audio_column} is null or empty in row group {g} row {i}"})
