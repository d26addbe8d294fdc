"""`uniaudio pipeline verify OUT`: re-read every shard and check it against the records and the index."""

from __future__ import annotations

import json
from itertools import islice
from typing import Iterator

import pyarrow.parquet as pq

from .. import audio, storage
from ..files import iter_parquet, sql_literal
from .plan import InputPlan, plan_metas, stable_shard
from .shards import read_npy, read_tar


MAX_PROBLEMS = 1000  # listed; beyond that only counted (a damaged 50M-row output stays readable)


class _Problems(list):
    def __init__(self):
        super().__init__()
        self.more = 0

    def append(self, item: str) -> None:
        if len(self) < MAX_PROBLEMS:
            super().append(item)
        else:
            self.more += 1

    def final(self) -> list[str]:
        return list(self) + ([f"... and {self.more} more problems"] if self.more else [])


def _intact_tar(out: str, rec: dict, problems: list[str]) -> str | None:
    """A done record's tar when it exists with its recorded sha256; else None, and the problem."""
    tar = storage.join(out, "shards", rec["tar"])
    if not storage.exists(tar):
        problems.append(f"{rec['tar']}: missing")
    elif storage.sha256(tar) != rec["sha256"]:
        problems.append(f"{rec['tar']}: sha256 mismatch")
    else:
        return tar
    return None


def _intact_tars(out: str, problems: list[str]):
    """(done record, tar path) of every finished shard whose tar is intact (`_intact_tar`)."""
    for done in storage.glob(storage.join(out, "done", "*.json")):
        rec = json.loads(storage.read_text(done))
        if rec["tar"] is not None and (tar := _intact_tar(out, rec, problems)) is not None:
            yield rec, tar


def _check_tar(rec: dict, tar: str, problems: list[str]) -> int:
    """Members of one tar against its done record: keys in order, ids, decodable arrays."""
    expected = [(s["key"], s["id"]) for s in rec["samples"]]
    listed = {k for k, _ in expected}
    got = []
    for key, members in read_tar(tar):
        if key not in listed:  # an extra file in the tar: reported once, not counted as a sample
            problems.append(f"{rec['tar']}: member(s) {', '.join(f'{key}.{e}' for e in sorted(members))} belong to "
                            "no sample of its done record")
            continue
        try:
            meta = json.loads(members["json"])
            got.append((key, meta["id"]))
            if "codes.npy" in members:
                codes = read_npy(members, "codes.npy", key)
                if codes.ndim != 2 or codes.shape[1] != meta["frames"]:
                    raise ValueError(f"codes shape {codes.shape} vs {meta['frames']} frames")
            elif "flac" in members:
                wav, _ = audio.decode_bytes(members["flac"], f"{rec['tar']}:{key}.flac")
                if len(wav) != meta["frames"]:
                    raise ValueError(f"{len(wav)} samples vs {meta['frames']} frames")
            else:
                raise ValueError("no codes.npy or flac member")
        except KeyError as e:
            problems.append(f"{rec['tar']}:{key}: no {key}.{e.args[0]} member" if e.args and e.args[0] == "json"
                            else f"{rec['tar']}:{key}: its json lacks {e}")
        except (ValueError, audio.AudioError) as e:
            problems.append(f"{rec['tar']}:{key}: {e}")
    if got != expected:
        problems.append(f"{rec['tar']}: keys or ids differ from the done record")
    return len(got)


def _index_rows(path: str) -> Iterator[tuple[str, str, str]]:
    for b in iter_parquet(path, columns=["shard", "key", "id"]):
        yield from zip(*(b.column(c).to_pylist() for c in ("shard", "key", "id")))


def _repeated_ids(index: str, problems: list[str]) -> None:
    """Ids in two shards (across inputs, or within an input placed by position: within one
    placed by id hash, the shard check proves uniqueness): a group-by that DuckDB spills to
    disk past its memory limit."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET memory_limit='1GB'")
    con.execute("SET preserve_insertion_order=false")
    with storage.local_file(index) as path:
        for uid, n, shards in con.execute(
                f"SELECT id, count(*), string_agg(shard, ', ') FROM read_parquet({sql_literal(path)}) GROUP BY id "
                "HAVING count(*) > 1 "
                f"ORDER BY id LIMIT {MAX_PROBLEMS}").fetchall():
            problems.append(f"id {uid!r} in {n} shards: {shards}")
    con.close()


def verify(out: str, tars: bool = True) -> dict:
    """Checks, streaming (memory does not grow with the corpus): every planned shard has a done
    record; each id in a record is unique there and (hash placement) hashes to that shard, so
    no id is in two shards of an input; index.parquet lists exactly the records' samples in
    order; no id is in two inputs (nor in two shards of a position-placed input); and with `tars`, each tar's checksum, keys, ids and the decodability of every
    member. Returns {"shards", "samples", "problems": [...]}. A sentence output
    (`pipeline sentences`) is checked by `verify_sentences`."""
    out = storage.absolute(out)
    if storage.exists(storage.join(out, "plan", "sentences.json")):
        return verify_sentences(out)
    problems = _Problems()
    plans = sorted((InputPlan.load(m) for m in plan_metas(out)), key=lambda p: p.prefix)
    index_path = storage.join(out, "index.parquet")
    has_index = storage.exists(index_path)
    index = _index_rows(index_path) if has_index else None
    if index is None:
        problems.append("index.parquet missing (run did not finish)")
    n_shards = n_samples = 0
    for plan in plans:
        for shard in range(plan.n_shards):
            name = plan.shard_name(shard)
            try:
                rec = json.loads(storage.read_text(storage.join(out, "done", f"{name}.json")))
            except (OSError, ValueError) as e:
                problems.append(f"{name}: no readable done record ({type(e).__name__})")
                continue
            ids = [s["id"] for s in rec["samples"]]
            if len(set(ids)) != len(ids):
                problems.append(f"{name}: an id twice in one shard")
            wrong = [u for u in ids if stable_shard(u, plan.n_shards) != shard] if plan.placement == "hash" else []
            if wrong:
                problems.append(f"{name}: {len(wrong)} id(s) belong to other shards, e.g. {wrong[0]!r}")
            if index is not None and ids:
                want = [(rec["tar"], s["key"], s["id"]) for s in rec["samples"]]
                if list(islice(index, len(want))) != want:
                    problems.append(f"index.parquet rows for {rec['tar']} differ from its done record (or are out of "
                                    "order: an index written by an older uniaudio; `pipeline run` rewrites it)")
                    index = None  # out of step from here on: one problem, not one per shard
            if rec["tar"] is None:
                continue
            n_shards += 1
            if not tars:
                n_samples += len(ids)
            elif (tar := _intact_tar(out, rec, problems)) is not None:
                n_samples += _check_tar(rec, tar, problems)
    if index is not None and next(index, None) is not None:
        problems.append("index.parquet lists samples that no done record holds")
    if has_index and (len(plans) > 1 or any(p.placement != "hash" for p in plans)):
        _repeated_ids(index_path, problems)
    return {"shards": n_shards, "samples": n_samples, "problems": problems.final()}


def verify_sentences(out: str) -> dict:
    """Bundle outputs: checksums, keys, array shapes within the context, every sequence parsed
    back through the vocabulary to the task its record names, no sequence in two bundles, and
    agreement with sequences.parquet."""
    from .sentences.inspect import BundleReader

    problems: list[str] = []
    seen: dict[str, str] = {}
    n_shards = n_bundles = 0
    reader = BundleReader(out)
    for name in ("index.parquet", "sequences.parquet"):
        if not storage.exists(storage.join(out, name)):
            problems.append(f"{name} missing (run did not finish)")
    for rec, tar in _intact_tars(out, problems):
        n_shards += 1
        got = []
        listed = {b["key"] for b in rec["bundles"]}
        for key, members in read_tar(tar):
            got.append(key)
            if key not in listed:
                problems.append(f"{rec['tar']}: member(s) {', '.join(f'{key}.{e}' for e in sorted(members))} belong to "
                                "no bundle of its done record")
                continue
            n_bundles += 1
            try:
                tokens, meta = reader.uniaudio_rows(members, key)
                loss = read_npy(members, "loss.npy", key)
                if not 0 < meta["rows"] <= meta["context"] or len(tokens) != meta["rows"] or len(loss) != meta["rows"]:
                    raise ValueError(f"{len(tokens)} rows / {meta['rows']} recorded / context {meta['context']}")
                if meta["layout"] == "multistream":
                    streams = read_npy(members, "streams.npy", key)
                    if streams.shape != loss.shape or streams.shape[1] != meta["width"]:
                        raise ValueError(f"stream mask {streams.shape} vs loss {loss.shape}")
                seqs = reader.decode(members, key)
            except (KeyError, ValueError) as e:
                problems.append(f"{rec['tar']}: {e}")
                continue
            for s in seqs:
                if s["seq"] in seen:
                    problems.append(f"sequence {s['seq']!r} in {seen[s['seq']]} and {rec['tar']}:{key}")
                seen[s["seq"]] = f"{rec['tar']}:{key}"
        if got != [b["key"] for b in rec["bundles"]]:
            problems.append(f"{rec['tar']}: keys differ from the done record")
    if storage.exists(seq_path := storage.join(out, "sequences.parquet")):
        with storage.arrow_file(seq_path) as f:
            listed = pq.read_table(f, columns=["seq"]).column("seq").to_pylist()
        if sorted(listed) != sorted(seen):
            problems.append(f"sequences.parquet lists {len(listed)} sequences, bundles hold {len(seen)}")
    return {"shards": n_shards, "samples": n_bundles, "problems": problems}
