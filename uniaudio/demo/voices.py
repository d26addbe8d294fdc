"""More natural synthetic speech for codec training: flite (CMU clustergen and diphone
voices) and Festival's HTS, diphone and unit-selection voices, which are vocoded from or cut
out of recordings of real speakers and so are much closer to real speech than espeak-ng's
formant synthesis. The diphone (LPC with the speakers' own residuals) and unit-selection
(Russian msu_ru_nsh: stretches of real recorded waveform) voices matter most for a codec:
their excitation is a real voice's, not a vocoder's pulse train. Non-English voices read the
English sentences with their own letter-to-sound rules (Russian after transliteration), which
is fine for a codec: it needs voices and phones, not meaning; the transcripts stay English.
LibriSpeech layout (split `train-other-500`), so the librispeech recipe reads it; a pure
function of (seed, minutes, text file). The sentences are generated from templates, or taken
from a text file (e.g. Debian's `fortunes`): a text-aligned model (the factorized tokenizer's
CTC) learns the templates' few words and grammar instead of English from the first. Used by
`uniaudio data voices`; not part of the demo corpora."""

from __future__ import annotations

import hashlib
import random
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from .. import audio
from .transcripts import sentences, sentences_from_text, transcript
from .tools import require, run

SAMPLE_RATE = 16000
SPLIT = "train-other-500"
APT = ("apt-get install flite festival festvox-us-slt-hts festvox-kallpc16k festvox-kdlpc16k festvox-ru "
       "festvox-czech-dita festvox-czech-machac festvox-czech-krb festvox-suopuhe-lj festvox-suopuhe-mv")

# crude Latin -> Cyrillic letters, so that the Russian voice reads English words as sounds
# instead of rejecting them (digraphs first)
_CYRILLIC = [("sh", "ш"), ("ch", "ч"), ("th", "т"), ("ee", "и"), ("oo", "у"), ("a", "а"), ("b", "б"), ("c", "к"),
             ("d", "д"), ("e", "е"), ("f", "ф"), ("g", "г"), ("h", "х"), ("i", "и"), ("j", "дж"), ("k", "к"),
             ("l", "л"), ("m", "м"), ("n", "н"), ("o", "о"), ("p", "п"), ("q", "к"), ("r", "р"), ("s", "с"),
             ("t", "т"), ("u", "у"), ("v", "в"), ("w", "в"), ("x", "кс"), ("y", "й"), ("z", "з")]


def cyrillic(text: str) -> str:
    out = text.lower()
    for latin, cyr in _CYRILLIC:
        out = out.replace(latin, cyr)
    return out


@dataclass(frozen=True)
class Voice:
    id: str
    engine: str  # "flite" or "festival"
    voice: str
    f0: int | None = None  # flite int_f0_target_mean (Hz); None = the voice's own
    stretch: float = 1.0  # duration stretch (slower > 1)
    script: str = "latin"  # "cyrillic": the text is transliterated before synthesis

    def spoken(self, text: str) -> str:
        return cyrillic(text) if self.script == "cyrillic" else text

    def command(self, text_file: str, wav: str) -> list[str]:
        if self.engine == "flite":
            cmd = [require("flite"), "-voice", self.voice, "--setf", f"duration_stretch={self.stretch}"]
            if self.f0:
                cmd += ["--setf", f"int_f0_target_mean={self.f0}"]
            return cmd + ["-f", text_file, "-o", wav]
        return [require("text2wave"), "-eval", f"(voice_{self.voice})", "-eval",
                f"(Parameter.set 'Duration_Stretch {self.stretch})", text_file, "-o", wav]


VOICES = (
    Voice("7001", "flite", "slt"), Voice("7002", "flite", "slt", 210, 1.1), Voice("7003", "flite", "slt", 150, 0.9),
    Voice("7011", "flite", "awb"), Voice("7012", "flite", "awb", 130, 1.15), Voice("7013", "flite", "awb", 95, 0.9),
    Voice("7021", "flite", "rms"), Voice("7022", "flite", "rms", 125, 1.1), Voice("7023", "flite", "rms", 80, 0.95),
    Voice("7031", "flite", "kal16"), Voice("7032", "flite", "kal16", 120, 1.1),
    Voice("7041", "festival", "cmu_us_slt_arctic_hts"), Voice("7042", "festival", "cmu_us_slt_arctic_hts", None, 1.15),
    # diphone voices (residual-excited LPC of real recordings) and unit selection (real waveform)
    Voice("7051", "festival", "kal_diphone"), Voice("7052", "festival", "ked_diphone"),
    Voice("7053", "festival", "kal_diphone", None, 1.15),
    Voice("7061", "festival", "msu_ru_nsh_clunits", script="cyrillic"),
    Voice("7062", "festival", "msu_ru_nsh_clunits", None, 1.1, script="cyrillic"),
    Voice("7071", "festival", "czech_dita"), Voice("7072", "festival", "czech_machac"),
    Voice("7073", "festival", "czech_krb"),
    Voice("7081", "festival", "suo_fi_lj_diphone"), Voice("7082", "festival", "hy_fi_mv_diphone"),
)


@dataclass(frozen=True)
class Utt:
    voice: Voice
    index: int
    text: str

    @property
    def id(self) -> str:
        return f"{self.voice.id}-1-{self.index:04d}"

    def path(self, root: Path) -> Path:
        return root / SPLIT / self.voice.id / "1" / f"{self.id}.flac"


def plan(seed: int, minutes: float, pool: list[str] | None = None) -> list[Utt]:
    """~6 s utterances spread evenly over the voices: two generated sentences each, or (pool)
    sentences of the pool in a seeded order, joined until at least 10 words, each used once
    before any is used again."""
    rng = random.Random(f"voices-{seed}")
    per_voice = max(1, round(minutes * 60 / 6 / len(VOICES)))
    if pool is None:
        return [Utt(v, i, " ".join(sentences(rng, 2))) for v in VOICES for i in range(per_voice)]
    order = [p for p in pool if p.split()]
    if not order:
        raise ValueError("plan: the sentence pool has no words")
    rng.shuffle(order)
    utts, k = [], 0
    for v in VOICES:
        for i in range(per_voice):
            words: list[str] = []
            while len(words) < 10:
                words += order[k % len(order)].split()
                k += 1
            utts.append(Utt(v, i, " ".join(words)))
    return utts


def synthesize(u: Utt, root: Path) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "t.txt").write_text(u.voice.spoken(u.text) + "\n", encoding="utf-8")
        run(u.voice.command(f"{tmp}/t.txt", f"{tmp}/x.wav"))
        wav, _ = audio.load(f"{tmp}/x.wav", SAMPLE_RATE)
    return audio.save(u.path(root), wav, SAMPLE_RATE)


def festival_voices() -> set[str]:
    """Names of the voices this machine's Festival can load."""
    out = subprocess.run([require("festival"), "-b", "(print (voice.list))"], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"festival could not list its voices: {out.stderr.strip()[-300:]}")
    return set(out.stdout.strip().strip("()").split())


def build(root: str | Path, *, seed: int = 0, minutes: float = 30.0, workers: int = 2, progress: bool = True,
          text_file: str | Path | None = None) -> list[Utt]:
    """Write ROOT/LibriSpeech/train-other-500/... with transcripts; skips files already there.
    text_file: read its sentences (`sentences_from_text`) instead of generating them."""
    pool = None
    if text_file is not None:
        pool = sentences_from_text(Path(text_file).read_text(encoding="utf-8", errors="replace"))
        if len(pool) < 20:
            raise RuntimeError(f"{text_file}: only {len(pool)} usable sentences (5-24 words of letters and plain "
                               f"punctuation, no digits or acronyms); need at least 20")
    for tool in ("flite", "text2wave"):
        try:
            require(tool)
        except RuntimeError:
            raise RuntimeError(f"'{tool}' is not on PATH: {APT}") from None
    missing = sorted({v.voice for v in VOICES if v.engine == "festival"} - festival_voices())
    if missing:
        raise RuntimeError(f"Festival voices not installed: {', '.join(missing)}: {APT}")
    ls = Path(root) / "LibriSpeech"
    utts = plan(seed, minutes, pool)
    # files already there are kept (resume), so they must be this plan's: another seed, length or
    # text would pair old audio with new transcripts
    digest = hashlib.sha1("\n".join(f"{u.id} {u.text}" for u in utts).encode()).hexdigest()
    stamp = Path(root) / "plan.sha1"
    if stamp.exists() and stamp.read_text().strip() != digest:
        raise RuntimeError(f"{root} holds speech of another plan (seed, minutes or text file differ): "
                           f"use a new folder")
    Path(root).mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest + "\n")
    todo = [u for u in utts if not u.path(ls).exists()]

    def attempt(u: Utt) -> str | None:  # a voice that cannot say a sentence costs that utterance only
        try:
            synthesize(u, ls)
        except (audio.AudioError, RuntimeError) as e:
            return f"{u.id} ({u.voice.voice}: {u.text!r}): {e}"
        return None

    with ThreadPoolExecutor(max_workers=workers) as ex:
        failed = [f for f in tqdm(ex.map(attempt, todo), total=len(todo), desc="voices", unit="utt",
                                  disable=not progress) if f]
    done = [u for u in utts if u.path(ls).exists()]
    for v in VOICES:  # transcripts of the utterances that exist: the recipe pairs each line with its file
        mine = [u for u in done if u.voice == v]
        folder = Path(ls) / SPLIT / v.id / "1"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{v.id}-1.trans.txt").write_text("".join(f"{u.id} {transcript(u.text)}\n" for u in mine))
    report = Path(root) / "failed.txt"
    report.unlink(missing_ok=True)
    if failed:
        report.write_text("".join(f + "\n" for f in failed))
        print(f"voices: {len(failed)} of {len(utts)} utterances could not be synthesized (left out; reasons in "
              f"{Path(root) / 'failed.txt'}): {failed[0]}")
    return done
