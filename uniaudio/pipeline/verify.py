"""`uniaudio pipeline verify OUT`: re-read every shard and check it against the records."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from .. import audio
from .shards import file_sha256, read_tar


def _intact_tars(out: Path, problems: list[str]):
    """(done record, tar path) of every finished shard whose tar exists with its recorded
    sha256; the others are added to `problems`."""
    for done in sorted((out / "done").glob("*.json")):
        rec = json.loads(done.read_text())
        if rec["tar"] is None:
            continue
        tar = out / "shards" / rec["tar"]
        if not tar.exists():
            problems.append(f"{rec['tar']}: missing")
        elif file_sha256(tar) != rec["sha256"]:
            problems.append(f"{rec['tar']}: sha256 mismatch")
        else:
            yield rec, tar


def verify(out: str | Path) -> dict:
    """Checks checksums, keys, decodability of every member, index/shard agreement and that
    no id appears twice. Returns {"shards", "samples", "problems": [...]}. A sentence output
    (`pipeline sentences`) is checked by `verify_sentences`."""
    out = Path(out)
    if (out / "plan" / "sentences.json").exists():
        return verify_sentences(out)
    problems: list[str] = []
    seen: dict[str, str] = {}
    n_shards = n_samples = 0
    index = pq.read_table(out / "index.parquet").to_pylist() if (out / "index.parquet").exists() else None
    if index is None:
        problems.append("index.parquet missing (run did not finish)")
    for rec, tar in _intact_tars(out, problems):
        n_shards += 1
        expected = [s["key"] for s in rec["samples"]]
        got = []
        for key, members in read_tar(tar):
            got.append(key)
            n_samples += 1
            try:
                meta = json.loads(members["json"])
                if "codes.npy" in members:
                    codes = np.load(io.BytesIO(members["codes.npy"]))
                    if codes.ndim != 2 or codes.shape[1] != meta["frames"]:
                        raise ValueError(f"codes shape {codes.shape} vs {meta['frames']} frames")
                elif "flac" in members:
                    wav, _ = audio.decode_bytes(members["flac"], f"{rec['tar']}:{key}.flac")
                    if len(wav) != meta["frames"]:
                        raise ValueError(f"{len(wav)} samples vs {meta['frames']} frames")
                else:
                    raise ValueError("no codes.npy or flac member")
            except (KeyError, ValueError, audio.AudioError) as e:
                problems.append(f"{rec['tar']}:{key}: {e}")
                continue
            if meta["id"] in seen:
                problems.append(f"id {meta['id']!r} in {seen[meta['id']]} and {rec['tar']}")
            seen[meta["id"]] = rec["tar"]
        if got != expected:
            problems.append(f"{rec['tar']}: keys differ from the done record")
    if index is not None:
        idx_ids = sorted(r["id"] for r in index)
        if idx_ids != sorted(seen):
            problems.append(f"index.parquet lists {len(idx_ids)} ids, shards hold {len(seen)}")
    return {"shards": n_shards, "samples": n_samples, "problems": problems}


def verify_sentences(out: Path) -> dict:
    """Bundle outputs: checksums, keys, array shapes within the context, every sequence parsed
    back through the vocabulary to the task its record names, no sequence in two bundles, and
    agreement with sequences.parquet."""
    from .sentences.inspect import BundleReader

    problems: list[str] = []
    seen: dict[str, str] = {}
    n_shards = n_bundles = 0
    reader = BundleReader(out)
    for name in ("index.parquet", "sequences.parquet"):
        if not (out / name).exists():
            problems.append(f"{name} missing (run did not finish)")
    for rec, tar in _intact_tars(out, problems):
        n_shards += 1
        got = []
        for key, members in read_tar(tar):
            got.append(key)
            n_bundles += 1
            try:
                tokens, meta = reader.uniaudio_rows(members)
                loss = np.load(io.BytesIO(members["loss.npy"]))
                if not 0 < meta["rows"] <= meta["context"] or len(tokens) != meta["rows"] or len(loss) != meta["rows"]:
                    raise ValueError(f"{len(tokens)} rows / {meta['rows']} recorded / context {meta['context']}")
                if meta["layout"] == "multistream":
                    streams = np.load(io.BytesIO(members["streams.npy"]))
                    if streams.shape != loss.shape or streams.shape[1] != meta["width"]:
                        raise ValueError(f"stream mask {streams.shape} vs loss {loss.shape}")
                seqs = reader.decode(members)
            except (KeyError, ValueError) as e:
                problems.append(f"{rec['tar']}:{key}: {e}")
                continue
            for s in seqs:
                if s["seq"] in seen:
                    problems.append(f"sequence {s['seq']!r} in {seen[s['seq']]} and {rec['tar']}:{key}")
                seen[s["seq"]] = f"{rec['tar']}:{key}"
        if got != [b["key"] for b in rec["bundles"]]:
            problems.append(f"{rec['tar']}: keys differ from the done record")
    if (out / "sequences.parquet").exists():
        listed = pq.read_table(out / "sequences.parquet", columns=["seq"]).column("seq").to_pylist()
        if sorted(listed) != sorted(seen):
            problems.append(f"sequences.parquet lists {len(listed)} sequences, bundles hold {len(seen)}")
    return {"shards": n_shards, "samples": n_bundles, "problems": problems}
