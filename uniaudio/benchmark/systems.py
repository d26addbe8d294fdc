"""Systems under test. Every system ends up as a folder of outputs named by utterance id
(`{task}/{id}.wav` or `.txt`), so built-in baselines are scored exactly like anyone's
outputs. Built-ins write that folder; `--system DIR` points at an existing one;
`--system pkg.module:Class` loads an adapter with `produce(task, rows, outdir)`."""

from __future__ import annotations

import importlib
import subprocess
import tempfile
from pathlib import Path

from .. import audio
from .tasks import Task, row_value


class System:
    name = ""
    tasks: tuple[str, ...] = ()  # tasks it can produce outputs for

    def produce(self, task: Task, rows: list[dict], outdir: Path) -> None:
        raise NotImplementedError


class Folder(System):
    """Existing outputs: DIR/{task}/{id}.wav|txt. Produces nothing."""

    def __init__(self, path: str):
        self.path = Path(path)
        self.name = self.path.name
        self.tasks = tuple(p.name for p in self.path.iterdir() if p.is_dir()) if self.path.is_dir() else ()

    def produce(self, task, rows, outdir):
        pass


class GroundTruth(System):
    """The references themselves: metric ceilings (WER of the ASR on real speech, etc.).
    VC has no reference output (no parallel data), so it is not offered there."""
    name, tasks = "ground-truth", ("asr", "tts", "se", "tse", "codec", "tta", "ttm")

    def produce(self, task, rows, outdir):
        for r in rows:
            if task.output == "text":
                (outdir / f"{r['id']}.txt").write_text(r["text"] or "")
            else:  # native rate: 48 kHz metrics (CLAP) must not get a 16 kHz copy
                wav, sr = audio.load(r["path"])
                audio.save(outdir / f"{r['id']}.wav", wav, sr)


class WhisperTiny(System):
    """ASR baseline: faster-whisper with the packaged Whisper tiny.en."""
    name, tasks = "whisper-tiny", ("asr",)

    def produce(self, task, rows, outdir):
        from .asr import FasterWhisper

        asr = FasterWhisper()
        for r in rows:
            wav, _ = audio.load(r["path"], 16000)
            (outdir / f"{r['id']}.txt").write_text(asr.transcribe([wav])[0])


class Espeak(System):
    """TTS baseline: espeak-ng, one fixed voice (it ignores the speaker prompt)."""
    name, tasks = "espeak", ("tts",)

    def __init__(self, voice: str = "en-us"):
        self.voice = voice

    def produce(self, task, rows, outdir):
        from ..demo.tools import require

        with tempfile.TemporaryDirectory() as tmp:
            for r in rows:
                subprocess.run([require("espeak-ng"), "-v", self.voice, "-w", f"{tmp}/x.wav", r["text"].lower()],
                               check=True, capture_output=True)
                wav, sr = audio.load(f"{tmp}/x.wav", 16000)
                audio.save(outdir / f"{r['id']}.wav", wav, sr)


class Passthrough(System):
    """The floor of transformation tasks: returns the task's input audio unchanged (the
    noisy speech for se, the mixture for tse, the source speaker for vc)."""
    name, tasks = "passthrough", ("se", "tse", "vc", "codec")

    def produce(self, task, rows, outdir):
        for r in rows:
            wav, sr = audio.load(row_value(r, task.input))
            audio.save(outdir / f"{r['id']}.wav", wav, sr)


class Shuffled(System):
    """Floor for generation tasks: each item gets the reference audio of another item (right
    distribution, wrong content), so CLAP and KL must score it worse than the ground truth."""
    name, tasks = "shuffled", ("tta", "ttm", "tts")

    def produce(self, task, rows, outdir):
        order = sorted(rows, key=lambda r: r["id"])
        for k, r in enumerate(order):
            other = order[(k + 1) % len(order)]
            wav, sr = audio.load(other["path"])
            audio.save(outdir / f"{r['id']}.wav", wav, sr)


class CodecResynthesis(System):
    """codec:NAME: encode and decode the reference with a registered tokenizer."""
    tasks = ("codec",)

    def __init__(self, tokenizer: str, **options):
        from ..tokenize import get

        self.tok = get(tokenizer, **options)
        self.name = f"codec-{tokenizer}"

    def produce(self, task, rows, outdir):
        for r in rows:
            wav, sr = audio.load(r["path"], self.tok.sample_rate)
            out = self.tok.decode(self.tok.encode(wav, sr))
            audio.save(outdir / f"{r['id']}.wav", out, self.tok.sample_rate)


BUILTIN = {"ground-truth": GroundTruth, "whisper-tiny": WhisperTiny, "espeak": Espeak, "passthrough": Passthrough,
           "shuffled": Shuffled}
BASELINE = {"asr": "whisper-tiny", "tts": "espeak", "se": "passthrough", "vc": "passthrough", "tse": "passthrough",
            "codec": "codec:mulaw", "tta": "shuffled", "ttm": "shuffled"}


def load(spec: str) -> System:
    """A built-in name, `codec:TOKENIZER`, `pkg.module:Class`, or a folder of outputs."""
    if spec in BUILTIN:
        return BUILTIN[spec]()
    if spec.startswith("codec:"):
        return CodecResynthesis(spec.split(":", 1)[1])
    if Path(spec).is_dir():
        return Folder(spec)
    if ":" in spec:
        mod, _, cls = spec.partition(":")
        try:
            obj = getattr(importlib.import_module(mod), cls)()
        except (ImportError, AttributeError) as e:
            raise ValueError(f"system {spec!r}: cannot load adapter: {e}") from None
        obj.name = getattr(obj, "name", "") or cls
        return obj
    raise ValueError(f"unknown system {spec!r}: a folder of outputs, one of {sorted(BUILTIN)}, "
                     f"codec:TOKENIZER, or pkg.module:Class")
