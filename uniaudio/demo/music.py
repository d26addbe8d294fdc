"""Music in the MusicCaps layout: generated MIDI rendered by fluidsynth.

Each clip is a melody over a chord progression for one General MIDI instrument at a
chosen tempo, key and mode; the caption and aspect list are written from exactly those
choices (instrument, tempo, mood), as MusicCaps captions describe the audio."""

from __future__ import annotations

import csv
import random
import string
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mido

from .. import audio
from .tools import require, run, soundfont

SAMPLE_RATE = 22050
CLIP_SECONDS = 10.0  # MusicCaps clips are 10 s
CLIPS = 12  # at scale 1

# name -> (GM program 0-based, AudioSet label id, caption noun)
INSTRUMENTS = {
    "piano": (0, "/m/05r5c", "solo piano"),
    "acoustic guitar": (24, "/m/042v_gx", "acoustic guitar"),
    "violin": (40, "/m/07y_7", "violin"),
    "cello": (42, "/m/01xqw", "cello"),
    "flute": (73, "/m/0l14j_", "flute"),
    "trumpet": (56, "/m/07gql", "trumpet"),
    "organ": (19, "/m/013y1f", "church organ"),
}
MUSIC_LABEL = "/m/04rlf"
KEYS = ["C", "D", "E", "F", "G", "A", "B"]
KEY_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
MAJOR, MINOR = [0, 2, 4, 5, 7, 9, 11], [0, 2, 3, 5, 7, 8, 10]
# (mode, tempo band) -> mood words
MOODS = {("major", "fast"): "joyful", ("major", "slow"): "calm", ("minor", "fast"): "tense", ("minor", "slow"): "melancholic"}


@dataclass(frozen=True)
class Piece:
    ytid: str
    start_s: int
    instrument: str
    tempo: int
    key: str
    mode: str
    seed: int
    author_id: int
    is_eval: bool

    @property
    def speed(self) -> str:
        return "fast" if self.tempo >= 110 else "slow"

    @property
    def mood(self) -> str:
        return MOODS[(self.mode, self.speed)]

    @property
    def caption(self) -> str:
        noun = INSTRUMENTS[self.instrument][2]
        tempo_words = "an upbeat, fast tempo" if self.speed == "fast" else "a slow, relaxed tempo"
        return (f"This is a {self.mood} instrumental piece played on {noun} in {self.key} {self.mode} "
                f"at {tempo_words} of about {self.tempo} beats per minute. A simple melody moves over "
                f"sustained chords. There are no vocals or drums.")

    @property
    def aspects(self) -> list[str]:
        return [self.instrument, f"{self.speed} tempo", self.mood, f"{self.mode} key", "instrumental", "no vocals"]

    def path(self, root: Path) -> Path:
        return root / "audio" / f"{self.ytid}.wav"


def plan(seed: int, scale: float) -> list[Piece]:
    rng = random.Random(f"music-{seed}")
    out = []
    names = sorted(INSTRUMENTS)
    for i in range(max(1, round(CLIPS * scale))):
        ytid = "".join(rng.choice(string.ascii_letters + string.digits + "-_") for _ in range(11))
        out.append(Piece(ytid, rng.randrange(0, 200, 10), names[i % len(names)], rng.choice([66, 76, 120, 132]),
                         rng.choice(KEYS), rng.choice(["major", "minor"]), rng.randrange(2**31),
                         rng.randrange(1, 10), i % 4 == 0))
    return out


def midi(piece: Piece) -> mido.MidiFile:
    """A melody (channel 0) over a I-vi-IV-V or i-VI-iv-v progression (channel 1)."""
    rng = random.Random(piece.seed)
    scale = MAJOR if piece.mode == "major" else MINOR
    root = 60 + KEY_PC[piece.key]
    if root > 66:
        root -= 12
    program = INSTRUMENTS[piece.instrument][0]
    tpb = 480
    mf = mido.MidiFile(ticks_per_beat=tpb)
    beats = int(CLIP_SECONDS * piece.tempo / 60) + 2
    mel, chords = mido.MidiTrack(), mido.MidiTrack()
    mf.tracks += [mel, chords]
    mel.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(piece.tempo)))
    for track, ch in ((mel, 0), (chords, 1)):
        track.append(mido.Message("program_change", program=program, channel=ch, time=0))
    degree = 0
    for _ in range(beats):  # melody: a random walk on the scale, one note per beat
        degree = max(-3, min(9, degree + rng.choice([-2, -1, -1, 1, 1, 2, 0])))
        octave, step = divmod(degree, 7)
        note = root + 12 + 12 * octave + scale[step]
        mel.append(mido.Message("note_on", note=note, velocity=90, channel=0, time=0))
        mel.append(mido.Message("note_off", note=note, velocity=0, channel=0, time=tpb))
    progression = [0, 5, 3, 4]
    for bar in range(beats // 4 + 1):
        d = progression[bar % 4]
        notes = [root - 12 + scale[(d + k) % 7] + 12 * ((d + k) // 7) for k in (0, 2, 4)]
        for n in notes:
            chords.append(mido.Message("note_on", note=n, velocity=60, channel=1, time=0))
        for j, n in enumerate(notes):
            chords.append(mido.Message("note_off", note=n, velocity=0, channel=1, time=4 * tpb if j == 0 else 0))
    return mf


def synthesize(piece: Piece, root: Path) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        mid, raw = f"{tmp}/in.mid", f"{tmp}/out.wav"
        midi(piece).save(mid)
        run([require("fluidsynth"), "-ni", "-q", "-g", "0.6", "-r", str(SAMPLE_RATE), "-T", "wav", "-F", raw, soundfont(), mid])
        wav, sr = audio.load(raw, mono=False, duration=CLIP_SECONDS)
    wav = 0.8 * wav / max(1e-9, float(abs(wav).max()))  # fluidsynth renders quietly; normalise the peak
    return audio.save(piece.path(root), wav, sr)


def write_csv(pieces: list[Piece], root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    cols = ["ytid", "start_s", "end_s", "audioset_positive_labels", "aspect_list", "caption",
            "author_id", "is_balanced_subset", "is_audioset_eval"]
    with open(root / "musiccaps-public.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for p in pieces:
            labels = ",".join([MUSIC_LABEL, INSTRUMENTS[p.instrument][1]])
            w.writerow([p.ytid, p.start_s, p.start_s + int(CLIP_SECONDS), labels, repr(p.aspects), p.caption,
                        p.author_id, False, p.is_eval])
