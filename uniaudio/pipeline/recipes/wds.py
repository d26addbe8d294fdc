"""WebDataset-style tar shards (Emilia, LAION-Audio-300M, ...): ROOT is a tar path or URI
(s3://...), a glob of them or a comma-separated list; each item is KEY.{flac,wav,mp3,opus,ogg}
with sidecars KEY.json (its keys mapped by `fields`), KEY.txt (the text, or `txt_field`) and
KEY.cls (a label, kept in extra).

Each shard is read once, front to back (one sequential stream, also from object storage); an
item's audio is then addressed as a tar member (`storage.tar_member`: one ranged read when it is
decoded), never unpacked to a file. Items keep their tar order. A member that is not audio, a
sidecar that does not parse, a key without audio and the rest of a truncated tar are rejects
with the reason; the items before the damage are kept."""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Iterator

from ... import storage
from ...manifest import Record
from ..cluster import MapFn, serial_map
from .common import AUDIO_SUFFIXES, DEFAULT_FIELDS, REJECT_KEY, mapped_fields, memory_header, sources

ROOT_IS = "files"  # ROOT names files (a glob, a list, URIs), not a folder
PLACEMENT = "position"  # a shard's members go to the same output shard, read in one pass
WINDOW = 32  # shards listed at once: the rows held in memory are bounded by it
SIDECARS = (".json", ".txt", ".cls")


def split_key(name: str) -> tuple[str, str]:
    """WebDataset's rule: the key is the member's path up to the first dot of its file name."""
    folder, base = os.path.split(name)
    stem, dot, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), (dot + ext).lower()


def recipe(root: str, split: str | None = None, corpus: str = "wds", domain: str = "speech",
           fields: dict | None = None, txt_field: str = "text", map_fn: MapFn = serial_map) -> Iterator[Record]:
    """Shards are listed in parallel through `map_fn` (Ray tasks in `pipeline run`), WINDOW at a
    time, their items yielded in shard order."""
    args = (split or "train", corpus, domain, {**DEFAULT_FIELDS, **(fields or {})}, txt_field)
    shards = sources(root)
    for k in range(0, len(shards), WINDOW):
        for recs in map_fn(shard_records, [(shard, *args) for shard in shards[k:k + WINDOW]]):
            yield from recs


def shard_records(shard: str, split: str, corpus: str, domain: str, fields: dict, txt_field: str) -> list[Record]:
    """One listing task: every item (and reject) of one shard."""
    return list(_shard(shard, split, corpus, domain, fields, txt_field))


def _shard(shard: str, split: str, corpus: str, domain: str, fields: dict, txt_field: str) -> Iterator[Record]:
    base = dict(corpus=corpus, split=split, domain=domain)
    item: dict = {}  # the current key's members: adjacent in a WebDataset tar
    try:
        with storage.open_stream(shard) as f, tarfile.open(fileobj=f, mode="r|*") as tar:
            for m in tar:
                if not m.isfile():
                    continue
                key, ext = split_key(m.name)
                data = tar.extractfile(m).read()  # before the item is touched: a cut member spoils nothing
                if item and key != item["key"]:
                    yield _record(item, shard, base, fields, txt_field)
                    item = {}
                item.setdefault("key", key)
                if ext.rsplit(".", 1)[-1] in (s.lstrip(".") for s in AUDIO_SUFFIXES) and "audio" not in item:
                    item["audio"] = (m.name, m.offset_data, m.size, data)
                else:
                    item.setdefault("side", {})[ext] = data
    except (tarfile.TarError, EOFError, OSError) as e:  # a truncated or unreadable shard: what was read stays
        if item:  # its members so far are whole; one whose audio came after the damage says so
            yield _record(item, shard, base, fields, txt_field, missing=f"damaged_tar: {shard} ends before "
                                                                        f"{item['key']}'s audio")
            item = {}
        yield Record(id=f"{corpus}-{os.path.basename(shard)}-damaged", path=shard, **base,
                     extra={REJECT_KEY: f"damaged_tar: {shard}: {type(e).__name__}: {e}"})
    if item:
        yield _record(item, shard, base, fields, txt_field)


def _record(item: dict, shard: str, base: dict, fields: dict, txt_field: str, missing: str | None = None) -> Record:
    key, side, why = item["key"], item.get("side", {}), None
    meta: dict = {}
    if ".json" in side:
        try:
            meta = json.loads(side[".json"].decode("utf-8"))
            if not isinstance(meta, dict):
                raise ValueError(f"a JSON {type(meta).__name__}, not an object")
        except (UnicodeDecodeError, ValueError) as e:
            meta, why = {}, f"bad_sidecar: {key}.json: {e}"
    row, extra = mapped_fields(meta, fields)
    if ".txt" in side and txt_field not in row:
        try:
            row[txt_field] = side[".txt"].decode("utf-8").strip()
        except UnicodeDecodeError as e:
            why = why or f"invalid_utf8: {key}.txt byte {e.start}"
    if ".cls" in side:
        extra["cls"] = side[".cls"].decode("utf-8", "replace").strip()
    extra["source"] = {"shard": shard, "key": key}
    uid = row.pop("id", None) or key.replace("/", "-")
    if "audio" not in item:
        return Record(id=uid, path=shard, **base, **row, extra={**extra, REJECT_KEY: why or missing or
                                                                 f"no_audio: {key} has no audio member"})
    name, offset, size, data = item["audio"]
    head, bad = memory_header(data, f"{shard}:{name}")
    if why or bad:
        extra[REJECT_KEY] = why or bad
    return Record(id=uid, path=storage.tar_member(shard, name, offset, size), **base, **row, **head, extra=extra)
