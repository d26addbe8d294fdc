"""Target speaker extraction: a mixture + an enrollment of the target speaker -> the target speech.
The task, its demo test set and what makes the demo set."""

from __future__ import annotations

import numpy as np

from ... import audio
from ...mixing import add_at_ratio
from ...manifest import Record
from .base import DemoSuite, Task, metric, output_file, register


def mix(target: np.ndarray, interferer: np.ndarray, sir_db: float) -> np.ndarray:
    """Target + interfering speech at an exact signal-to-interference ratio (target length)."""
    return add_at_ratio(target, interferer, sir_db)


def demo(s: DemoSuite) -> list[Record]:
    """A's utterance mixed with B's (vc's prompt) at 0 dB; enrollment: another utterance of A."""
    out = []
    for k, r in enumerate(s.speech):
        own, prompt = s.by_speaker[r.speaker], s.other_speaker(k, r)
        enroll = own[(own.index(r) + 1) % len(own)]
        target, sr = audio.load(r.path, 16000)
        mixture = audio.save(output_file(s.root / "tse_mix", r.id, ".wav"),
                             mix(target, audio.load(prompt.path, 16000)[0], 0.0), sr)
        out.append(Record(**{**r.__dict__, "extra": {**r.extra, "input_path": str(mixture), "enroll_path": enroll.path,
                                                    "interferer_id": prompt.id, "sir_db": 0.0}}))
    return out


TASK = register(Task("tse", "audio", (metric("pesq"), metric("stoi"), metric("si_sdr"), metric("sim")),
                     "mixture + enrollment of the target speaker -> the target speech",
                     {"ref_audio": "path", "prompt_audio": "extra:enroll_path"}, input="extra:input_path",
                     systems=("passthrough", "ground-truth"), demo=demo))
