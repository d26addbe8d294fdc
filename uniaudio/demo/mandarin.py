"""Mandarin speech in AISHELL-1's layout, spoken by espeak-ng's Mandarin voice (`cmn-latn-pinyin`):
the demo's second language (issue 43).

    DIR/data_aishell/wav/{train,test}/SPK/BAC009SPKWNNNN.wav
    DIR/data_aishell/transcript/aishell_transcript_v0.8.txt   (id, then the words, space-separated)

Sentences are drawn from small word lists (who, when, how, what: 3-4 s each, long enough to be a
3 s speaker prompt) with numbers written as characters,
as AISHELL's transcripts have them; each speaker is that voice with a variant, pitch and rate
of its own. Pinyin (with tone numbers) is written beside the transcript in `pinyin.txt`."""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .. import audio
from .speech import SAMPLE_RATE, headroom
from .tools import require, run

WHO = ("小明", "我的朋友", "老师", "妈妈", "那位医生", "这个学生", "他的哥哥", "我们")
WHEN = ("今天上午", "昨天下午", "星期天早上", "这个周末", "昨天晚上")
HOW = ("和朋友一起", "一个人安静地", "很高兴地", "跟家里人一起", "又一次")
WHAT = ("在公园里散步", "买了三本新书", "做了一顿晚饭", "打开了窗户", "喝了两杯茶", "去了北京", "看了一部电影",
        "写了一封长信", "坐火车回家", "学习中文")


@dataclass(frozen=True)
class Speaker:
    id: str  # AISHELL's S + four digits
    voice: str
    pitch: int
    speed: int
    split: str


# espeak-ng's Mandarin voice is `cmn-latn-pinyin`: Debian's 1.51 `cmn` turns characters into pinyin
# and reads that as English ("ming2" -> "ming two"). Speeds give 4-5 syllables/s, read Mandarin's pace.
VOICE = "cmn-latn-pinyin"
SPEAKERS = (Speaker("S0002", f"{VOICE}+m3", 40, 210, "train"), Speaker("S0003", f"{VOICE}+f2", 70, 200, "train"),
            Speaker("S0004", f"{VOICE}+m1", 25, 230, "train"), Speaker("S0764", f"{VOICE}+f4", 60, 215, "test"),
            Speaker("S0765", f"{VOICE}+m7", 30, 205, "test"))


def plan(seed: int, scale: float = 1.0) -> list[tuple[Speaker, str, str]]:
    """(speaker, id, words) of each utterance: the words space-separated, as the transcript file has them.
    A test speaker says twice as much as a training one: the `demo-zh` suite's items (two voices, so
    a shuffled floor hands out another voice)."""
    rng = random.Random(f"mandarin-{seed}")
    n = max(2, round(4 * scale))
    out = []
    for s in SPEAKERS:
        for k in range(n * (2 if s.split == "test" else 1)):
            words = [rng.choice(WHO), rng.choice(WHEN), rng.choice(HOW), rng.choice(WHAT)]
            out.append((s, f"BAC009{s.id}W{k + 121:04d}", " ".join(words)))
    return out


def write_corpus(root: Path, seed: int, scale: float = 1.0) -> dict:
    """Speak the planned utterances into ROOT/data_aishell; returns {utterances, speakers}."""
    from pypinyin import Style, lazy_pinyin

    base = root / "data_aishell"
    (base / "transcript").mkdir(parents=True, exist_ok=True)
    utts = plan(seed, scale)
    lines, pinyin = [], []
    for spk, uid, words in utts:
        dest = base / "wav" / spk.split / spk.id / f"{uid}.wav"
        if not dest.is_file():
            dest.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory() as tmp:
                run([require("espeak-ng"), "-v", spk.voice, "-p", str(spk.pitch), "-s", str(spk.speed),
                     "-w", f"{tmp}/raw.wav", words.replace(" ", "")])
                wav, _ = audio.load(f"{tmp}/raw.wav", SAMPLE_RATE)
            audio.save(dest, headroom(wav), SAMPLE_RATE)
        lines.append(f"{uid} {words}")
        pinyin.append(f"{uid} {' '.join(lazy_pinyin(words.replace(' ', ''), style=Style.TONE3))}")
    (base / "transcript" / "aishell_transcript_v0.8.txt").write_text("\n".join(sorted(lines)) + "\n")
    (base / "transcript" / "pinyin.txt").write_text("\n".join(sorted(pinyin)) + "\n")
    return {"root": str(base), "utterances": len(utts), "speakers": len(SPEAKERS)}
