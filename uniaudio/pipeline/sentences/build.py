"""One Ray task per output shard: its specs -> token arrays -> rows -> packed bundles -> tar.

Tokens are read from the token tars only here, by member offset (each tar's headers read
once; a tar whose size or mtime differ from its done record is re-hashed against the token
output's index, as the token pipeline's resume does). A sequence whose source
cannot be read, or that does not fit the context, is left out with its reason; the shard
is still written whole (temp name + rename), then its done record, as token shards are."""

from __future__ import annotations

import io
import json
import os
import resource
import time
from collections import Counter, OrderedDict

import numpy as np
import pyarrow.parquet as pq

from ... import storage
from ...tokenize.text import BPETokenizer
from ...tokenize.vocab import Rows, Vocabulary
from ..packing import Packer, padding_fill_sums
from ..shards import TarMembers, unchanged, write_tar


class SourceError(Exception):
    def __init__(self, reason: str, detail: str):
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}")


class TokenTars:
    """Codes of token-shard samples by (tar, key) through `shards.TarMembers`, each tar checked
    against the token output's sha256 before its first read, with a small LRU of decoded arrays."""

    def __init__(self, root: str, n_codebooks: int, codebook_size: int, cache: int = 512):
        self.root, self.k, self.size = str(root), n_codebooks, codebook_size
        self.tars = TarMembers(storage.join(self.root, "shards"))
        self.cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self.cache_size = cache

    def _read(self, tar: str, sha256: str, name: str) -> bytes:
        """A member of a token tar, the tar checked against the index's sha256 before its first read."""
        def check(path: str) -> None:
            if storage.stat(path) is None:
                raise SourceError("missing_token_tar", f"{tar} is not in {storage.join(self.root, 'shards')}")
            if not self._unchanged(path, tar, sha256):
                raise SourceError("damaged_token_tar", f"{tar}: sha256 differs from the token output's index")

        try:
            return self.tars.read(tar, name, check)
        except SourceError:
            raise
        except (ValueError, OSError) as e:  # unreadable or truncated tar, missing member
            raise SourceError("damaged_token_tar", str(e)) from None

    def _unchanged(self, path: str, tar: str, sha256: str) -> bool:
        """The token pipeline's own rule (`shards.unchanged`) against the tar's done record and
        the index's sha256."""
        try:
            rec = json.loads(storage.read_text(storage.join(self.root, "done", f"{tar[:-len('.tar')]}.json")))
        except (OSError, ValueError):
            rec = {}
        return unchanged(path, rec, sha256)

    def codes(self, seg: dict, member: str = "codes.npy", k: int | None = None, size: int | None = None) -> np.ndarray:
        """[K, frames] codes of a whole source sample (`member`: codes.npy, or semantic.npy with
        its own codebooks `k` and `size`)."""
        k, size = k or self.k, size or self.size
        key = (seg["tar"], seg["key"], member)
        if key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key]
        name = f"{seg['key']}.{member}"
        data = self._read(seg["tar"], seg["sha256"], name)
        try:
            codes = np.load(io.BytesIO(data), allow_pickle=False)
        except ValueError as e:
            raise SourceError("damaged_token_tar", f"{seg['tar']}:{name}: {e}") from None
        if codes.ndim != 2 or codes.shape[0] != k:
            raise SourceError("bad_codes", f"{seg['id']}: {member} {codes.shape}, expected [{k}, frames]")
        if codes.size and (codes.min() < 0 or codes.max() >= size):
            raise SourceError("bad_codes", f"{seg['id']}: a code outside [0, {size}) in {member}")
        self.cache[key] = codes
        if len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        return codes


class Builder:
    """Specs -> Rows with the output's vocabulary and text tokenizer."""

    def __init__(self, out: str, tokens: str, tokenizer: dict):
        self.vocab = Vocabulary.load(storage.join(out, "vocab.json"))
        self.bpe = BPETokenizer.load(storage.join(out, "text_tokenizer.json"))
        self.tars = TokenTars(tokens, int(tokenizer["n_codebooks"]), int(tokenizer["codebook_size"]))

    def rows(self, spec: dict) -> Rows:
        parts = []
        for s in json.loads(spec["segments"]):
            if s["kind"] == "audio":
                codes = self.tars.codes(s)
                if s["end"] > codes.shape[1]:
                    raise SourceError("bad_codes", f"{s['id']}: frames {s['start']}:{s['end']} past its "
                                                   f"{codes.shape[1]} frames")
                parts.append((s["modality"], "audio", codes[:, s["start"]:s["end"]]))
            elif s["kind"] == "semantic":  # content codes (vc): one row per code
                r = self.vocab.ranges.get("semantic")
                if r is None:
                    raise SourceError("no_semantic_range", f"{s['id']}: the vocabulary has no semantic range")
                codes = self.tars.codes(s, "semantic.npy", r.codebooks, r.size)
                parts.append((s["modality"], "semantic", codes[:, s["start"]:s["end"]]))
            else:
                ids = self.bpe.encode(s["text"])
                if not ids:
                    raise SourceError("empty_text", f"{s['id']}: the text encodes to no tokens")
                parts.append((s["modality"], "text", ids))
        return self.vocab.sequence_rows(spec["task"], parts, json.loads(spec["targets"]))


def _render(vocab: Vocabulary, layout: str, rows: list[Rows]) -> dict[str, bytes]:
    ids = np.concatenate([r.ids for r in rows])
    loss = np.concatenate([r.loss for r in rows])
    arrays = {}
    if layout == "uniaudio":
        arrays["tokens.npy"], arrays["loss.npy"] = ids.astype(np.int32), loss.astype(np.uint8)
    else:
        ms, streams, ms_loss = vocab.multistream(ids, loss)
        arrays["tokens.npy"], arrays["loss.npy"], arrays["streams.npy"] = (
            ms, ms_loss.astype(np.uint8), streams.astype(np.uint8))
    out = {}
    for name, a in arrays.items():
        buf = io.BytesIO()
        np.save(buf, a)
        out[name] = buf.getvalue()
    return out


def build_shard(task: dict) -> dict:
    """Build, pack and write one output shard; returns a small summary for the driver."""
    t0 = time.time()
    out, tokens = task["out"], task["tokens"]
    frame_rate = float(task["tokenizer"]["frame_rate"])
    builder = Builder(out, tokens, task["tokenizer"])
    with storage.arrow_file(task["specs"]) as f:
        specs = pq.read_table(f, filters=[("out_shard", "=", task["shard"])]).to_pylist()
    packer = Packer(task["context"], buffer=task["pack_buffer"])
    built: dict[int, tuple[dict, Rows]] = {}  # only sequences still waiting for their bin to close
    left_out, samples, bundle_index, seq_index = [], [], [], []
    counts = {"tasks": Counter(), "relations": Counter(), "modality_rows": Counter()}
    lengths = []
    stats = {"useful_rows": 0, "sequences": 0}

    def close(bins) -> None:
        for b in bins:
            key = f"{task['shard']:06d}-{len(samples):05d}"
            rows, seqs, segs, offset = [], [], [], 0
            for length, i in b.items:
                spec, r = built.pop(i)
                rows.append(r)
                n = len(seqs)
                seqs.append({"sequence": n, "seq": spec["seq"], "task": spec["task"], "relation": spec["relation"],
                             "id": spec["primary"], "rows": [offset, offset + length]})
                for s, (a, e) in zip(json.loads(spec["segments"]), r.segment_rows):
                    seg = {"sequence": n, "relation": spec["relation"], "task": spec["task"], "id": s["id"],
                           "modality": s["modality"], "rows": [offset + a, offset + e]}
                    if s["kind"] == "audio":
                        seg["frames"] = [s["start"], s["end"]]
                        seg["seconds"] = round((s["end"] - s["start"]) / frame_rate, 3)
                    elif s["kind"] == "semantic":  # frames of the source's semantic.npy
                        seg["frames"], seg["member"] = [s["start"], s["end"]], "semantic.npy"
                    segs.append(seg)
                    counts["modality_rows"][s["modality"]] += e - a
                counts["modality_rows"]["special"] += length - sum(e - a for a, e in r.segment_rows)
                seq_index.append({"seq": spec["seq"], "task": spec["task"], "relation": spec["relation"],
                                  "id": spec["primary"], "key": key, "row_start": offset, "row_end": offset + length})
                counts["tasks"][spec["task"]] += 1
                counts["relations"][spec["relation"]] += 1
                offset += length
            meta = {"key": key, "layout": task["layout"], "context": task["context"], "rows": offset,
                    "width": int(rows[0].ids.shape[1]) + (task["layout"] == "multistream"), "sequences": seqs,
                    "segments": segs}
            members = _render(builder.vocab, task["layout"], rows)
            members["json"] = json.dumps(meta, ensure_ascii=False, sort_keys=True).encode()
            samples.append((key, members))
            bundle_index.append({"key": key, "rows": offset, "sequences": len(seqs)})
            stats["useful_rows"] += offset
            stats["sequences"] += len(seqs)

    for i, spec in enumerate(specs):
        try:
            r = builder.rows(spec)
            if len(r) > task["context"]:
                raise SourceError("longer_than_context", f"{len(r)} rows > context {task['context']}")
        except SourceError as e:
            left_out.append({"id": spec["primary"], "seq": spec["seq"], "task": spec["task"], "reason": e.reason,
                             "detail": e.detail, "stage": "build"})
            continue
        lengths.append(len(r))
        built[i] = (spec, r)
        close(packer.add(len(r), i, filler=spec["task"] == "text"))
    rest, unused = packer.finish()
    close(rest)
    for i in unused:
        spec, _ = built.pop(i)
        left_out.append({"id": spec["primary"], "seq": spec["seq"], "task": spec["task"], "reason": "unused_filler",
                         "detail": "text-only filler with no gap left to fill", "stage": "pack"})

    useful, padded = padding_fill_sums(lengths)
    record = {"shard": task["shard"], "name": task["name"], "tar": None, "sha256": None, "bytes": 0,
              "bundles": bundle_index, "sequences": seq_index, "rejects": left_out,
              "counts": {k: dict(v) for k, v in counts.items()}, "useful_rows": stats["useful_rows"],
              "context_rows": len(samples) * task["context"], "padding_useful": useful, "padding_rows": padded,
              "specs": len(specs), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              "started": t0, "finished": None, "pid": os.getpid()}
    if samples:  # the bundle tar first, its done record after (see stages._write)
        tar = storage.join(out, "shards", f"{task['name']}.tar")
        sha, size = write_tar(tar, samples)
        record.update(tar=f"{task['name']}.tar", sha256=sha, bytes=size, mtime_ns=storage.stat(tar)[1])
    record["finished"] = time.time()
    storage.write_text(storage.join(out, "done", f"{task['name']}.json"), json.dumps(record))
    return {"name": task["name"], "bundles": len(samples), "sequences": stats["sequences"],
            "rows": stats["useful_rows"], "left_out": len(left_out)}
