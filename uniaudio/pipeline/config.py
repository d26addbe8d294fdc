"""Pipeline configuration (YAML). See configs/demo-pipeline.yaml."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from .. import storage
from ..config import ConfigError, to_dict
from .cluster import RaySpec
from .recipes import RECIPES
from .segment import SegmentSpec
from .simulate import SIMULATED, SimulateSpec

MEASURES = ("asr", "transcript_check", "words", "semantic", "prosody", "dnsmos")
MODEL_MEASURES = ("asr", "transcript_check", "words", "semantic", "dnsmos")  # worth a GPU (prosody is pYIN)
CHECK_NORMALIZER = "whisper-english"  # the transcript check compares texts as the Open ASR Leaderboard does
LATER_OPTIONS = ("simulate", "measure", "segment", "dedup", "asr")  # added after plans were first recorded
LATER_FILTERS = ("min_dnsmos", "speech_rate", "max_wer")


def _drop_unset_options(d: dict) -> None:
    """Options added after plans were first written, when unset, are left out of a config's
    record and fingerprint: outputs planned before them keep resuming."""
    for key in LATER_OPTIONS:
        if not d.get(key):
            d.pop(key, None)
    for key in LATER_FILTERS:
        if d["filters"].get(key) is None:
            d["filters"].pop(key, None)


@dataclass
class InputSpec:
    """One corpus: a recipe over a root folder, or an existing manifest Parquet."""
    recipe: str | None = None
    root: str | None = None
    manifest: str | None = None
    split: str | None = None
    name: str | None = None  # shard prefix and report key; default: recipe name
    options: dict[str, Any] = field(default_factory=dict)  # extra recipe arguments

    def validate(self) -> None:
        if (self.recipe is None) == (self.manifest is None):
            raise ConfigError("inputs[].recipe", "give exactly one of 'recipe' (with 'root') or 'manifest'")
        if self.recipe is not None:
            if self.recipe not in RECIPES:
                raise ConfigError("inputs[].recipe", f"unknown recipe {self.recipe!r}; known: {', '.join(sorted(RECIPES))}")
            if not self.root:
                raise ConfigError("inputs[].root", f"recipe {self.recipe!r} needs a root folder")
        if self.name is not None and not re.fullmatch(r"[A-Za-z0-9_-]+", self.name):
            raise ConfigError("inputs[].name", f"{self.name!r} must be letters, digits, '-' or '_'")

    @property
    def prefix(self) -> str:
        if self.name:
            return self.name
        if self.recipe:
            return self.recipe + (f"-{self.split}" if self.split else "")
        return re.sub(r"[^A-Za-z0-9_-]", "_", self.manifest.rsplit("/", 1)[-1].removesuffix(".parquet"))


@dataclass
class Filters:
    min_duration: float = 0.3  # seconds
    max_duration: float = 60.0
    silence_dbfs: float = -60.0  # whole-file RMS below this is "silent"
    max_clipped_fraction: float = 0.01  # share of samples at full scale
    min_dnsmos: float | None = None  # quality: DNSMOS OVRL below this is a reject (needs measure: [dnsmos])
    # words per second of speech outside [low, high] is a reject (needs measure: [prosody]; a
    # transcript or the asr measure gives the words)
    speech_rate: list[float] | None = None
    # transcript check: WER of an ASR pass against the row's own transcript above this is a reject
    # (needs measure: [transcript_check]; drops misaligned corpus transcripts)
    max_wer: float | None = None

    def validate(self) -> None:
        if self.speech_rate is not None and not (len(self.speech_rate) == 2 and 0 <= self.speech_rate[0] <
                                                 self.speech_rate[1]):
            raise ConfigError("filters.speech_rate", f"[low, high] words per second, got {self.speech_rate!r}")
        if self.max_wer is not None and not self.max_wer >= 0:
            raise ConfigError("filters.max_wer", f"a word error rate >= 0 (0.3 = 30 %), got {self.max_wer}")
        if self.min_dnsmos is not None and not 1.0 <= self.min_dnsmos <= 5.0:
            raise ConfigError("filters.min_dnsmos", f"a MOS in [1, 5], got {self.min_dnsmos}")
        if not 0 <= self.min_duration < self.max_duration:
            raise ConfigError("filters.min_duration", "need 0 <= min_duration < max_duration")
        if not 0 <= self.max_clipped_fraction <= 1:
            raise ConfigError("filters.max_clipped_fraction", "must be in [0, 1]")


@dataclass
class ASRSpec:
    """The ASR of the measure step (transcribe, transcript_check, words): any backend of
    uniaudio/transcribers.py by model name or folder, in one language; rows of another language
    are rejected (`unsupported_language`), never transcribed as this one."""
    backend: str = "faster-whisper"
    model: str = "tiny.en"  # packaged (offline); e.g. large-v3 (multilingual), or a local folder
    # "auto": rows without a language get Whisper's language identification (`language_detected` in
    # their measures, the sentence stage's language for them) and are transcribed in it
    language: str = "en"
    options: dict[str, Any] = field(default_factory=dict)  # to the backend, e.g. {compute_type: float16}

    def validate(self) -> None:
        from .. import transcribers

        if self.backend not in transcribers.BACKENDS:
            raise ConfigError("asr.backend", f"unknown ASR backend {self.backend!r}; known: "
                                             f"{', '.join(transcribers.BACKENDS)}")
        if self.model.endswith(".en") and self.language != "en":
            raise ConfigError("asr.language", f"{self.model} is English-only; a multilingual model (e.g. large-v3) "
                                              f"transcribes {self.language!r}")
        if self.language == "auto" and self.backend != "faster-whisper":
            raise ConfigError("asr.language", "auto (language identification) runs on faster-whisper's Whisper")


def check_rule(language: str) -> tuple[str, str]:
    """(normaliser, language) the transcript check compares texts with: Whisper's English rule for
    English; for Mandarin, Seed-TTS-eval's zh rule (every character a word: the rate is a CER);
    Whisper's basic rule for other languages."""
    from .. import textnorm

    lang = textnorm.primary_language(language)
    return (CHECK_NORMALIZER, "en") if lang == "en" else ("seed-tts-eval", "zh") if lang == "zh" \
        else ("whisper-basic", lang)


@dataclass
class ShardSpec:
    max_samples: int = 500
    max_bytes: int = 256 * 2**20  # planning target, from manifest durations

    def validate(self) -> None:
        if self.max_samples < 1:
            raise ConfigError("shard.max_samples", "must be >= 1")
        if self.max_bytes < 2**16:
            raise ConfigError("shard.max_bytes", "must be >= 65536")


@dataclass
class PipelineConfig:
    inputs: list[InputSpec]
    output: str
    tokenizer: str = "none"  # "none" stores FLAC audio; else a registry name (uniaudio.tokenize)
    tokenizer_options: dict[str, Any] = field(default_factory=dict)
    sample_rate: int = 16000  # decode target; a tokenizer's own rate wins
    filters: Filters = field(default_factory=Filters)
    shard: ShardSpec = field(default_factory=ShardSpec)
    ray: RaySpec = field(default_factory=RaySpec)
    # paired data derived from the inputs (noisy / reverberant / two-speaker speech): simulate.py
    simulate: SimulateSpec | None = None
    # voice-activity segmentation of long recordings before planning: segment.py
    segment: SegmentSpec | None = None
    # per-item measurements written into each sample's JSON and index.parquet's `measures`
    # ("asr": a transcript for rows without one, Whisper tiny.en; "transcript_check": the same ASR
    # on rows with a transcript, its WER against it (filters.max_wer); "words": Whisper's word
    # timings [[word, start s, end s], ...] (speech_edit sentences cut a word by them); "semantic":
    # the factorized tokenizer's semantic codes, a `semantic.npy` member (vc's content condition;
    # OUT/semantic.json describes them); "prosody": median F0, speaking
    # rate and their bands, uniaudio/prosody.py; "dnsmos": DNSMOS SIG/BAK/OVRL/P.808,
    # uniaudio/dnsmos.py, the quality filter's measure; speech rows only, not simulated pairs)
    measure: list[str] = field(default_factory=list)
    # exact duplicates (the same decoded audio): every item's audio hash in its measures, and
    # OUT/duplicates.parquet listing each later copy (the first by id is kept); sentences skip them
    dedup: bool = False
    # the measure step's ASR (default: the packaged Whisper tiny.en, English)
    asr: ASRSpec | None = None

    def validate(self) -> None:
        if not self.inputs:
            raise ConfigError("inputs", "at least one input is required")
        prefixes = [i.prefix for i in self.inputs]
        dup = {p for p in prefixes if prefixes.count(p) > 1}
        if dup:
            raise ConfigError("inputs[].name", f"two inputs share the shard prefix {sorted(dup)}; set distinct names")
        if self.simulate is not None and SIMULATED in prefixes:
            raise ConfigError("inputs[].name", f"{SIMULATED!r} is the shard prefix of the simulated pairs; "
                                               "name that input otherwise")
        if self.sample_rate <= 0:
            raise ConfigError("sample_rate", "must be > 0")
        unknown = sorted(set(self.measure) - set(MEASURES))
        if unknown:
            raise ConfigError("measure", f"unknown measure(s) {unknown}; known: {', '.join(MEASURES)}")
        if self.filters.speech_rate is not None and "prosody" not in self.measure:
            raise ConfigError("filters.speech_rate", "filters by the prosody measure: add `prosody` to `measure`")
        if self.filters.max_wer is not None and "transcript_check" not in self.measure:
            raise ConfigError("filters.max_wer", "filters by the transcript check: add `transcript_check` to `measure`")
        if "transcript_check" in self.measure:  # every rule the configured language(s) can need, here
            from .. import textnorm  # and not on the first zh row of a cluster node without the bench extra

            language = (self.asr or ASRSpec()).language
            for lang in (("en", "zh", "other") if language == "auto" else (language,)):
                try:
                    textnorm.text_normalizer(*check_rule(lang))
                    textnorm.hypothesis_rule(*check_rule(lang))
                except textnorm.NormalizerError as e:
                    raise ConfigError("measure", f"transcript_check: {e}") from None
        if "words" in self.measure and self.asr is not None and self.asr.backend != "faster-whisper":
            raise ConfigError("asr.backend", "word timings (measure: words) come from faster-whisper's word timestamps")
        if self.filters.min_dnsmos is not None and "dnsmos" not in self.measure:
            raise ConfigError("filters.min_dnsmos", "filters by the DNSMOS measure: add `dnsmos` to `measure`")
        if self.tokenizer != "none":
            from ..tokenize import REGISTRY
            if self.tokenizer not in REGISTRY:
                raise ConfigError("tokenizer", f"unknown tokenizer {self.tokenizer!r}; known: none, {', '.join(sorted(REGISTRY))}")

    def plan_fields(self) -> dict:
        """What must not change between a run and its resume (outputs would differ), written
        the same however it was given: an input's shard prefix rather than whether it was
        named, and absolute paths rather than paths as typed, so that `--input` flags and a
        config file that describe the same plan agree."""
        from pathlib import Path

        d = to_dict(self)
        for k in ("ray", "output", "inputs"):
            d.pop(k)
        _drop_unset_options(d)
        d["inputs"] = [{"prefix": i.prefix, "recipe": i.recipe, "split": i.split, "options": i.options,
                        "root": (i.root if storage.is_uri(i.root) else str(Path(i.root).resolve()))
                        if i.root else None,
                        "manifest": str(Path(i.manifest).resolve()) if i.manifest else None} for i in self.inputs]
        return json.loads(json.dumps(d, sort_keys=True))

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.plan_fields(), sort_keys=True).encode()).hexdigest()[:16]

    def legacy_fingerprint(self) -> str:
        """The fingerprint of plans written before `plan_fields` (raw config minus ray/output)."""
        d = to_dict(self)
        d.pop("ray")
        d.pop("output")
        _drop_unset_options(d)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]
