"""Lhotse manifests (Libriheavy, k2/icefall recipes): ROOT is a cuts manifest (`cuts*.jsonl.gz`
or `.jsonl`), or a recordings and a supervisions manifest as a comma-separated pair (paths, URIs
or globs). One manifest row per supervision segment, reading its time span of the recording
(offset, duration); a cut without supervisions is one row of its own span. Read with the
standard library (Lhotse itself is not needed to bring cuts in).

The recording is kept in the row's extra (`lhotse_recording`) so that `uniaudio pipeline export
--lhotse` writes it back as it was. A supervision whose recording is not in the manifest, a
recording source Lhotse keeps in memory or produces by a command, and a line that does not
parse are rejects with the reason."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator

from ... import storage
from ...manifest import Record
from .common import REJECT_KEY, sources

ROOT_IS = "files"
PLACEMENT = "position"  # a recording's segments go to the same output shard, read in one pass


def lines(path: str) -> Iterator[tuple[int, dict | None, str | None]]:
    """(line number, object or None, reason) of a JSONL or JSONL.gz manifest, streamed."""
    raw = storage.open_stream(path)
    f = gzip.GzipFile(fileobj=raw) if path.endswith(".gz") else raw
    try:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError("not a JSON object")
                yield n, obj, None
            except (UnicodeDecodeError, ValueError) as e:
                yield n, None, f"bad_manifest_line: {os.path.basename(path)} line {n}: {e}"
    except (OSError, EOFError) as e:  # a truncated .gz
        yield -1, None, f"damaged_manifest: {path}: {e}"
    finally:
        raw.close()


def recipe(root: str, split: str | None = None, corpus: str = "lhotse", domain: str = "speech") -> Iterator[Record]:
    base = dict(corpus=corpus, split=split or "train", domain=domain)
    files = sources(root)
    recordings: dict[str, dict] = {}
    for path in files:  # recordings first: supervisions refer to them by id
        if "recording" in os.path.basename(path):
            for n, obj, why in lines(path):
                if obj is not None:
                    recordings[obj.get("id")] = obj
    for path in files:
        name = os.path.basename(path)
        if "recording" in name:
            continue
        for n, obj, why in lines(path):
            if obj is None:
                yield Record(id=f"{corpus}-{name}-line{n}", path=path, **base, extra={REJECT_KEY: why})
            elif "recording_id" in obj and "recording" not in obj:  # a supervision
                yield _row(obj, recordings.get(obj["recording_id"]), float(obj.get("start", 0.0)), base, path)
            else:  # a cut: its supervisions are relative to the cut's start
                rec, start = obj.get("recording"), float(obj.get("start", 0.0))
                sups = obj.get("supervisions") or []
                if not sups:
                    yield _row({"id": obj.get("id"), "duration": obj.get("duration")}, rec, start, base, path)
                for s in sups:
                    yield _row(s, rec, start + float(s.get("start", 0.0)), base, path)


def _source(rec: dict, manifest: str) -> tuple[str | None, str | None]:
    """(path of the recording's audio, reject reason)."""
    srcs = rec.get("sources") or []
    if len(srcs) != 1:
        return None, f"unsupported_source: recording {rec.get('id')} has {len(srcs)} sources (one file per recording)"
    kind, src = srcs[0].get("type"), srcs[0].get("source")
    if kind not in ("file", "url") or not isinstance(src, str):
        return None, f"unsupported_source: recording {rec.get('id')} is a {kind!r} source (file and url are read)"
    if kind == "file" and not os.path.isabs(src) and not storage.is_uri(manifest):
        src = os.path.join(os.path.dirname(os.path.abspath(manifest)), src)
    return src, None


def _row(sup: dict, rec: dict | None, offset: float, base: dict, manifest: str) -> Record:
    uid = str(sup.get("id"))
    custom = {k: v for k, v in (sup.get("custom") or {}).items() if isinstance(v, (str, int, float, bool))}
    fields = {k: sup.get(k) for k in ("text", "speaker", "language") if isinstance(sup.get(k), str)}
    if rec is None:
        return Record(id=uid, path=manifest, **base, **fields,
                      extra={**custom, REJECT_KEY: f"missing_recording: {sup.get('recording_id')} is not in the "
                                                   "recordings manifest"})
    path, why = _source(rec, manifest)
    if path is not None:  # kept as read: its file source made absolute, as this row reads it
        rec = {**rec, "sources": [{**rec["sources"][0], "source": path}]}
    extra = {**custom, "lhotse_recording": rec}
    if why:
        return Record(id=uid, path=manifest, **base, **fields, extra={**extra, REJECT_KEY: why})
    channels = len(rec.get("channel_ids") or [0])
    return Record(id=uid, path=path, offset=offset, duration=float(sup["duration"]) if sup.get("duration") else None,
                  sample_rate=rec.get("sampling_rate"), channels=channels, **base, **fields, extra=extra)
