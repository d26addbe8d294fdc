"""Sung phrases from a score (lyrics + notes), rendered offline by Festival's singing mode.

A score is a list of notes, one per lyric word: {"lyric": "sun", "midi": 55, "seconds": 0.5}.
Festival reads SINGING XML; we give it each note's frequency in Hz (FREQ) and length in
seconds (SECONDS) rather than NOTE / BEATS, because Festival's note names are an octave off
the scientific convention (its "A5" is 440 Hz) and its beat is 50/BPM seconds, not 60/BPM.
Only monosyllabic lyrics: Festival wants one note per syllable."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from .tools import require, run

SINGERS = ("kal_diphone", "ked_diphone")  # Festival's diphone voices follow the score; the HTS voice does not
MIDI_RANGE = (36, 84)  # C2..C6: what a score here may ask for
# The demo songs: monosyllabic words, so each word takes exactly one note
LYRICS = ("the sun will rise for us", "we walk by the sea", "my love is far from home", "the stars shine bright",
          "sing a song of joy", "the wind blows cold", "come and dance with me", "the bells ring out",
          "I see the light", "the moon is high", "rain falls on the town", "we sail at dawn")
# The training songs (`uniaudio data demo` -> singing/): other words than the test songs above, so
# the benchmark's svs items are never trained on
TRAIN_LYRICS = ("the birds fly south", "a ship goes out to sea", "we love the spring", "the fire burns low",
                "you hold my hand", "the snow falls down", "bring me the red rose", "the night is long",
                "let us go home", "the sky turns gold", "I hear the drums", "we ride at noon",
                "the old tree stands", "my heart is free", "the road runs west", "sweet dreams to you")
SCALE = (0, 2, 4, 5, 7, 9, 11)  # major scale steps
DURATIONS_S = (0.35, 0.5, 0.7)


def midi_hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((float(midi) - 69.0) / 12.0)


class ScoreError(ValueError):
    """A score that cannot be sung: no notes, a note without a lyric, pitch or length."""


def check_score(notes) -> list[dict]:
    """The notes of a score, validated; ScoreError names the first bad note."""
    if not isinstance(notes, list) or not notes:
        raise ScoreError(f"missing notes: the score has no notes (got {type(notes).__name__} {notes!r:.60})")
    for i, n in enumerate(notes):
        if not isinstance(n, dict):
            raise ScoreError(f"note {i}: expected an object with lyric, midi, seconds; got {n!r:.60}")
        lyric, midi, sec = n.get("lyric"), n.get("midi"), n.get("seconds")
        if not isinstance(lyric, str) or not lyric.strip() or len(lyric.split()) != 1:
            raise ScoreError(f"note {i}: lyric must be one word, got {lyric!r}")
        if not isinstance(midi, (int, float)) or not MIDI_RANGE[0] <= midi <= MIDI_RANGE[1]:
            raise ScoreError(f"note {i}: midi must be a number in {MIDI_RANGE}, got {midi!r}")
        if not isinstance(sec, (int, float)) or not 0.05 <= sec <= 5.0:
            raise ScoreError(f"note {i}: seconds must be in [0.05, 5], got {sec!r}")
    return notes


def festival_xml(notes: list[dict]) -> str:
    body = "".join(f'<PITCH FREQ="{midi_hz(n["midi"]):.2f}"><DURATION SECONDS="{float(n["seconds"]):.3f}">'
                   f'{escape(n["lyric"])}</DURATION></PITCH>\n' for n in check_score(notes))
    return ('<?xml version="1.0"?>\n<!DOCTYPE SINGING PUBLIC "-//SINGING//DTD SINGING mark up//EN" '
            '"Singing.v0_1.dtd" []>\n<SINGING BPM="60">\n' + body + "</SINGING>\n")


def sing(notes: list[dict], singer: str = SINGERS[0], sample_rate: int = 16000) -> tuple[np.ndarray, int]:
    """The score sung by a Festival diphone voice, float32 mono at `sample_rate`."""
    from .. import audio

    if singer not in SINGERS:
        raise ScoreError(f"unknown singer {singer!r}; Festival's singing mode here: {SINGERS}")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "song.xml").write_text(festival_xml(notes))
        run([require("text2wave"), "-eval", f"(voice_{singer})", "-mode", "singing", f"{tmp}/song.xml",
             "-o", f"{tmp}/song.wav"])
        return audio.load(f"{tmp}/song.wav", sample_rate)


def demo_score(k: int, seed: int = 0, lyrics: tuple[str, ...] = LYRICS, tag: str = "svs") -> list[dict]:
    """Song k of the demo: lyrics[k] on a seeded stepwise melody in C major, C3-C4 (the range
    Festival's male diphone voices sing cleanly), the last note held."""
    rng = random.Random(f"{tag}-{seed}-{k}")
    words = lyrics[k % len(lyrics)].split()
    degree = rng.randrange(len(SCALE))
    notes = []
    for i, w in enumerate(words):
        degree = min(7, max(0, degree + rng.choice((-2, -1, 1, 1, 2))))  # degree 7 = C4
        midi = 48 + 12 * (degree // 7) + SCALE[degree % 7]
        notes.append({"lyric": w, "midi": midi, "seconds": 0.9 if i == len(words) - 1 else rng.choice(DURATIONS_S)})
    return notes


def write_training_corpus(dest: Path, seed: int, scale: float = 1.0) -> dict:
    """The demo's singing corpus for training svs: TRAIN_LYRICS on seeded melodies, each singer in
    turn, as WAVs + `songs.jsonl` (the `folder` recipe's listing: id, path, text = the lyrics,
    speaker = the singer, extra.notes = the score). Returns {songs, seconds}."""
    import json

    from .. import audio

    dest.mkdir(parents=True, exist_ok=True)
    n = max(4, round(16 * scale))
    rows, seconds = [], 0.0
    for k in range(n):
        notes, singer = demo_score(k, seed, TRAIN_LYRICS, "svs-train"), SINGERS[k % len(SINGERS)]
        uid = f"song-{k:03d}"
        path = dest / f"{uid}.wav"
        if not path.is_file():
            wav, sr = sing(notes, singer)
            audio.save(path, wav, sr)
        seconds += sum(x["seconds"] for x in notes)
        rows.append({"id": uid, "path": path.name, "text": " ".join(x["lyric"] for x in notes), "speaker": singer,
                     "language": "en", "notes": notes})
    (dest / "songs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"root": str(dest), "songs": n, "score_seconds": round(seconds, 2)}
