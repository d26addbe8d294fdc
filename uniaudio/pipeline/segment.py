"""Voice-activity segmentation of long recordings (issue 42's first curation stage): in-the-wild
audio (podcasts, audiobooks, Emilia-style sources) comes as minutes-long files, longer than any
training context; this step cuts them into `min_seconds..max_seconds` segments of speech, as
Emilia's pipeline and NeMo Curator do before anything else.

Silero VAD (the `silero-vad` package ships its model, so it runs offline) finds speech regions;
consecutive regions are joined while the pause between them is at most `join_gap` and the
segment stays within `max_seconds` (a longer region is split by Silero at `max_seconds`); a
segment shorter than `min_seconds` is dropped and counted. Each segment becomes an ordinary
manifest row: id `{recording}_{start ms}`, the recording's path with the segment's offset and
duration, the recording's speaker (or, without one, the recording itself: same speaker = same
recording), and `extra.segment_of` / `extra.span` naming where it came from.

Every row of the listed domains is segmented (so a silent recording of any length is a "no
speech" reject), or with `longer_than` only those longer (or of unknown duration); the others
pass as they are. The segmented manifest (OUT/manifests/{prefix}.segmented.parquet) is written
once and planned in place of the input's own; the VAD runs as Ray tasks over batches of
recordings, `chunk` recordings in the driver's hands at a time. A recording with no speech, one
whose segments are all too short, or one that fails to decode becomes a row marked
`manifest.PLANNED_REJECT`, which the decode step turns into a reject with the reason (stage
`segment`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from .. import manifest, storage
from ..config import ConfigError
from ..manifest import Record
from .cluster import MapFn, serial_map

VAD_RATE = 16000


@dataclass
class SegmentSpec:
    min_seconds: float = 3.0
    max_seconds: float = 30.0
    join_gap: float = 1.0  # seconds of pause kept inside a segment
    threshold: float = 0.5  # Silero's speech probability
    pad: float = 0.1  # seconds kept around each speech region
    longer_than: float = 0.0  # rows up to this long pass unsegmented (0: every row is segmented)
    domains: list[str] = field(default_factory=lambda: ["speech"])
    batch: int = 8  # recordings per task
    chunk: int = 512  # recordings per round of tasks (the driver holds one round's segments)

    def validate(self) -> None:
        if not 0 < self.min_seconds < self.max_seconds:
            raise ConfigError("segment.min_seconds", f"need 0 < min_seconds < max_seconds, got {self.min_seconds} "
                                                     f"and {self.max_seconds}")
        if not 0 < self.threshold < 1:
            raise ConfigError("segment.threshold", f"a probability in (0, 1), got {self.threshold}")
        if self.join_gap < 0 or self.pad < 0 or self.longer_than < 0:
            raise ConfigError("segment", "join_gap, pad and longer_than must be >= 0")
        bad = sorted(set(self.domains) - set(manifest.DOMAINS))
        if bad or not self.domains:
            raise ConfigError("segment.domains", f"domains among {', '.join(manifest.DOMAINS)}, got {self.domains!r}")
        if self.batch < 1 or self.chunk < 1:
            raise ConfigError("segment.batch", "batch and chunk must be >= 1")


def plan_segments(regions: list[tuple[float, float]], total: float, spec: SegmentSpec) -> tuple[list, int]:
    """(segments [(start, end)] in seconds, regions dropped as too short) from speech regions:
    joined while the pause is <= join_gap and the span <= max_seconds, padded, clipped to the audio."""
    joined: list[list[float]] = []
    for a, b in regions:
        if joined and a - joined[-1][1] <= spec.join_gap and b - joined[-1][0] <= spec.max_seconds:
            joined[-1][1] = b
        else:
            joined.append([a, b])
    out, dropped = [], 0
    for a, b in joined:
        a, b = max(0.0, a - spec.pad), min(total, b + spec.pad)
        if b - a < spec.min_seconds:
            dropped += 1
        else:
            out.append((round(a, 3), round(b, 3)))
    return out, dropped


_VAD: list = []


def _vad():
    """Silero VAD, loaded once per worker process (its TorchScript model ships in the package)."""
    if not _VAD:
        try:
            from silero_vad import load_silero_vad
        except ImportError:
            raise RuntimeError("segment: the silero-vad package is missing (pip install silero-vad)") from None
        _VAD.append(load_silero_vad())
    return _VAD[0]


def speech_regions(wav: np.ndarray, spec: SegmentSpec) -> list[tuple[float, float]]:
    import torch
    from silero_vad import get_speech_timestamps

    ts = get_speech_timestamps(torch.from_numpy(np.ascontiguousarray(wav, np.float32)), _vad(),
                               threshold=spec.threshold, sampling_rate=VAD_RATE,
                               max_speech_duration_s=spec.max_seconds - 2 * spec.pad,
                               min_silence_duration_ms=100, return_seconds=True)
    return [(float(t["start"]), float(t["end"])) for t in ts]


def segment_batch(rows: list[dict], spec_dict: dict) -> list[dict]:
    """One task: decode each recording at 16 kHz, find its speech, cut it. Returns manifest rows
    (segments, or the recording marked as a planned reject with the reason)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one CPU per Ray task (restored: a serial map runs this in the driver)
    try:
        return [seg for r in rows for seg in _segment_one(r, SegmentSpec(**spec_dict))]
    finally:
        torch.set_num_threads(threads)


def _segment_one(r: dict, spec: SegmentSpec) -> list[dict]:
    from .. import audio

    rec, out = Record.from_row(r), []
    try:
        wav, _ = audio.load(rec.path, VAD_RATE, offset=rec.offset, duration=rec.duration)
    except audio.AudioError as e:
        return [_rejected(rec, e.reason, e.detail)]
    total = len(wav) / VAD_RATE
    segs, dropped = plan_segments(speech_regions(wav, spec), total, spec)
    if not segs:
        why = "no speech found" if not dropped else f"{dropped} speech region(s), all under {spec.min_seconds} s"
        return [_rejected(rec, "no_speech", f"{why} in {total:.1f} s")]
    for a, b in segs:
        out.append(Record(**{**rec.__dict__, "id": f"{rec.id}_{int(round(a * 1000)):08d}",
                             "offset": (rec.offset or 0.0) + a, "duration": round(b - a, 3),
                             "speaker": rec.speaker or rec.id,
                             "extra": {**rec.extra, "segment_of": rec.id, "span": [a, b],
                                       "segments_dropped": dropped}}).to_row())
    return out


def _rejected(rec: Record, reason: str, detail: str) -> dict:
    return Record(**{**rec.__dict__, "extra": manifest.planned_reject(rec.extra, "segment", reason, detail)}).to_row()


def _todo(r: dict, spec: SegmentSpec) -> bool:
    return r["domain"] in spec.domains and (r["duration"] is None or r["duration"] > spec.longer_than)


def build(spec: SegmentSpec, prefix: str, src: str, out: str, map_fn: MapFn = serial_map) -> tuple[str, dict]:
    """OUT/manifests/{prefix}.segmented.parquet from the input's manifest `src` (written once; a
    rerun reads it back) and its summary (recordings in, segments out, hours, rejects)."""
    dest = storage.join(out, "manifests", f"{prefix}.segmented.parquet")
    summary_path = storage.join(out, "manifests", f"{prefix}.segmented.json")
    if storage.exists(dest) and storage.exists(summary_path):
        return dest, json.loads(storage.read_text(summary_path))
    summary = {"recordings": 0, "hours_in": 0.0, "segments": 0, "hours_out": 0.0, "rejected": {}, "passed": 0}

    def rows() -> Iterator[dict]:
        pending: list[dict] = []

        def flush():
            batches = [(pending[i:i + spec.batch], spec.__dict__) for i in range(0, len(pending), spec.batch)]
            for result in map_fn(segment_batch, batches):
                for r in result:
                    extra = json.loads(r["extra"]) if r.get("extra") else {}
                    if manifest.PLANNED_REJECT in extra:
                        why = extra[manifest.PLANNED_REJECT]["reason"]
                        summary["rejected"][why] = summary["rejected"].get(why, 0) + 1
                    else:
                        summary["segments"] += 1
                        summary["hours_out"] += r["duration"] / 3600
                    yield r
            pending.clear()

        for rec in manifest.iter_records(src, validate_rows=False):  # paths resolved as the manifest says
            r = rec.to_row()
            if not _todo(r, spec):
                summary["passed"] += 1
                yield r
                continue
            summary["recordings"] += 1
            summary["hours_in"] += (r["duration"] or 0.0) / 3600
            pending.append(r)
            if len(pending) >= spec.chunk:
                yield from flush()
        yield from flush()

    manifest.write_manifest(dest, rows(), strict=False)
    summary = {k: round(v, 4) if isinstance(v, float) else v for k, v in summary.items()}
    storage.write_text(summary_path, json.dumps(summary, indent=2))
    return dest, summary
