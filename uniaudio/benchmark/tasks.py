"""Tasks: what a system must produce from each test item, and which metrics score it.
Test sets are ordinary manifests (uniaudio.manifest); task-specific inputs live in `extra`."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Task:
    name: str
    output: str  # "audio" (outputs/{task}/{id}.wav) or "text" ({id}.txt)
    metrics: tuple[tuple[str, tuple], ...]  # (metric name, sorted kwargs items)
    description: str
    # how a test row fills a Sample: sample field -> "text" | "path" | "extra:<key>"
    refs: dict = field(default_factory=dict)


def _m(name: str, **kw) -> tuple[str, tuple]:
    return name, tuple(sorted(kw.items()))


TASKS = {
    "asr": Task("asr", "text", (_m("wer"), _m("cer")), "speech -> transcript",
                {"ref_text": "text"}),
    "tts": Task("tts", "audio", (_m("wer"), _m("sim"), _m("dnsmos")),
                "text + speaker prompt -> speech (WER by ASR, SIM vs prompt, DNSMOS)",
                {"ref_text": "text", "prompt_audio": "extra:prompt_path"}),
    "se": Task("se", "audio", (_m("pesq"), _m("stoi"), _m("stoi", extended=True), _m("dnsmos")),
               "noisy speech -> clean speech", {"ref_audio": "path"}),
    "codec": Task("codec", "audio", (_m("pesq"), _m("stoi"), _m("mel_distance")),
                  "speech -> tokens -> speech (resynthesis)", {"ref_audio": "path"}),
}
