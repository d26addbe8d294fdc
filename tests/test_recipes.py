import json

import numpy as np
import pytest

from uniaudio import audio
from uniaudio.pipeline.recipes import RECIPES, records
from uniaudio.pipeline.recipes.common import REJECT_KEY

SR = 16000


def wav(path, seconds=0.5, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    return audio.save(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr)


def test_registry_has_every_corpus():
    assert set(RECIPES) == {"librispeech", "libritts", "ljspeech", "vctk", "librilight", "audiocaps", "clotho",
                            "musiccaps", "folder", "wds", "parquet", "lhotse", "aishell"}
    with pytest.raises(KeyError, match="unknown recipe"):
        records("timit", "/tmp")


def test_librispeech_on_demo(demo_root):
    rows = list(records("librispeech", demo_root / "LibriSpeech"))
    assert len(rows) == 32 and all(r.domain == "speech" and r.text and r.duration > 0 for r in rows)
    test = list(records("librispeech", demo_root / "LibriSpeech", split="test-clean"))
    assert {r.speaker for r in test} == {"2300", "2830"} and all(r.extra["sex"] in "MF" for r in test)


def test_audiocaps_groups_captions(demo_root):
    rows = list(records("audiocaps", demo_root / "audiocaps"))
    assert {r.split for r in rows} == {"train", "val", "test"}
    ev = [r for r in rows if r.split == "test"]
    assert all(len(r.extra["captions"]) == 3 and r.caption == r.extra["captions"][0] for r in ev)
    assert all(r.domain == "sound" and r.duration == 5.0 for r in rows)


def test_musiccaps(demo_root):
    rows = list(records("musiccaps", demo_root / "musiccaps"))
    assert len(rows) == 8 and all(r.domain == "music" and r.sample_rate == 22050 and r.channels == 2 for r in rows)
    assert {r.split for r in rows} <= {"train", "eval"} and all(isinstance(r.extra["aspects"], list) for r in rows)


def test_ljspeech_real(ljspeech_mini):
    rows = list(records("ljspeech", ljspeech_mini))
    assert len(rows) == 32 and rows[0].id == "LJ001-0001" and rows[0].text.startswith("Printing")
    assert all(r.sample_rate == 22050 for r in rows)


def test_libritts(tmp_path):
    d = tmp_path / "train-clean-100" / "19" / "198"
    wav(d / "19_198_000000_000000.wav")
    (d / "19_198_000000_000000.normalized.txt").write_text("Hello there.")
    (d / "19_198_000000_000000.original.txt").write_text("Hello there!")
    wav(d / "19_198_000000_000001.wav")
    (d / "19_198_000000_000001.normalized.txt").write_bytes(b"bad \xff bytes")
    a, b = records("libritts", tmp_path)
    assert (a.text, a.speaker, a.split, a.extra["original_text"]) == ("Hello there.", "19", "train-clean-100", "Hello there!")
    assert b.text is None and b.extra[REJECT_KEY].startswith("invalid_utf8")


def test_vctk(tmp_path):
    (tmp_path / "txt" / "p225").mkdir(parents=True)
    (tmp_path / "txt" / "p225" / "p225_001.txt").write_text("Please call Stella.\n")
    wav(tmp_path / "wav48_silence_trimmed" / "p225" / "p225_001_mic1.flac")
    (r,) = records("vctk", tmp_path)
    assert (r.id, r.speaker, r.text) == ("p225_001_mic1", "p225", "Please call Stella.") and r.duration == 0.5


def test_librilight(tmp_path):
    d = tmp_path / "small" / "100" / "sea_fairies"
    wav(d / "seafairies_01_baum.flac", 1.0)
    (d / "seafairies_01_baum.json").write_text(json.dumps({"snr": 12.5, "book_meta": {"title": "The Sea Fairies"}}))
    (r,) = records("librilight", tmp_path)
    assert r.split == "small" and r.speaker == "100" and r.text is None
    assert r.extra["snr"] == 12.5 and r.extra["book_title"] == "The Sea Fairies"


def test_clotho(tmp_path):
    wav(tmp_path / "evaluation" / "rain on a roof.wav")
    (tmp_path / "clotho_captions_evaluation.csv").write_text(
        "file_name,caption_1,caption_2,caption_3,caption_4,caption_5\n"
        "rain on a roof.wav,Rain falls on a roof,Heavy rain,Drops hit metal,Rain pours,Water drips\n")
    (r,) = records("clotho", tmp_path)
    assert r.domain == "sound" and r.caption == "Rain falls on a roof" and len(r.extra["captions"]) == 5
    assert r.duration == 0.5


def test_folder_plain_and_manifest(tmp_path):
    wav(tmp_path / "a" / "one.wav")
    (tmp_path / "a" / "one.txt").write_text("first")
    wav(tmp_path / "two.flac")
    rows = list(records("folder", tmp_path))
    assert [(r.id, r.text) for r in rows] == [("a-one", "first"), ("two", None)]

    (tmp_path / "m.jsonl").write_text(
        json.dumps({"path": "two.flac", "id": "x", "caption": "a tone", "mood": "calm"}) + "\n"
        + json.dumps({"path": "two.flac", "id": "y", "duration": -1}) + "\n{not json\n")
    x, y, bad = records("folder", tmp_path, manifest="m.jsonl", domain="sound")
    assert x.caption == "a tone" and x.extra == {"mood": "calm"} and x.duration == 0.5
    assert y.duration == -1
    assert bad.extra[REJECT_KEY].startswith("bad_manifest_line")

    (tmp_path / "m.csv").write_text("path,text,offset,duration\ntwo.flac,hi,0.1,0.2\n")
    (c,) = records("folder", tmp_path, manifest="m.csv")
    assert (c.offset, c.duration, c.text) == (0.1, 0.2, "hi")


def test_aishell_layout_gives_mandarin_rows_and_rejects_a_wav_without_transcript(demo_root, tmp_path):
    """The demo's Mandarin corpus is in AISHELL-1's layout: rows in zh with the characters of the
    transcript (its word spaces dropped), speaker = the folder, split = the wav/ subfolder; a wav
    the transcript file does not list is a `no_transcript` reject, not an empty text."""
    import shutil

    from uniaudio.pipeline.recipes import records
    from uniaudio.pipeline.recipes.common import REJECT_KEY

    root = tmp_path / "aishell"
    shutil.copytree(demo_root / "aishell", root)
    listing = root / "data_aishell" / "transcript" / "aishell_transcript_v0.8.txt"
    lines = listing.read_text().splitlines()
    listing.write_text("\n".join(lines[1:]) + "\n")  # the first utterance loses its line
    rows = {r.id: r for r in records("aishell", root)}
    first = lines[0].split(" ", 1)[0]
    assert REJECT_KEY in rows[first].extra and "no_transcript" in rows[first].extra[REJECT_KEY]
    uid, words = lines[1].split(" ", 1)
    r = rows[uid]
    assert r.language == "zh" and r.text == words.replace(" ", "") and r.speaker == uid[6:11]
    assert {x.split for x in rows.values()} == {"train", "test"}
    assert all(x.duration > 0 for x in rows.values() if REJECT_KEY not in x.extra)
