"""A corpus mixing good inputs with every kind of damage the pipeline must quarantine."""

import json
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from uniaudio import audio

SR = 16000

# id -> reject reason (prefix) expected in rejects.parquet
EXPECTED = {
    "trunc": "truncated",
    "zero": "empty",
    "text": "unreadable",
    "nan": "non_finite",
    "silence": "silent",
    "short": "too_short",
    "long": "too_long",
    "locked": "permission",
    "clipped": "clipped",
    "badtext": "invalid_utf8",
    "gone": "missing",
    "neg": "invalid_manifest:duration",
    "1-2-0001": "invalid_utf8",
    "dup": "duplicate_id",
}
# ids that must land in shards: stereo 96 kHz, u-law and MP3 are valid inputs, resampled/mixed down
GOOD = ["good1", "stereo96k", "ulaw", "mp3", "listed-ok", "1-2-0000", "dup"]


def tone(seconds, sr=SR, amp=0.3):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * 330 * t)).astype(np.float32)


def make_bad_corpus(root: Path) -> Path:
    f = root / "files"
    f.mkdir(parents=True)
    audio.save(f / "good1.wav", tone(1.0), SR)
    (f / "good1.txt").write_text("a good file")
    sf.write(f / "stereo96k.wav", np.stack([tone(1.0, 96000), tone(1.0, 96000, 0.2)], 1), 96000)
    sf.write(f / "ulaw.wav", tone(1.0), SR, subtype="ULAW")
    sf.write(f / "mp3.mp3", tone(1.0), SR, format="MP3")
    good = audio.save(f / "tmp.flac", np.random.default_rng(0).uniform(-.3, .3, SR * 2).astype(np.float32), SR)
    (f / "trunc.flac").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    good.unlink()
    (f / "zero.wav").touch()
    (f / "text.wav").write_text("definitely not audio\n" * 10)
    nan = tone(1.0)
    nan[50] = np.nan
    sf.write(f / "nan.wav", nan, SR, subtype="FLOAT")
    audio.save(f / "silence.wav", np.zeros(SR, np.float32), SR)
    audio.save(f / "short.wav", tone(0.05), SR)
    audio.save(f / "long.wav", tone(25.0), SR)
    audio.save(f / "locked.wav", tone(1.0), SR)
    os.chmod(f / "locked.wav", 0)
    audio.save(f / "clipped.wav", np.sign(tone(1.0)) * 1.0, SR)
    audio.save(f / "badtext.wav", tone(1.0), SR)
    (f / "badtext.txt").write_bytes(b"caf\xe9 au lait \xff")

    rows = [{"id": "neg", "path": "files/good1.wav", "duration": -2.0},
            {"id": "gone", "path": "missing/nothere.flac"},
            {"id": "listed-ok", "path": "files/good1.wav", "offset": 0.2, "duration": 0.5},
            {"id": "dup", "path": "files/good1.wav"},
            {"id": "dup", "path": "files/ulaw.wav"}]
    (root / "listed.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    ch = root / "LibriSpeech" / "dev-clean" / "1" / "2"
    audio.save(ch / "1-2-0000.flac", tone(1.0), SR)
    audio.save(ch / "1-2-0001.flac", tone(1.0), SR)
    (ch / "1-2.trans.txt").write_bytes(b"1-2-0000 HELLO WORLD\n1-2-0001 BAD \xff\xfe BYTES\n")
    return root
