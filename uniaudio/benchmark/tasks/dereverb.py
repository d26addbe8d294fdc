"""Dereverberation: reverberant speech -> dry speech.
The task, its demo test set and what makes the demo set."""

from __future__ import annotations


from ... import audio
from ...mixing import reverberate
from ...manifest import Record
from .base import DemoSuite, Task, metric, output_file, register


DEREVERB_RT60 = (0.4, 0.7, 1.0)  # seconds, cycled over the test utterances


def demo(s: DemoSuite) -> list[Record]:
    """Each test utterance in a room of RT60 0.4, 0.7 or 1.0 s (in turn)."""
    out = []
    for k, r in enumerate(s.speech):
        dry, sr = audio.load(r.path, 16000)
        rt60 = DEREVERB_RT60[k % len(DEREVERB_RT60)]
        wet, measured = reverberate(dry, rt60, sr, s.seed * 1000 + k)
        path = audio.save(output_file(s.root / "dereverb_wet", r.id, ".wav"), wet, sr)
        out.append(Record(**{**r.__dict__, "extra": {**r.extra, "input_path": str(path), "rt60_s": rt60,
                                                    "rt60_measured_s": round(measured, 3)}}))
    return out


TASK = register(Task("dereverb", "audio", (metric("pesq"), metric("stoi"), metric("si_sdr"), metric("dnsmos")),
                     "reverberant speech (room response of a measured RT60) -> dry speech "
                     "(PESQ-wb, STOI, SI-SDR vs the dry reference; DNSMOS)", {"ref_audio": "path"},
                     input="extra:input_path",
                     systems=("passthrough", "ground-truth"), demo=demo))
