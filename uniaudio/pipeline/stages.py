"""The per-shard work that Ray runs. One Ray Data row = one planned shard, so every step
sees a whole shard and a shard is written whole or not at all.

CPU clusters: `process_shard` decodes, filters, tokenizes and writes in one task.
GPU clusters: `decode_shard` (CPU task) -> `TokenizeStage` (GPU actor pool) -> `write_shard`
(CPU task), the audio travelling inside the row as a pickled payload.
Either way the driver only receives a small summary per shard."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import time

import numpy as np
import pyarrow.parquet as pq

from .. import audio, prosody, storage
from ..manifest import PLANNED_REJECT
from .member_spans import MemberSpans, read_order
from .plan import reject_row
from .shards import sample_key, unchanged, write_tar
from .simulate import SimulationError, render


def check_quality(wav: np.ndarray, sr: int, filters: dict) -> tuple[str, str] | None:
    """(reason, detail) when the decoded audio fails a quality filter, else None."""
    seconds = len(wav) / sr
    if seconds < filters["min_duration"]:
        return "too_short", f"{seconds:.3f}s < {filters['min_duration']}s"
    if seconds > filters["max_duration"]:
        return "too_long", f"{seconds:.1f}s > {filters['max_duration']}s"
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64))))
    dbfs = 20 * np.log10(rms) if rms > 0 else -np.inf
    if dbfs < filters["silence_dbfs"]:
        return "silent", f"RMS {dbfs:.1f} dBFS < {filters['silence_dbfs']} dBFS"
    clipped = float(np.mean(np.abs(wav) >= 0.999))
    if clipped > filters["max_clipped_fraction"]:
        return "clipped", f"{clipped:.2%} of samples at full scale"
    return None


def _decode(task: dict) -> tuple[list[dict], list[dict]]:
    """Read one shard's plan rows, decode and filter their audio: (items, rejects)."""
    with storage.arrow_file(task["plan_path"]) as f:
        rows = pq.ParquetFile(f).read_row_group(task["row_group"]).to_pylist()
    done: dict[int, dict] = {}
    rejects = []
    sr = task["sample_rate"]
    # read in source order (members of one tar or Parquet row group together, files by folder;
    # runs of tar members in one request each), keep the planned order for writing: the shard's
    # bytes do not depend on how it was read
    order = sorted(range(len(rows)), key=lambda i: read_order(rows[i]["path"], rows[i]["offset"]))
    spans = MemberSpans([rows[i]["path"] for i in order])
    for i in order:
        row = rows[i]
        if row.get("extra") and f'"{PLANNED_REJECT}"' in row["extra"]:  # segmentation / simulation said no
            r = json.loads(row["extra"])[PLANNED_REJECT]
            rejects.append((i, reject_row(row, r["reason"], r["detail"], row["duration"], r["stage"])))
            continue
        try:
            wav, _ = audio.load(row["path"], sr, offset=row["offset"] or 0.0, duration=row["duration"],
                                data=spans.read(row["path"]))
        except audio.AudioError as e:
            rejects.append((i, reject_row(row, e.reason, e.detail, row["duration"], "decode")))
            continue
        derived = bool(row.get("extra")) and '"sim_task"' in row["extra"]
        if derived:  # a simulated pair: rendered from its sources
            try:
                wav = render(json.loads(row["extra"]), wav, sr)
            except SimulationError as e:
                rejects.append((i, reject_row(row, e.reason, e.detail, row["duration"], "simulate")))
                continue
        bad = check_quality(wav, sr, task["filters"])
        if bad:
            rejects.append((i, reject_row(row, bad[0], bad[1], len(wav) / sr, "filter")))
            continue
        measure = task.get("measure", ())
        item = done[i] = {"row": row, "wav": wav}
        if task.get("dedup"):  # the decoded audio's identity, as 16-bit samples at the engine's rate
            pcm = np.round(np.clip(wav, -1.0, 1.0) * 32767).astype("<i2").tobytes()
            item["measures"] = {"audio_sha256": hashlib.sha256(pcm).hexdigest()}
        if row["domain"] != "speech" or derived or not measure:
            continue
        text, m = row.get("text"), {}
        if "asr" in measure and not (text or "").strip():  # a transcript where the corpus has none
            try:
                text = m["asr_text"] = _asr().transcribe([audio.resample(wav, sr, 16000)])[0]
                m.update(asr_model="whisper tiny.en (faster-whisper, int8, beam 5)", asr_language="en")
            except Exception as e:  # noqa: BLE001 - one item's ASR failure is that item's, the run goes on
                m["asr_error"] = f"{type(e).__name__}: {e}"
        if "prosody" in measure:
            m.update(prosody.measure(wav, sr, text))
            bounds = task["filters"].get("speech_rate")
            if bounds and m.get("words_per_s") is not None and not bounds[0] <= m["words_per_s"] <= bounds[1]:
                del done[i]
                rejects.append((i, reject_row(row, "speech_rate", f"{m['words_per_s']:.2f} words/s outside "
                                              f"[{bounds[0]}, {bounds[1]}]", len(wav) / sr, "speech_rate")))
                continue
        if m:
            item.setdefault("measures", {}).update(m)
    if "dnsmos" in task.get("measure", ()):
        _quality(done, rejects, task, sr)
    return [done[i] for i in sorted(done)], [r for _, r in sorted(rejects, key=lambda x: x[0])]


_ASR: list = []


def _asr():
    """Whisper tiny.en (packaged, offline), loaded once per worker process."""
    if not _ASR:
        from .. import transcribers

        _ASR.append(transcribers.load("faster-whisper"))
    return _ASR[0]


_DNSMOS: list = []


def _quality(done: dict, rejects: list, task: dict, sr: int) -> None:
    """DNSMOS of the shard's speech items in one batch (`measure: [dnsmos]`), into their measures;
    with `filters.min_dnsmos` an item whose OVRL is below it is a reject (stage `quality`, the
    value in the detail). An item DNSMOS cannot score (under 0.5 s) keeps the reason and stays."""
    from .. import dnsmos

    todo = [i for i, it in done.items() if it["row"]["domain"] == "speech"  # not the simulated (noisy) pairs
            and '"sim_task"' not in (it["row"].get("extra") or "")]
    if not todo:
        return
    if not _DNSMOS:  # one scorer per worker process (its ONNX sessions load once)
        _DNSMOS.append(dnsmos.DNSMOSScorer())
    wavs = [done[i]["wav"] if sr == dnsmos.SR else audio.resample(done[i]["wav"], sr, dnsmos.SR) for i in todo]
    floor = task["filters"].get("min_dnsmos")
    for i, wav, res in zip(todo, wavs, _DNSMOS[0].score(wavs)):
        m = done[i].setdefault("measures", {})
        if isinstance(res, Exception):
            m["dnsmos_error"] = str(res)
            continue
        m.update({k: round(v, 4) for k, v in res.items()})
        if floor is not None and res["dnsmos_ovrl"] < floor:
            row = done.pop(i)["row"]
            rejects.append((i, reject_row(row, "low_quality", f"DNSMOS OVRL {res['dnsmos_ovrl']:.2f} < {floor}",
                                          len(wav) / dnsmos.SR, "quality")))


def _tokenize(tok, items: list[dict], rejects: list[dict], sr: int) -> list[dict]:
    """Replace each item's audio by its codes; a tokenizer error rejects that item only."""
    from ..tokenize import TokenizerError

    wavs = [it["wav"] for it in items]
    try:
        codes = tok.encode_batch(wavs, sr)
    except TokenizerError:  # isolate the bad item instead of failing the shard
        codes = []
        for w in wavs:
            try:
                codes.append(tok.encode(w, sr))
            except TokenizerError as e:
                codes.append(e)
    out = []
    for it, c in zip(items, codes):
        if isinstance(c, Exception):
            rejects.append(reject_row(it["row"], "tokenizer_error", str(c), len(it["wav"]) / sr, "tokenize"))
            continue
        out.append({"row": it["row"], "codes": np.asarray(c, dtype=np.int16), "seconds": len(it["wav"]) / sr,
                    "measures": it.get("measures")})
    return out


_TOKENIZERS: dict[str, object] = {}


def _cached_tokenizer(name: str, options: dict, device: str | None = None):
    """One tokenizer per worker process: Ray reuses workers, so a model loads once."""
    from ..tokenize import get

    key = json.dumps([name, options, device], sort_keys=True)
    if key not in _TOKENIZERS:
        opts = dict(options)
        if device is not None:
            opts.setdefault("device", device)
        _TOKENIZERS[key] = get(name, **opts)
    return _TOKENIZERS[key]


def process_shard(task: dict) -> dict:
    """CPU clusters: decode, tokenize and write a shard in one task (no audio crosses the
    object store; an actor pool would only pin CPUs away from decoding)."""
    task = dict(task, started=time.time())
    items, rejects = _decode(task)
    desc = None
    if task["tokenizer"] != "none":
        tok = _cached_tokenizer(task["tokenizer"], task["tokenizer_options"])
        items, desc = _tokenize(tok, items, rejects, task["sample_rate"]), tok.describe()
    return _write(task, items, rejects, desc)


def decode_shard(task: dict) -> dict:
    """GPU clusters, stage 1 (CPU task): decode + filter, audio passed on in the row."""
    task = dict(task, started=time.time())
    items, rejects = _decode(task)
    return dict(task, payload=pickle.dumps({"items": items, "rejects": rejects}, protocol=5))


class TokenizeStage:
    """GPU clusters, stage 2 (actor pool): the tokenizer loads once per actor."""

    def __init__(self, name: str, options: dict, device: str | None = None):
        self.tok = _cached_tokenizer(name, options, device)

    def __call__(self, row: dict) -> dict:
        data = pickle.loads(row["payload"])
        items = _tokenize(self.tok, data["items"], data["rejects"], row["sample_rate"])
        payload = {"items": items, "rejects": data["rejects"], "tokenizer": self.tok.describe()}
        return dict(row, payload=pickle.dumps(payload, protocol=5))


def _node_id() -> str | None:
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    except Exception:  # provenance only; never fail a shard over it
        return None


def write_shard(row: dict) -> dict:
    """GPU clusters, stage 3 (CPU task): write what the actor produced."""
    data = pickle.loads(row["payload"])
    return _write(row, data["items"], data["rejects"], data.get("tokenizer"))


def _write(row: dict, items: list[dict], rejects: list[dict], tokenizer: dict | None) -> dict:
    """Write the shard tar (if it has samples) and then its done record; return a summary. The
    commit protocol, the same on a disk and on object storage (no atomic rename there): the tar
    is put whole first, the done record (with the tar's checksum, size and time) only after it,
    so a done record always names a complete tar; a tar without a record is written again."""
    out = row["out"]
    samples, index = [], []
    for it in items:
        r = it["row"]
        key = sample_key(r["id"])
        meta = {k: v for k, v in r.items() if k != "shard"}
        meta["extra"] = json.loads(meta["extra"]) if meta.get("extra") else {}
        if tokenizer:
            codes = it["codes"]
            seconds, frames = it["seconds"], int(codes.shape[1])
            buf = io.BytesIO()
            np.save(buf, codes)
            members = {"codes.npy": buf.getvalue()}
            meta["tokenizer"] = tokenizer
        else:
            wav = it["wav"]
            seconds, frames = len(wav) / row["sample_rate"], len(wav)
            members = {"flac": audio.encode_flac(wav, row["sample_rate"])}
            meta["tokenizer"] = {"name": "none", "sample_rate": row["sample_rate"]}
        meta.update(decoded_seconds=seconds, frames=frames, key=key)
        if it.get("measures") is not None:
            meta["measures"] = it["measures"]
        members["json"] = json.dumps(meta, ensure_ascii=False, sort_keys=True).encode()
        if r.get("text"):
            members["txt"] = r["text"].encode()
        samples.append((key, members))
        index.append({"key": key, "id": r["id"], "corpus": r["corpus"], "domain": r["domain"],
                      "frames": frames, "seconds": seconds,
                      "measures": json.dumps(it["measures"], sort_keys=True) if it.get("measures") else None})
    record = {"shard": row["shard"], "name": row["name"], "prefix": row["prefix"], "tar": None, "sha256": None,
              "bytes": 0, "samples": index, "rejects": rejects, "started": row.get("started"), "finished": time.time(),
              "node": _node_id(), "pid": os.getpid()}
    if samples:
        tar = storage.join(out, "shards", f"{row['name']}.tar")
        sha, size = write_tar(tar, samples)
        record.update(tar=f"{row['name']}.tar", sha256=sha, bytes=size, mtime_ns=storage.stat(tar)[1])
    storage.write_text(storage.join(out, "done", f"{row['name']}.json"), json.dumps(record))
    return {"name": row["name"], "samples": len(index), "rejects": len(rejects),
            "seconds": float(sum(i["seconds"] for i in index)), "bytes": record["bytes"]}


def is_done(out: str, name: str, rehash: bool = False) -> bool:
    """A shard is done when its done record exists and its tar matches it. The tar is
    re-hashed only when its size or time differ from the record (or `rehash`): resuming a
    165k-hour run must not read every finished byte again. `pipeline verify` and
    `pipeline run --rehash` check every checksum (e.g. after a disk error that kept mtime).
    `out` is a local folder or a prefix in object storage."""
    try:
        rec = json.loads(storage.read_text(storage.join(str(out), "done", f"{name}.json")))
    except storage.StorageError as e:
        if e.kind == "missing":
            return False
        raise
    except ValueError:  # unreadable record (written by hand or by an older version): redo the shard
        return False
    if rec["tar"] is None:
        return True
    return unchanged(storage.join(str(out), "shards", rec["tar"]), rec, rehash=rehash)
