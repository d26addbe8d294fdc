"""The one place audio is read and written.

Everything in uniaudio that touches an audio file goes through `load`, `info` or `save` (local
files, remote objects and container members: paths as `uniaudio.storage` reads them):
soundfile (libsndfile: WAV, FLAC, OGG/Vorbis, Opus, MP3, ...) for I/O, soxr for
resampling, float32 mono numpy arrays in memory. Every failure is an `AudioError`
whose `reason` is one short machine-readable word (used as the reject reason by the
pipeline and the failure reason by the benchmark) and whose message names the path.
"""

from __future__ import annotations

import errno
import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from . import storage

# Reasons are a closed set so that reject tables and benchmark failures can be grouped.
MISSING = "missing"
PERMISSION = "permission"
EMPTY = "empty"
UNREADABLE = "unreadable"
TRUNCATED = "truncated"
NON_FINITE = "non_finite"
UNSUPPORTED = "unsupported"
BAD_WINDOW = "bad_window"
REASONS = (MISSING, PERMISSION, EMPTY, UNREADABLE, TRUNCATED, NON_FINITE, UNSUPPORTED, BAD_WINDOW)

SAVE_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}
# lossless PCM by default; Ogg holds Opus (lossy, for compact copies: 8/12/16/24/48 kHz only)
DEFAULT_SUBTYPES = {"WAV": "PCM_16", "FLAC": "PCM_16", "OGG": "OPUS"}


class AudioError(Exception):
    """Any failure to read or write audio. `reason` is one of `REASONS`."""

    def __init__(self, path: str | os.PathLike, reason: str, detail: str = ""):
        assert reason in REASONS, reason
        self.path = str(path)
        self.reason = reason
        self.detail = detail
        super().__init__(f"{self.path}: {reason}" + (f" ({detail})" if detail else ""))

    def __reduce__(self):  # keep the fields when the error crosses a process (Ray, multiprocessing)
        return (AudioError, (self.path, self.reason, self.detail))


@dataclass(frozen=True)
class AudioInfo:
    path: str
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def _check_path(path: Path) -> None:
    """Distinguish missing, unreadable-permission and zero-byte before libsndfile does
    (it reports all three as 'System error' or 'Format not recognised')."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise AudioError(path, MISSING, "no such file") from None
    except PermissionError:
        raise AudioError(path, PERMISSION, "cannot stat file") from None
    if not path.is_file():
        raise AudioError(path, UNSUPPORTED, "not a regular file")
    if st.st_size == 0:
        raise AudioError(path, EMPTY, "zero-byte file")
    # A file with no read bit for anyone is refused even when root could read it: workers
    # on a cluster rarely run as root, and a run must not depend on who launched it.
    if not os.access(path, os.R_OK) or not st.st_mode & 0o444:
        raise AudioError(path, PERMISSION, "file is not readable (permission bits)")


def _wav_declared_data_bytes(f, size: int) -> tuple[int, int] | None:
    """For RIFF/WAVE data (a binary file object of `size` bytes): (declared size of the data
    chunk, bytes actually present).

    libsndfile silently clamps the frame count of a cut WAV to what is there, so a truncated
    WAV would otherwise load as a shorter, valid-looking file."""
    f.seek(0)
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= size:
        f.seek(pos)
        chunk = f.read(8)
        if len(chunk) < 8:
            return None
        cid, csize = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if cid == b"data":
            # 0 and 0xFFFFFFFF are used by streaming writers for "unknown length".
            if csize in (0, 0xFFFFFFFF):
                return None
            return csize, size - pos - 8
        pos += 8 + csize + (csize & 1)
    return None


def _check_wav_length(name: str | Path, f, size: int) -> None:
    """`info` and `load` both refuse a WAV whose data chunk is shorter than its header says."""
    try:
        declared = _wav_declared_data_bytes(f, size)
    except OSError as e:
        raise AudioError(name, UNREADABLE, str(e)) from None
    if declared is not None and declared[1] < declared[0]:
        raise AudioError(name, TRUNCATED, f"data chunk declares {declared[0]} bytes, {declared[1]} present")


def _source(path: str | os.PathLike):
    """(name, what soundfile opens) for a local file, a remote object or a container member
    (`uniaudio.storage`): those two are read into memory, never into a temporary file."""
    s = str(path)
    if storage.is_local(s):
        p = Path(storage.local(s))
        _check_path(p)
        with open(p, "rb") as f:
            _check_wav_length(p, f, p.stat().st_size)
        return p, str(p)
    try:
        data = storage.read_bytes(s)
    except storage.StorageError as e:
        if e.kind in ("denied", "unreachable"):  # the store's problem, not this item's: stop, do not reject
            raise
        raise AudioError(s, MISSING if e.kind == "missing" else UNREADABLE, str(e)) from None
    return _memory(data, s)


def _memory(data: bytes, name: str):
    """(name, a file object) for audio bytes in hand, with the checks a file on disk gets."""
    if not data:
        raise AudioError(name, EMPTY, "zero bytes")
    buf = io.BytesIO(data)
    _check_wav_length(name, buf, len(data))
    buf.seek(0)
    return name, buf


def _open_error(path: Path, err: Exception) -> AudioError:
    msg = str(err)
    if "Format not recognised" in msg or "not recognised" in msg.lower():
        return AudioError(path, UNREADABLE, "not a recognised audio format")
    if "unsupported" in msg.lower():
        return AudioError(path, UNSUPPORTED, msg)
    return AudioError(path, UNREADABLE, msg)


def info(path: str | os.PathLike) -> AudioInfo:
    """Header information without decoding samples (a remote object or a member is fetched
    whole). Raises `AudioError`."""
    return _info(*_source(path))


def info_bytes(data: bytes, name: str) -> AudioInfo:
    """Header information of an in-memory file (a tar member or a Parquet cell in hand)."""
    return _info(*_memory(data, name))


def _info(p, src) -> AudioInfo:
    try:
        with sf.SoundFile(src) as f:
            rate, channels, frames, fmt, subtype = int(f.samplerate), int(f.channels), int(f.frames), f.format, f.subtype
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise _open_error(p, e) from None
    if frames <= 0 or rate <= 0:
        raise AudioError(p, EMPTY, "no audio frames")
    return AudioInfo(str(p), rate, channels, frames, fmt, subtype)


def resample(wav: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    """Resample with soxr (HQ). Works on [frames] or [frames, channels] arrays."""
    if sr == target_sr:
        return wav
    if sr <= 0 or target_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {sr} -> {target_sr}")
    return soxr.resample(wav, sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def to_mono(wav: np.ndarray) -> np.ndarray:
    """Average the channels of a [frames, channels] array (identity on 1-D)."""
    if wav.ndim == 1:
        return wav
    return wav.mean(axis=1, dtype=np.float32)


def load(
    path: str | os.PathLike,
    sr: int | None = None,
    *,
    offset: float = 0.0,
    duration: float | None = None,
    mono: bool = True,
    data: bytes | None = None,
) -> tuple[np.ndarray, int]:
    """Read audio as float32 in [-1, 1].

    Returns (wav, sample_rate): wav is [frames] when `mono`, else [frames, channels].
    `offset`/`duration` (seconds) select a window, read without decoding the rest where
    the format allows seeking. `sr` resamples to that rate (soxr HQ); None keeps the
    file's rate. `path` may also be a remote object or a container member (`uniaudio.storage`):
    its bytes are decoded from memory. `data`: the bytes of `path` when the caller holds them
    already (a run of container members read at once), decoded the same way. Raises
    `AudioError` for every failure, never returns partial audio.
    """
    if offset < 0 or (duration is not None and duration <= 0):
        raise AudioError(path, BAD_WINDOW, f"offset={offset} duration={duration}")
    return _decode(*(_memory(data, str(path)) if data is not None else _source(path)), sr, offset, duration, mono)


def _decode(p, src, sr: int | None, offset: float, duration: float | None, mono: bool) -> tuple[np.ndarray, int]:
    """The decoding behind `load` and `decode_bytes`: one set of checks for every source."""
    try:
        with sf.SoundFile(src) as f:
            file_sr = int(f.samplerate)
            total = int(f.frames)
            start = int(round(offset * file_sr))
            if total > 0 and start >= total:
                raise AudioError(p, BAD_WINDOW, f"offset {offset}s is past the end ({total / file_sr:.3f}s)")
            want = -1 if duration is None else int(round(duration * file_sr))
            if start:
                f.seek(start)
            data = f.read(frames=want, dtype="float32", always_2d=True)
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        msg = str(e)
        if "lost sync" in msg or "truncated" in msg.lower() or "unexpected end" in msg.lower():
            raise AudioError(p, TRUNCATED, msg) from None
        raise _open_error(p, e) from None
    except MemoryError:
        raise AudioError(p, UNREADABLE, "header declares more samples than fit in memory") from None
    if data.shape[0] == 0:
        raise AudioError(p, EMPTY, "no audio frames")
    if want > 0 and data.shape[0] < want and start + data.shape[0] < total:
        raise AudioError(p, TRUNCATED, f"read {data.shape[0]} of {want} frames")
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise AudioError(p, NON_FINITE, f"{bad} NaN/Inf samples")
    wav = to_mono(data) if mono else data
    if sr is not None and sr != file_sr:
        wav = resample(wav, file_sr, sr)
        file_sr = sr
    return np.ascontiguousarray(wav, dtype=np.float32), file_sr


def save(path: str | os.PathLike, wav: np.ndarray, sr: int, *, subtype: str | None = None,
         compression_level: float | None = None) -> Path:
    """Write WAV, FLAC or Ogg Opus (chosen by suffix), creating parent folders. `subtype`
    defaults to PCM_16 (Opus for .ogg); `compression_level` in [0, 1] is libsndfile's (for
    Opus it sets the bitrate: 0.9 is ~32 kbps at 16 kHz).

    Written to a temporary name and renamed, so a crash never leaves a half file under
    the final name. Values outside [-1, 1] are clipped by the PCM encoder; NaN/Inf are
    refused because they would encode as silence or noise without a trace."""
    p = Path(path)
    fmt = SAVE_FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise AudioError(p, UNSUPPORTED, f"can only save {sorted(SAVE_FORMATS)}")
    arr = np.asarray(wav, dtype=np.float32)
    if arr.size == 0:
        raise AudioError(p, EMPTY, "refusing to write zero samples")
    if not np.isfinite(arr).all():
        raise AudioError(p, NON_FINITE, "refusing to write NaN/Inf samples")
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    try:
        sf.write(str(tmp), arr, int(sr), format=fmt, subtype=subtype or DEFAULT_SUBTYPES[fmt],
                 compression_level=compression_level)
        os.replace(tmp, p)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        code = PERMISSION if e.errno in (errno.EACCES, errno.EPERM) else UNREADABLE
        raise AudioError(p, code, str(e)) from None
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        tmp.unlink(missing_ok=True)
        raise AudioError(p, UNSUPPORTED, str(e)) from None
    return p


def encode_flac(wav: np.ndarray, sr: int) -> bytes:
    """FLAC bytes in memory (16-bit), for shard members."""
    import io

    arr = np.asarray(wav, dtype=np.float32)
    if arr.size == 0 or not np.isfinite(arr).all():
        raise AudioError("<memory>", EMPTY if arr.size == 0 else NON_FINITE, "cannot encode")
    buf = io.BytesIO()
    sf.write(buf, arr, int(sr), format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def decode_bytes(data: bytes, name: str = "<memory>") -> tuple[np.ndarray, int]:
    """Decode an in-memory file (a shard member) to float32 mono, as `load` decodes a file."""
    return _decode(*_memory(data, name), None, 0.0, None, True)
