"""The per-shard work that Ray runs. One Ray Data row = one planned shard, so every step
sees a whole shard and a shard is written whole or not at all.

CPU clusters: `process_shard` decodes, filters, measures, tokenizes and writes in one task.
GPU clusters: `decode_shard` (CPU task) -> [`MeasureStage` (actor pool, GPUs per `ray.num_gpus`)]
-> `TokenizeStage` (GPU actor pool) -> `write_shard` (CPU task), the audio travelling inside the
row as a pickled payload.
Either way the driver only receives a small summary per shard."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
import time
from dataclasses import asdict

import numpy as np
import pyarrow.parquet as pq

from .. import audio, prosody, storage, textnorm
from ..manifest import PLANNED_REJECT
from .config import CHECK_NORMALIZER, ASRSpec, check_rule
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


def _decode(task: dict) -> tuple[dict[int, dict], list[tuple[int, dict]]]:
    """Read one shard's plan rows, decode and filter their audio: ({position: item}, [(position,
    reject)]); positions are the plan's order, which the shard is written in."""
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
        if _derived(row):  # a simulated pair: rendered from its sources
            try:
                wav = render(json.loads(row["extra"]), wav, sr)
            except SimulationError as e:
                rejects.append((i, reject_row(row, e.reason, e.detail, row["duration"], "simulate")))
                continue
        bad = check_quality(wav, sr, task["filters"])
        if bad:
            rejects.append((i, reject_row(row, bad[0], bad[1], len(wav) / sr, "filter")))
            continue
        item = done[i] = {"row": row, "wav": wav}
        if task.get("dedup"):  # the decoded audio's identity, as 16-bit samples at the engine's rate
            pcm = np.round(np.clip(wav, -1.0, 1.0) * 32767).astype("<i2").tobytes()
            item["measures"] = {"audio_sha256": hashlib.sha256(pcm).hexdigest()}
    return done, rejects


def _ordered(done: dict[int, dict], rejects: list[tuple[int, dict]]) -> tuple[list[dict], list[dict]]:
    return [done[i] for i in sorted(done)], [r for _, r in sorted(rejects, key=lambda x: x[0])]


def _derived(row: dict) -> bool:
    return bool(row.get("extra")) and '"sim_task"' in row["extra"]


def _measure_all(done: dict[int, dict], rejects: list, task: dict, device: str | None = None) -> None:
    """The `measure:` step over a shard's decoded items (speech rows, not simulated pairs): per
    item transcribe / transcript check / prosody, then DNSMOS in one batch; rejects join
    `rejects` with their position. `dedup` adds the near-duplicate key after the transcripts."""
    sr, measure = task["sample_rate"], task.get("measure", ())
    for i in sorted(done):
        item = done[i]
        row = item["row"]
        if measure and row["domain"] == "speech" and not _derived(row):
            bad = _measure(item, task, sr, device)
            if bad:
                del done[i]
                rejects.append((i, reject_row(row, *bad[:2], len(item["wav"]) / sr, bad[2])))
                continue
        if task.get("dedup"):
            _near_key(item)
    if "dnsmos" in measure:
        _quality(done, rejects, task, sr, device)


def _near_key(item: dict) -> None:
    """The near-duplicate key (`dedup: true`): corpus, speaker and the transcript (the corpus's,
    else the ASR's) lower-cased without punctuation; items that share it and last within 5 % of
    the first one's duration are listed as near duplicates (run.py). No speaker or no text: none."""
    row, m = item["row"], item["measures"]
    text = (row.get("text") or "").strip() or m.get("asr_text") or ""
    words = re.sub(r"[^\w\s']", " ", text.lower()).split()
    if row.get("speaker") and words:
        key = "\x00".join([row["corpus"] or "", row["speaker"], " ".join(words)])
        m["near_key"] = hashlib.sha256(key.encode()).hexdigest()[:24]


DEFAULT_ASR = asdict(ASRSpec())  # the measure step's ASR when the config sets none


def _measure(item: dict, task: dict, sr: int, device: str | None = None) -> tuple[str, str, str] | None:
    """A speech item's per-item measures (`measure:`) into item["measures"]; (reason, detail,
    stage) when one of them rejects it. Order: transcribe (rows without text) or transcript check
    (rows with text), word timings (one ASR pass with them), then prosody and the speech-rate
    bounds, which count the words."""
    row, wav, measure, filters = item["row"], item["wav"], task.get("measure", ()), task["filters"]
    text, m = row.get("text"), {}
    has_text = bool((text or "").strip())
    check = "transcript_check" in measure and has_text
    needs_text = ("asr" in measure and not has_text) or check
    spec = task.get("asr") or DEFAULT_ASR
    auto = spec["language"] == "auto"
    lang = row.get("language") or (None if auto else "en")
    same = auto or textnorm.primary_language(lang) == textnorm.primary_language(spec["language"])
    model = f"{spec['model']} ({spec['backend']})"
    if "words" in measure and not same and not needs_text:  # timings only: the row stays, without them
        m["words_error"] = f"language {row['language']!r}: the word aligner ({model}) is set to {spec['language']!r}"
    elif needs_text or "words" in measure:
        stage = "transcript_check" if check else "transcribe"
        if not same:
            return "unsupported_language", f"language {row.get('language')!r}: the ASR ({model}) is set to " \
                                           f"{spec['language']!r} (pipeline config `asr:`)", stage
        try:
            x = [audio.resample(wav, sr, 16000)]
            if lang is None:  # `asr.language: auto` and the corpus names none: Whisper identifies it
                lang, prob = _asr(device, spec).detect_language(x[0])
                m.update(language_detected=lang, language_prob=round(prob, 4))
            if "words" in measure:  # the speech_edit sentences cut a word out by these
                heard, words = _asr(device, spec).transcribe_words(x, language=textnorm.primary_language(lang))[0]
                m["words"] = [list(w) for w in words]
            else:
                heard = _asr(device, spec).transcribe(x, language=textnorm.primary_language(lang))[0]
        except Exception as e:  # noqa: BLE001 - one item's ASR failure is that item's, the run goes on
            return "asr_failed", f"{type(e).__name__}: {e}", stage
        m.update(asr_text=heard, asr_model=model, asr_language=textnorm.primary_language(lang))
        if check:
            rule = check_rule(lang)
            wer = _wer(text, heard, *rule)
            m.update(asr_wer=None if wer is None else round(wer, 4), asr_wer_normalizer=rule[0])
            bound = filters.get("max_wer")
            if bound is not None and wer is not None and wer > bound:
                return "transcript_mismatch", f"WER {wer:.2f} > {bound} (heard {heard[:80]!r})", stage
        elif not has_text:
            text = heard
    if "semantic" in measure:  # content codes (vc's condition), a member of their own in the tar
        try:
            item["semantic"] = semantic_tokenizer(device).semantic_codes(wav, sr).astype(np.int16)
        except Exception as e:  # noqa: BLE001 - one item's failure is that item's, the run goes on
            return "semantic_failed", f"{type(e).__name__}: {e}", "semantic"
        m["semantic_frames"] = int(item["semantic"].shape[1])
    if "prosody" in measure:
        m.update(prosody.measure(wav, sr, text))
        bounds = filters.get("speech_rate")
        if bounds and m.get("words_per_s") is not None and not bounds[0] <= m["words_per_s"] <= bounds[1]:
            return "speech_rate", f"{m['words_per_s']:.2f} words/s outside [{bounds[0]}, {bounds[1]}]", "speech_rate"
    if m:
        item.setdefault("measures", {}).update(m)
    return None


def _wer(ref: str, hyp: str, normalizer: str = CHECK_NORMALIZER, language: str = "en") -> float | None:
    """WER of an ASR pass against the row's transcript, both normalised; None when the
    transcript normalises to nothing (no words to compare)."""
    norm = textnorm.text_normalizer(normalizer, language)
    ref_n, hyp_n = norm(ref), norm(textnorm.hypothesis_rule(normalizer, language)(hyp))
    if not ref_n.split():
        return None
    c = textnorm.error_counts(ref_n, hyp_n)
    return (c["S"] + c["D"] + c["I"]) / (c["S"] + c["D"] + c["H"])


SEMANTIC_TOKENIZER = "uniaudio-factorized"  # its semantic rows: the content codes of `measure: [semantic]`


def semantic_tokenizer(device: str | None = None):
    return _cached_tokenizer(SEMANTIC_TOKENIZER, {}, device)


_ASR: dict = {}


def _asr(device: str | None = None, spec: dict | None = None):
    """The measure step's ASR (`asr:` in the pipeline config; default the packaged Whisper tiny.en),
    loaded once per worker process, device and spec."""
    spec = spec or DEFAULT_ASR
    key = (device, json.dumps(spec, sort_keys=True))
    if key not in _ASR:
        from .. import transcribers

        kw = dict(spec.get("options") or {})
        if device == "cuda" and spec["backend"] == "faster-whisper":
            kw = {"device": "cuda", "compute_type": "float16", **kw}
        elif device == "cuda":
            kw.setdefault("device", "cuda")
        language = "en" if spec["language"] == "auto" else spec["language"]  # auto: each call names its language
        _ASR[key] = transcribers.load(spec["backend"], model=spec["model"], language=language, **kw)
    return _ASR[key]


_DNSMOS: dict = {}


def _quality(done: dict, rejects: list, task: dict, sr: int, device: str | None = None) -> None:
    """DNSMOS of the shard's speech items in one batch (`measure: [dnsmos]`), into their measures;
    with `filters.min_dnsmos` an item whose OVRL is below it is a reject (stage `quality`, the
    value in the detail). An item DNSMOS cannot score (under 0.5 s) keeps the reason and stays."""
    from .. import dnsmos

    todo = [i for i, it in done.items() if it["row"]["domain"] == "speech"  # not the simulated (noisy) pairs
            and not _derived(it["row"])]
    if not todo:
        return
    if device not in _DNSMOS:  # one scorer per worker process (its ONNX sessions load once)
        import onnxruntime as ort

        # on a GPU actor when onnxruntime-gpu is installed; the CPU package scores on the CPU
        gpu = device == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers()
        _DNSMOS[device] = dnsmos.DNSMOSScorer(device="cuda" if gpu else "cpu")
    wavs = [done[i]["wav"] if sr == dnsmos.SR else audio.resample(done[i]["wav"], sr, dnsmos.SR) for i in todo]
    floor = task["filters"].get("min_dnsmos")
    for i, wav, res in zip(todo, wavs, _DNSMOS[device].score(wavs)):
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
                    "measures": it.get("measures"), "semantic": it.get("semantic")})
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
    """CPU clusters: decode, measure, tokenize and write a shard in one task (no audio crosses
    the object store; an actor pool would only pin CPUs away from decoding)."""
    task = dict(task, started=time.time())
    done, rejects = _decode(task)
    _measure_all(done, rejects, task)
    items, rejects = _ordered(done, rejects)
    desc = None
    if task["tokenizer"] != "none":
        tok = _cached_tokenizer(task["tokenizer"], task["tokenizer_options"])
        items, desc = _tokenize(tok, items, rejects, task["sample_rate"]), tok.describe()
    return _write(task, items, rejects, desc)


def decode_shard(task: dict, measure: bool = True) -> dict:
    """Staged runs, stage 1 (CPU task): decode + filter (+ the measures, unless a MeasureStage
    pool runs them), audio passed on in the row."""
    task = dict(task, started=time.time())
    done, rejects = _decode(task)
    if measure:
        _measure_all(done, rejects, task)
    return dict(task, payload=pickle.dumps({"done": done, "rejects": rejects}, protocol=5))


class MeasureStage:
    """Staged runs (`ray.num_gpus.measure`, or `ray.measure_actors`): the measure step's models
    (Whisper, DNSMOS) load once per actor, on its GPU when it has one."""

    def __init__(self, device: str | None = None):
        self.device = device

    def __call__(self, row: dict) -> dict:
        data = pickle.loads(row["payload"])
        _measure_all(data["done"], data["rejects"], row, self.device)
        return dict(row, payload=pickle.dumps(data, protocol=5))


class TokenizeStage:
    """Staged runs (GPU clusters, or `ray.tokenizer_actors`): the tokenizer loads once per actor."""

    def __init__(self, name: str, options: dict, device: str | None = None):
        self.tok = _cached_tokenizer(name, options, device)

    def __call__(self, row: dict) -> dict:
        data = pickle.loads(row["payload"])
        items, rejects = _ordered(data["done"], data["rejects"])
        items = _tokenize(self.tok, items, rejects, row["sample_rate"])
        payload = {"items": items, "rejects": rejects, "tokenizer": self.tok.describe()}
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
    if "done" in data:  # no tokenize stage ran (tokenizer: none)
        return _write(row, *_ordered(data["done"], data["rejects"]), None)
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
        if it.get("semantic") is not None:
            buf = io.BytesIO()
            np.save(buf, it["semantic"])
            members["semantic.npy"] = buf.getvalue()
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
