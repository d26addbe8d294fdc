"""More natural synthetic speech for codec training: flite (CMU clustergen and diphone
voices) and Festival's HTS voice, which are vocoded from recordings of real speakers and so
are much closer to real speech than espeak-ng's formant synthesis. LibriSpeech layout
(split `train-other-500`), so the librispeech recipe reads it; a pure function of
(seed, minutes). Used by `uniaudio data voices`; not part of the demo corpora the tests use."""

from __future__ import annotations

import random
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from .. import audio
from .text import sentences
from .tools import require, run

SAMPLE_RATE = 16000
SPLIT = "train-other-500"
APT = "apt-get install flite festival festvox-us-slt-hts"


@dataclass(frozen=True)
class Voice:
    id: str
    engine: str  # "flite" or "festival"
    voice: str
    f0: int | None = None  # flite int_f0_target_mean (Hz); None = the voice's own
    stretch: float = 1.0  # duration stretch (slower > 1)

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


def plan(seed: int, minutes: float) -> list[Utt]:
    """~6 s utterances (two generated sentences each), spread evenly over the voices."""
    rng = random.Random(f"voices-{seed}")
    per_voice = max(1, round(minutes * 60 / 6 / len(VOICES)))
    return [Utt(v, i, " ".join(sentences(rng, 2))) for v in VOICES for i in range(per_voice)]


def synthesize(u: Utt, root: Path) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "t.txt").write_text(u.text + "\n")
        run(u.voice.command(f"{tmp}/t.txt", f"{tmp}/x.wav"))
        wav, _ = audio.load(f"{tmp}/x.wav", SAMPLE_RATE)
    return audio.save(u.path(root), wav, SAMPLE_RATE)


def build(root: str | Path, *, seed: int = 0, minutes: float = 30.0, workers: int = 2, progress: bool = True) -> list[Utt]:
    """Write ROOT/LibriSpeech/train-other-500/... with transcripts; skips files already there."""
    for tool in ("flite", "text2wave"):
        try:
            require(tool)
        except RuntimeError:
            raise RuntimeError(f"'{tool}' is not on PATH: {APT}") from None
    ls = Path(root) / "LibriSpeech"
    utts = plan(seed, minutes)
    for v in VOICES:
        mine = [u for u in utts if u.voice == v]
        folder = mine[0].path(ls).parent
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{v.id}-1.trans.txt").write_text("".join(f"{u.id} {u.text.upper()}\n" for u in mine))
    todo = [u for u in utts if not u.path(ls).exists()]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in tqdm(pool.map(lambda u: synthesize(u, ls), todo), total=len(todo), desc="voices", unit="utt",
                      disable=not progress):
            pass
    return utts
