"""Tiny corpora in the layouts large corpora ship in, for the tests: WebDataset tar shards
(Emilia-style KEY.mp3 + KEY.json, LAION-style KEY.flac + KEY.txt) and Hugging Face-style Parquet
with an audio struct column, each with damaged items whose reject reason is known."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import soundfile as sf

FORMATS = {"mp3": ("MP3", "MPEG_LAYER_III"), "flac": ("FLAC", "PCM_16"), "wav": ("WAV", "PCM_16"),
           "opus": ("OGG", "OPUS")}


def speechlike(seed: int, seconds: float = 1.2, sr: int = 16000) -> np.ndarray:
    """A voiced-sounding signal (harmonics of a gliding F0, amplitude envelope): passes the
    pipeline's quality filters, differs per seed."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 110 + 40 * rng.random() + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    wav = sum(np.sin(k * phase) / k for k in range(1, 6)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)
    return (0.25 * wav / np.abs(wav).max() + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


def encode(wav: np.ndarray, fmt: str, sr: int = 16000) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wav, sr, format=FORMATS[fmt][0], subtype=FORMATS[fmt][1])
    return buf.getvalue()


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    return path


def make_wds(folder: Path) -> dict:
    """Three shards: Emilia-style mp3 + json, LAION-style flac + txt, and one with damage, then a
    truncated fourth. Returns {"good": {id: wav}, "rejects": {id: reason prefix}}."""
    good, rejects = {}, {}
    members = []
    for k in range(4):
        uid, wav = f"EN_B{k:05d}", speechlike(k)
        meta = {"id": uid, "text": f"utterance number {k}", "speaker": f"spk{k % 2}", "language": "en",
                "dnsmos": 3.2, "duration": 1.2}
        members += [(f"{uid}.json", json.dumps(meta).encode()), (f"{uid}.mp3", encode(wav, "mp3"))]
        good[uid] = wav
    write_tar(folder / "emilia-000000.tar", members)
    members = []
    for k in range(4, 7):
        key, wav = f"laion/clip{k}", speechlike(k)
        members += [(f"{key}.flac", encode(wav, "flac")), (f"{key}.txt", f"a caption for clip {k}".encode())]
        good[f"laion-clip{k}"] = wav
    write_tar(folder / "laion-000001.tar", members)
    wav = speechlike(20)
    members = [("badjson.flac", encode(wav, "flac")), ("badjson.json", b"{not json"),
               ("noaudio.json", json.dumps({"text": "no audio here"}).encode()),
               ("junk.flac", b"this is not audio at all" * 20), ("junk.json", b'{"text": "junk"}'),
               ("opus1.opus", encode(speechlike(21), "opus")), ("opus1.json", b'{"text": "an opus item"}')]
    good["opus1"] = speechlike(21)
    rejects.update({"badjson": "bad_sidecar", "noaudio": "no_audio", "junk": "unreadable"})
    write_tar(folder / "mixed-000002.tar", members)
    members = [(f"cut{k}.wav", encode(speechlike(30 + k), "wav")) for k in range(3)]
    data = write_tar(folder / "cut-000003.tar", members).read_bytes()
    (folder / "cut-000003.tar").write_bytes(data[: len(data) // 2])  # the third member and the end are gone
    good["cut0"] = speechlike(30)
    rejects["wds-cut-000003.tar-damaged"] = "damaged_tar"
    return {"good": good, "rejects": rejects}


def make_parquet(folder: Path) -> dict:
    """Hugging Face-style Parquet: an `audio` struct {bytes, path}, text and speaker columns, two row
    groups; one row with null bytes, one with undecodable bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    rows, good = [], {}
    for k in range(5):
        wav = speechlike(100 + k)
        rows.append({"id": f"hf-{k}", "audio": {"bytes": encode(wav, "flac"), "path": f"{k}.flac"},
                     "sentence": f"hugging face row {k}", "client_id": f"c{k % 2}", "up_votes": k})
        good[f"hf-{k}"] = wav
    rows.append({"id": "hf-null", "audio": {"bytes": None, "path": None}, "sentence": "null audio",
                 "client_id": "c0", "up_votes": 0})
    rows.append({"id": "hf-junk", "audio": {"bytes": b"junk" * 50, "path": "junk.flac"}, "sentence": "junk",
                 "client_id": "c1", "up_votes": 0})
    table = pa.Table.from_pylist(rows)
    pq.write_table(table, folder / "train-00000-of-00001.parquet", row_group_size=4)
    return {"good": good, "rejects": {"hf-null": "no_audio", "hf-junk": "unreadable"},
            "fields": {"text": "sentence", "speaker": "client_id"}}
