"""Tasks: what a system must produce from each test item, and which metrics score it.
Test sets are ordinary manifests (uniaudio.manifest); task-specific inputs live in `extra`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..files import safe_name


def output_file(outdir: Path, uid: str, ext: str) -> Path:
    """Where a system's output for test item `uid` lives: `files.safe_name(uid)` + ext, so an
    untrusted id never names a path outside `outdir`."""
    return Path(outdir) / f"{safe_name(uid)}{ext}"


def row_value(row: dict, how: str):
    """A test row's field: "text", "path", or "extra:<key>" (extra is a JSON object)."""
    if how in ("text", "path", "caption"):
        return row[how]
    extra = row.get("extra")
    extra = json.loads(extra) if isinstance(extra, str) and extra else (extra or {})
    return extra.get(how.split(":", 1)[1])


@dataclass(frozen=True)
class Task:
    name: str
    output: str  # "audio" (outputs/{task}/{id}.wav) or "text" ({id}.txt)
    metrics: tuple[tuple[str, tuple], ...]  # (metric name, sorted kwargs items)
    description: str
    # how a test row fills a Sample: sample field -> "text" | "caption" | "path" | "extra:<key>"
    refs: dict = field(default_factory=dict)
    # what a system reads: "path" (the row's audio), "text", or "extra:<key>"
    input: str = "path"
    # set-level metrics (one value for the whole test set), e.g. FAD
    set_metrics: tuple[tuple[str, tuple], ...] = ()


def _m(name: str, **kw) -> tuple[str, tuple]:
    return name, tuple(sorted(kw.items()))


TASKS = {
    "asr": Task("asr", "text", (_m("wer"), _m("cer")), "speech -> transcript",
                {"ref_text": "text"}),
    "tts": Task("tts", "audio", (_m("wer"), _m("sim"), _m("utmos"), _m("dnsmos")),
                "text + speaker prompt -> speech (WER by ASR, SIM vs prompt, UTMOS, DNSMOS)",
                {"ref_text": "text", "prompt_audio": "extra:prompt_path"}, input="text"),
    "instruct_tts": Task("instruct_tts", "audio", (_m("wer"), _m("attributes")),
                         "text + a spoken-style instruction (pitch, rate) -> speech (WER by ASR; whether the "
                         "median F0 and the speaking rate measured from the output fall in the requested bands)",
                         {"ref_text": "text", "attributes": "extra:attributes"}, input="text"),
    "svs": Task("svs", "audio", (_m("f0"), _m("mcd"), _m("wer"), _m("dnsmos")),
                "lyrics + notes -> singing (F0 RMSE in cents and V/UV error vs the reference singing after DTW, "
                "MCD, lyric WER by ASR, DNSMOS)",
                {"ref_text": "text", "ref_audio": "path", "notes": "extra:notes"}, input="extra:notes"),
    "speech_edit": Task("speech_edit", "audio", (_m("wer"), _m("sim"), _m("mcd"), _m("dnsmos")),
                        "speech + its transcript + an edited transcript (one word replaced) -> the edited speech "
                        "(WER vs the edited transcript, SIM vs the original speech, MCD vs the reference edit "
                        "outside the edited word, DNSMOS)",
                        {"ref_text": "text", "ref_audio": "path", "prompt_audio": "extra:input_path",
                         "exclude_span": "extra:edit_span_s"}, input="extra:input_path"),
    "se": Task("se", "audio", (_m("pesq"), _m("stoi"), _m("stoi", extended=True), _m("si_sdr"), _m("dnsmos")),
               "noisy speech -> clean speech", {"ref_audio": "path"}, input="extra:input_path"),
    "dereverb": Task("dereverb", "audio", (_m("pesq"), _m("stoi"), _m("si_sdr"), _m("dnsmos")),
                     "reverberant speech (room response of a measured RT60) -> dry speech "
                     "(PESQ-wb, STOI, SI-SDR vs the dry reference; DNSMOS)", {"ref_audio": "path"},
                     input="extra:input_path"),
    "vc": Task("vc", "audio", (_m("wer"), _m("sim"), _m("utmos"), _m("dnsmos")),
               "source speech + target-speaker prompt -> the source words in the target voice "
               "(WER vs the source transcript, SIM vs the prompt)",
               {"ref_text": "text", "prompt_audio": "extra:prompt_path"}),
    "tse": Task("tse", "audio", (_m("pesq"), _m("stoi"), _m("si_sdr"), _m("sim")),
                "mixture + enrollment of the target speaker -> the target speech",
                {"ref_audio": "path", "prompt_audio": "extra:enroll_path"}, input="extra:input_path"),
    "tta": Task("tta", "audio", (_m("clap"), _m("kl")),
                "caption -> sound (CLAP and KL per item, FAD and FAD-inf over the set)",
                {"ref_text": "caption", "ref_audio": "path"}, input="caption", set_metrics=(_m("fad"),)),
    "ttm": Task("ttm", "audio", (_m("clap"), _m("kl")), "music description -> music (CLAP, KL, FAD)",
                {"ref_text": "caption", "ref_audio": "path"}, input="caption", set_metrics=(_m("fad"),)),
    "sound_edit": Task("sound_edit", "audio", (_m("lsd"), _m("kl"), _m("clap")),
                       "sound + an instruction (add or remove an event) -> the edited sound (log-spectral "
                       "distance and KL vs the reference edit, CLAP vs the target's caption; FAD over the set)",
                       {"ref_audio": "path", "ref_text": "caption"}, input="extra:input_path",
                       set_metrics=(_m("fad"),)),
    "caption": Task("caption", "text", (_m("clap", text="hyp_text", audio_field="ref_audio"),),
                    "audio -> caption (BLEU-1..4, CIDEr, ROUGE-L over the set vs all reference captions; "
                    "CLAP of the generated caption vs the audio)",
                    {"ref_audio": "path"}, input="path", set_metrics=(_m("captioning"),)),
    "mmlu": Task("mmlu", "text", (_m("accuracy"),),
                 "5-shot multiple-choice prompt -> answer letter (micro accuracy and per subject)",
                 {"ref_text": "extra:answer", "group": "extra:subject"}, input="text"),
    "codec": Task("codec", "audio", (_m("pesq"), _m("stoi"), _m("mel_distance")),
                  "speech -> tokens -> speech (resynthesis)", {"ref_audio": "path"}),
}
