"""Speech in the LibriSpeech layout, spoken by espeak-ng.

Each demo speaker is an espeak-ng voice + variant + pitch + speed, so speakers differ in
accent, timbre, pitch and rate. Transcripts are written exactly as the words espeak-ng
was given, upper-cased as in LibriSpeech."""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .. import audio
from .transcripts import sentences
from .tools import require, run

SAMPLE_RATE = 16000  # LibriSpeech's rate


@dataclass(frozen=True)
class Speaker:
    id: str
    voice: str  # espeak-ng voice+variant
    pitch: int  # 0..99
    speed: int  # words per minute
    sex: str
    split: str


SPEAKERS = (
    # Pitches are spread within each sex so that no two speakers share a pitch range.
    Speaker("1034", "en-us+m3", 60, 160, "M", "train-clean-100"),
    Speaker("1089", "en-gb+f3", 20, 150, "F", "train-clean-100"),
    Speaker("1188", "en-gb-scotland+m1", 10, 170, "M", "train-clean-100"),
    Speaker("1221", "en-029+f2", 45, 140, "F", "train-clean-100"),
    Speaker("1284", "en-us+f4", 95, 175, "F", "train-clean-100"),
    Speaker("1320", "en-gb-x-rp+m7", 35, 145, "M", "train-clean-100"),
    # The held-out speakers are voices the offline ASR reads well (Whisper tiny.en: 10.5% WER
    # each on 24 demo sentences; en-gb-x-gbclan+f1 read 44%, en-us+m6 18%), so the demo's
    # speech leaderboards measure systems, not the ASR's trouble with a voice.
    Speaker("2300", "en-gb+f4", 70, 150, "F", "test-clean"),
    Speaker("2830", "en-us+m4", 45, 150, "M", "test-clean"),
)
CHAPTERS_PER_SPEAKER = 2
UTTS_PER_CHAPTER = 3


@dataclass(frozen=True)
class Utterance:
    speaker: Speaker
    chapter: str
    index: int
    text: str  # lower-case words, exactly what espeak-ng speaks

    @property
    def id(self) -> str:
        return f"{self.speaker.id}-{self.chapter}-{self.index:04d}"

    def path(self, root: Path) -> Path:
        return root / self.speaker.split / self.speaker.id / self.chapter / f"{self.id}.flac"


def plan(seed: int, scale: float) -> list[Utterance]:
    """Which utterances exist and what they say: a pure function of (seed, scale)."""
    rng = random.Random(f"speech-{seed}")
    per_chapter = max(1, round(UTTS_PER_CHAPTER * scale))
    out = []
    for spk in SPEAKERS:
        for c in range(CHAPTERS_PER_SPEAKER):
            chapter = str(100 + int(spk.id) % 97 * 10 + c)
            for i, text in enumerate(sentences(rng, per_chapter)):
                out.append(Utterance(spk, chapter, i, text))
    return out


def espeak_args(spk: Speaker, text: str, wav_path: str) -> list[str]:
    return [require("espeak-ng"), "-v", spk.voice, "-p", str(spk.pitch), "-s", str(spk.speed), "-w", wav_path, text]


def headroom(wav):
    """espeak-ng writes near full scale and resampling can overshoot past 1.0, which the 16-bit
    FLAC encoder would clip: such an utterance is scaled to a 0.99 peak instead."""
    peak = float(abs(wav).max()) if len(wav) else 0.0
    return wav / (peak / 0.99) if peak > 0.99 else wav


def synthesize(utt: Utterance, root: Path) -> Path:
    """Speak one utterance and store it as 16 kHz FLAC."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = f"{tmp}/raw.wav"
        run(espeak_args(utt.speaker, utt.text, raw))
        wav, _ = audio.load(raw, SAMPLE_RATE)
    return audio.save(utt.path(root), headroom(wav), SAMPLE_RATE)


def write_index_files(utts: list[Utterance], root: Path) -> None:
    """SPK-CHAP.trans.txt per chapter and SPEAKERS.TXT at the root, as LibriSpeech has."""
    chapters: dict[Path, list[Utterance]] = {}
    for u in utts:
        chapters.setdefault(u.path(root).parent, []).append(u)
    for folder, us in chapters.items():
        folder.mkdir(parents=True, exist_ok=True)
        lines = [f"{u.id} {u.text.upper()}" for u in sorted(us, key=lambda u: u.id)]
        (folder / f"{us[0].speaker.id}-{us[0].chapter}.trans.txt").write_text("\n".join(lines) + "\n")
    rows = [";ID  |SEX| SUBSET           |MINUTES| NAME"]
    for s in SPEAKERS:
        rows.append(f"{s.id:<5}| {s.sex} | {s.split:<16} | 0.00 | espeak-ng {s.voice} p{s.pitch} s{s.speed}")
    (root / "SPEAKERS.TXT").write_text("\n".join(rows) + "\n")
