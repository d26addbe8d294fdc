"""Streaming auditory-sentence bundles for the trainer, with exact mid-epoch resume.

A sentence output (`uniaudio pipeline sentences`) lists its bundles in index.parquet; each
bundle is one packed context of sequences. Bundles are split once into train and held-out
validation by a stable hash of their key. Epoch e visits the train bundles in a permutation
drawn from (seed, e); consecutive bundles form a batch while their rows fit `batch_rows` (a
token budget; at least one bundle); the epoch's batches are cut to a multiple of
ranks x loader workers (drop-last), dealt to ranks (batch i -> rank i mod world) and, within a
rank, to DataLoader workers in turn. So every batch is a pure function of (seed, epoch, index),
and the only state to save is how many batches this rank has *yielded* (counted in the main
process when a batch is taken, so prefetched batches are not lost or repeated): resume builds
the same stream and starts each worker where the count says.

Bad bundles never stop an epoch: an unreadable tar or member, more rows than the model's
context, an id outside the vocabulary or outside what its slot may hold are left out of their
batch and reported with the batch (`skipped`: key and reason), the same way on every run. A
shard that differs from the sha256 its sentence output recorded stops the run before it starts
(`check_shards`)."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from .. import storage
from ..pipeline.shards import TarMembers, load_npy
from ..tokenize.vocab import Vocabulary


def _u(*parts) -> float:
    h = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") / 2**64


@dataclass(frozen=True)
class BundleRef:
    shard: str  # tar name under OUT/shards
    key: str
    rows: int


class SentenceData:
    """A sentence output folder: its vocabulary, layout, context and bundle list."""

    def __init__(self, root: str | Path):
        root = storage.absolute(root)  # a folder or an s3:// prefix: bundles are read with ranged reads
        for name in ("index.parquet", "vocab.json", "report.json", "text_tokenizer.json"):
            if not storage.exists(storage.join(root, name)):
                raise FileNotFoundError(f"{root} is not a finished sentence output ({name} missing): run "
                                        "`uniaudio pipeline sentences --shards TOKENS --out DIR` first")
        self.root = root
        self.report = json.loads(storage.read_text(storage.join(root, "report.json")))
        self.layout, self.context = self.report["layout"], int(self.report["context"])
        self.vocab = Vocabulary.load(storage.join(root, "vocab.json"))
        self.tokenizer = self.report["tokenizer"]
        with storage.arrow_file(storage.join(root, "index.parquet")) as f:
            t = pq.read_table(f).to_pylist()
        self._sha256 = {r["shard"]: r.get("sha256") for r in t}
        self.bundles = [BundleRef(r["shard"], r["key"], int(r["rows"])) for r in t if r.get("split", "train") == "train"]
        self.heldout = [BundleRef(r["shard"], r["key"], int(r["rows"])) for r in t if r.get("split") == "heldout"]
        if not self.bundles:
            raise ValueError(f"{root} holds no training bundles")

    def shard_checksums(self) -> dict[str, str | None]:
        """shard tar name -> the sha256 the sentence stage recorded for it."""
        return dict(self._sha256)

    def split(self, val_fraction: float, seed: int) -> tuple[list[BundleRef], list[BundleRef]]:
        """(train, val): the held-out bundles the sentence stage built from held-out splits
        (sources never seen in training); without any, a stable hash of the bundle keys picks
        `val_fraction` of them (those share source utterances with training bundles)."""
        if self.heldout:
            return list(self.bundles), list(self.heldout)
        scored = sorted(self.bundles, key=lambda b: _u(seed, "val", b.key))
        n_val = max(1, int(round(val_fraction * len(scored)))) if val_fraction > 0 else 0
        if n_val >= len(scored):
            raise ValueError(f"val_fraction {val_fraction} leaves no training bundle ({len(scored)} bundles)")
        val = set(b.key for b in scored[:n_val])
        return [b for b in self.bundles if b.key not in val], [b for b in self.bundles if b.key in val]


class BundleReader:
    """Bundles by (tar, key) through `shards.TarMembers`; arrays checked."""

    def __init__(self, root: str, vocab: Vocabulary, max_rows: int, supports: list[np.ndarray]):
        self.root, self.max_rows = root, max_rows
        self.vocab, self.vocab_size = vocab, vocab.size
        self.allowed = [np.isin(np.arange(vocab.size), s) for s in supports]  # slot k -> bool over ids
        self.tasks = {t[len("<task:"):-1]: i for i, t in enumerate(vocab.specials) if t.startswith("<task:")}
        self.tars = TarMembers(storage.join(root, "shards"))  # each tar's member offsets, read once

    def _member(self, shard: str, name: str) -> bytes:
        return self.tars.read(shard, name)

    def read(self, ref: BundleRef) -> dict:
        """One bundle as arrays, or ValueError with the reason it cannot be used."""
        try:
            meta = json.loads(self._member(ref.shard, f"{ref.key}.json"))
            ids = load_npy(self._member(ref.shard, f"{ref.key}.tokens.npy"), f"{ref.key}.tokens.npy")
            loss = load_npy(self._member(ref.shard, f"{ref.key}.loss.npy"), f"{ref.key}.loss.npy")
        except (ValueError, OSError, KeyError) as e:
            raise ValueError(f"unreadable: {e}") from None
        k = len(self.allowed)
        if meta.get("layout") == "multistream" and ids.ndim == 2 and ids.shape[1] == k + 1 and loss.shape == ids.shape:
            # UniAudio 2.0's [rows, K + 1] streams hold what the uniaudio rows hold: one reader, one batch
            ids, loss = self.vocab.from_multistream(ids), loss.any(1)
        elif meta.get("layout") != "uniaudio" or ids.ndim != 2 or ids.shape[1] != k:
            raise ValueError(f"layout {meta.get('layout')} {ids.shape}: expected the uniaudio layout with {k} "
                             f"streams or the multistream layout with {k + 1}")
        if loss.shape != (len(ids),):
            raise ValueError(f"unreadable: loss mask {loss.shape} does not match {len(ids)} rows")
        if len(ids) > self.max_rows:
            raise ValueError(f"too_long: {len(ids)} rows > the model's max_rows {self.max_rows}")
        if ids.min() < 0 or ids.max() >= self.vocab_size:
            raise ValueError(f"id_out_of_vocabulary: ids in [{ids.min()}, {ids.max()}], vocabulary {self.vocab_size}")
        for k, ok in enumerate(self.allowed):
            if not ok[ids[:, k]].all():
                bad = int(ids[~ok[ids[:, k]], k][0])
                raise ValueError(f"id_outside_codebook: id {bad} in slot {k}, which only holds specials, text and "
                                 f"codebook {k}")
        doc = np.full(len(ids), -1, np.int64)
        pos = np.zeros(len(ids), np.int64)
        task = np.full(len(ids), -1, np.int64)
        for s in meta["sequences"]:
            a, b = s["rows"]
            doc[a:b], pos[a:b], task[a:b] = s["sequence"], np.arange(b - a), self.tasks.get(s["task"], -1)
        return {"ids": ids.astype(np.int64), "loss": loss.astype(bool), "doc": doc, "pos": pos, "task": task,
                "key": ref.key}


def collate(items: list[dict], pad_id: int) -> dict:
    t = max(len(i["ids"]) for i in items) if items else 1
    b = len(items)
    k = items[0]["ids"].shape[1] if items else 1
    out = {"ids": np.full((b, t, k), pad_id, np.int64), "loss": np.zeros((b, t), bool),
           "doc": np.full((b, t), -1, np.int64), "pos": np.zeros((b, t), np.int64), "task": np.full((b, t), -1, np.int64)}
    for j, it in enumerate(items):
        n = len(it["ids"])
        for name in ("ids", "loss", "doc", "pos", "task"):
            out[name][j, :n] = it[name]
    batch = {name: torch.from_numpy(a) for name, a in out.items()}
    batch["keys"] = [i["key"] for i in items]
    return batch


def batches_of(refs: list[BundleRef], batch_rows: int) -> list[list[BundleRef]]:
    """Consecutive bundles while their rows fit the budget (at least one per batch)."""
    out, cur, used = [], [], 0
    for r in refs:
        if cur and used + r.rows > batch_rows:
            out.append(cur)
            cur, used = [], 0
        cur.append(r)
        used += r.rows
    if cur:
        out.append(cur)
    return out


class BundleStream(torch.utils.data.IterableDataset):
    """An endless stream of this rank's training batches from global batch `start` on."""

    def __init__(self, data: SentenceData, refs: list[BundleRef], *, batch_rows: int, seed: int, rank: int,
                 world: int, workers: int, start: int, max_rows: int, supports: list[np.ndarray]):
        super().__init__()
        self.data, self.refs, self.batch_rows, self.seed = data, refs, batch_rows, seed
        self.rank, self.world, self.workers, self.start = rank, world, max(1, workers), start
        self.max_rows, self.supports = max_rows, supports
        per_epoch = len(self.epoch_batches(0))
        if per_epoch == 0:
            raise ValueError(f"{len(refs)} training bundles make fewer batches than ranks x workers "
                             f"({world} x {self.workers}): lower batch_rows or use fewer processes")

    def epoch_batches(self, epoch: int) -> list[list[BundleRef]]:
        """This rank's batches of an epoch, in order (a multiple of the loader workers)."""
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.refs))
        all_batches = batches_of([self.refs[i] for i in order], self.batch_rows)
        unit = self.world * self.workers
        all_batches = all_batches[: len(all_batches) // unit * unit]  # drop-last: equal shares
        return all_batches[self.rank::self.world]

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        w, n_w = (info.id, info.num_workers) if info else (0, 1)
        if n_w != self.workers:
            raise RuntimeError(f"stream built for {self.workers} loader workers, running in {n_w}")
        reader = BundleReader(self.data.root, self.data.vocab, self.max_rows, self.supports)
        pad = self.data.vocab.id("<pad>")
        # the DataLoader takes from worker 0, 1, ... in turn: from `start` on, worker w must
        # produce global batches start + w, start + w + n_w, ...
        n = self.start + w
        cache = None
        while True:
            cache, epoch, refs = self._locate(n, cache)
            items, skipped = [], []
            for r in refs:
                try:
                    items.append(reader.read(r))
                except ValueError as err:
                    skipped.append({"key": r.key, "shard": r.shard, "reason": str(err)})
            batch = collate(items, pad) if items else {"keys": []}
            batch.update(index=n, epoch=epoch, skipped=skipped)
            yield batch
            n += n_w

    def _locate(self, n: int, cache):
        """Global batch n of this rank: (cache, epoch, bundles), walking epochs forward."""
        if cache is None or n < cache[1]:
            cache = (0, 0, self.epoch_batches(0))  # (epoch, its first batch index, its batches)
        e, first, batches = cache
        while n >= first + len(batches):
            first += len(batches)
            e += 1
            batches = self.epoch_batches(e)
        return (e, first, batches), e, batches[n - first]


def loader(stream: BundleStream, workers: int, seed: int, pin_memory: bool = False) -> torch.utils.data.DataLoader:
    """The DataLoader over a stream. It gets its own generator: creating its iterator draws a base
    seed, and from the global RNG that draw came after a resume had restored the RNG, so dropout
    masks differed from an uninterrupted run (the stream itself uses no torch RNG)."""
    return torch.utils.data.DataLoader(stream, batch_size=None, num_workers=workers, pin_memory=pin_memory,
                                       persistent_workers=workers > 0, prefetch_factor=2 if workers > 0 else None,
                                       generator=torch.Generator().manual_seed(seed))


def val_batches(data: SentenceData, refs: list[BundleRef], batch_rows: int, max_rows: int,
                supports: list[np.ndarray]) -> tuple[list[dict], list[dict]]:
    """(batches, skipped): the held-out bundles as batches, read once (they are few), and each
    one that could not be used with its reason (counted in the log, never dropped silently)."""
    reader = BundleReader(data.root, data.vocab, max_rows, supports)
    pad = data.vocab.id("<pad>")
    out, skipped = [], []
    for refs_b in batches_of(refs, batch_rows):
        items = []
        for r in refs_b:
            try:
                items.append(reader.read(r))
            except ValueError as err:
                skipped.append({"key": r.key, "shard": r.shard, "reason": str(err)})
        if items:
            out.append(collate(items, pad))
    return out, skipped


def empty_batch(vocab) -> dict:
    """One padding row that predicts nothing: a rank whose batch was all unusable still runs
    a forward/backward, so DDP's collective calls stay matched."""
    k = vocab.audio_range().codebooks
    item = {"ids": np.full((2, k), vocab.id("<pad>"), np.int64), "loss": np.zeros(2, bool), "doc": np.zeros(2, np.int64),
            "pos": np.arange(2), "task": np.full(2, -1, np.int64), "key": "<empty>"}
    return collate([item], vocab.id("<pad>"))


def check_shards(data: SentenceData, refs, out: Path, rank: int, world: int) -> dict:
    """Every bundle shard the run reads, against the sha256 its sentence output recorded: a
    tampered (or damaged but readable) shard stops the run before training instead of being
    trained on. Hashes are streamed; a shard whose size and mtime equal those of its last check
    (OUT/checked_shards.json) is not read again, so a resume costs stat calls only. Rank 0
    checks; the other ranks learn the outcome."""
    from ..files import atomic_write_text

    result: dict = {"shards": 0, "hashed": 0, "bytes": 0, "seconds": 0.0}
    problem = None
    if rank == 0:
        t0 = time.time()
        want = data.shard_checksums()
        record = out / "checked_shards.json"
        try:
            seen = json.loads(record.read_text())
        except (OSError, ValueError):
            seen = {}
        bad, now = [], {}
        for shard in sorted({r.shard for r in refs}):
            path = storage.join(data.root, "shards", shard)
            st = storage.stat(path)
            if st is None:
                bad.append(f"{shard} (missing)")
                continue
            stamp = [want.get(shard), *st]
            if seen.get(shard) != stamp:
                result["hashed"] += 1
                result["bytes"] += st[0]
                if storage.sha256(path) != want.get(shard):
                    bad.append(shard)
                    continue
            now[shard] = stamp
        result.update(shards=len(now) + len(bad), seconds=round(time.time() - t0, 3))
        atomic_write_text(record, json.dumps(now))
        if bad:
            problem = (f"{len(bad)} bundle shard(s) of {data.root} differ from the sha256 its index recorded: "
                       f"{', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}. The sentence output changed after it "
                       "was built; rerun `uniaudio pipeline sentences` on it (a resume rewrites changed shards) or "
                       "check the disk, then train again")
    if world > 1:
        import torch.distributed as dist

        box = [problem, result]
        dist.broadcast_object_list(box, src=0)
        problem, result = box
    if problem:
        raise ValueError(problem)
    return result
