"""`uniaudio pipeline sentences` configuration (YAML or flags). See configs/demo-sentences.yaml."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ...config import ConfigError, to_dict
from ...tokenize import frontends
from ...tokenize.frontends import DEFAULT as FRONTEND_DEFAULT
from ..cluster import RaySpec

# task -> the relation between source rows it is built from (recorded on every segment)
TASK_RELATION = {
    "asr": "transcript",        # speech -> its transcript
    "tts": "same_speaker",      # transcript + 3 s prompt from ANOTHER utterance of the speaker -> speech
    "caption": "caption",       # sound/music clip -> one of its captions
    "tta": "caption",           # caption -> sound clip
    "ttm": "caption",           # caption -> music clip
    "interleave": "consecutive",  # audio, text, audio, text ... of consecutive utterances of one chapter
    "text": "text",             # a transcript or caption alone (packed into the gaps)
    # the engine's simulated pairs (pipeline/simulate.py): a derived row and the row it came from
    "se": "noisy_of",           # noisy speech -> the clean utterance it was made from
    "dereverb": "reverberant_of",  # reverberant speech -> the dry utterance
    "tse": "mixture_of",        # mixture + 3 s enrollment from ANOTHER utterance of the target speaker -> target
    "sound_edit": "event_edit",  # clip + "Add this event: CAPTION." -> clip with the event, or the reverse
    # the engine's measured style (`measure: [prosody]`): "Say it quickly in a high-pitched female
    # voice." + transcript -> that utterance (the benchmark's instruct_tts wording and bands)
    "instruct_tts": "measured_style",
    "svs": "score",             # a song's score (lyric, MIDI pitch, seconds per note) -> the singing
    # the engine's word timings (`measure: [words]`): the speech before and after one word, cut
    # out by its timing, + the transcript -> the whole utterance (speech editing as infilling)
    "speech_edit": "masked_word",
    # the engine's content codes (`measure: [semantic]`): the utterance's semantic codes + 3 s
    # prompt from ANOTHER utterance of the speaker -> the utterance (UniAudio's vc training)
    "vc": "content_of",
}
LAYOUTS = ("uniaudio", "multistream")


@dataclass
class SentenceConfig:
    tokens: str  # a finished token-shard output folder (`uniaudio pipeline run --tokenizer ...`)
    output: str
    layout: str = "uniaudio"  # "uniaudio": [rows, K]; "multistream": [rows, K + 1] (see tokenize/vocab.py)
    context: int = 2048  # rows per packed bundle
    seed: int = 0
    # mixture: expected sequences of each task per eligible source item (0 = none, 0.5 = half
    # of them, 2 = two each; which ones is a stable hash of (seed, task, item)). Text-only
    # sequences fill the gaps of packed bundles (those not needed are left out and counted), so
    # a supply above the gaps is what keeps the fill near 1 on small corpora
    tasks: dict[str, float] = field(default_factory=lambda: {**{t: 1.0 for t in TASK_RELATION}, "text": 2.0})
    # source rows whose manifest split matches one of these (fnmatch) never reach a training
    # bundle: they are packed into separate held-out bundles (validation loss), and a relation
    # never joins a held-out row with a training row. Test sets stay out of training by default.
    holdout_splits: list[str] = field(default_factory=lambda: ["test*", "dev*", "val*", "eval*"])
    prompt_seconds: float = 3.0  # UniAudio's same-speaker prompt length
    interleave_max: int = 6  # utterances per consecutive sequence at most
    # "train": a byte-level BPE trained on the corpus's transcripts and captions (saved in the
    # output); or the path of a tokenizer.json (`uniaudio train bpe`)
    # text front end per language (tokenize/frontends.py): what a transcript becomes before the
    # BPE; a row whose language has none is left out (`no_text_frontend`), never read as another
    text_frontends: dict[str, str] = field(default_factory=lambda: dict(FRONTEND_DEFAULT))
    default_language: str = "en"  # the language of rows whose manifest names none
    text_tokenizer: str = "train"
    text_vocab_size: int = 2000
    shard_rows: int = 128 * 2048  # target rows per output shard (= bundles per shard x context)
    pack_buffer: int = 1024  # sequences held for best-fit decreasing at a time
    memory_limit: str = "1GB"  # DuckDB's limit for the metadata sort (it spills to disk beyond)
    ray: RaySpec = field(default_factory=RaySpec)

    def validate(self) -> None:
        if self.layout not in LAYOUTS:
            raise ConfigError("layout", f"must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.context < 16:
            raise ConfigError("context", f"must be >= 16 rows, got {self.context}")
        unknown = sorted(set(self.tasks) - set(TASK_RELATION))
        if unknown:
            raise ConfigError(f"tasks.{unknown[0]}", f"unknown task; known: {', '.join(TASK_RELATION)}")
        for t, w in self.tasks.items():
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 <= w <= 16:
                raise ConfigError(f"tasks.{t}", f"weight must be a number in [0, 16], got {w!r}")
        if not any(w > 0 for w in self.tasks.values()):
            raise ConfigError("tasks", "at least one task needs a weight > 0")
        if self.prompt_seconds <= 0:
            raise ConfigError("prompt_seconds", "must be > 0")
        if self.interleave_max < 2:
            raise ConfigError("interleave_max", "must be >= 2 (one utterance has no neighbour)")
        for lang, name in self.text_frontends.items():
            try:
                frontends.get(name)
            except frontends.FrontEndError as e:
                raise ConfigError(f"text_frontends.{lang}", str(e)) from None
        if self.text_tokenizer != "train" and not Path(self.text_tokenizer).is_file():
            raise ConfigError("text_tokenizer", f"'train' or an existing tokenizer.json, got {self.text_tokenizer!r}")
        if self.text_vocab_size < 300:
            raise ConfigError("text_vocab_size", "must be >= 300 (256 bytes + merges)")
        if self.shard_rows < self.context:
            raise ConfigError("shard_rows", f"must be >= context ({self.context})")
        if self.pack_buffer < 1:
            raise ConfigError("pack_buffer", "must be >= 1")
        if not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", self.memory_limit):
            raise ConfigError("memory_limit", f"a size such as 512MB or 4GB, got {self.memory_limit!r}")

    def plan_fields(self) -> dict:
        """What must not change between a run and its resume (bundles would differ)."""
        d = to_dict(self)
        for k in ("ray", "output", "memory_limit"):  # how, not what: free to change on resume
            d.pop(k)
        d["tokens"] = str(Path(self.tokens).resolve())
        if d["text_frontends"] == FRONTEND_DEFAULT and d["default_language"] == "en":  # as before they existed
            del d["text_frontends"], d["default_language"]
        if self.text_tokenizer != "train":
            d["text_tokenizer"] = str(Path(self.text_tokenizer).resolve())
        return json.loads(json.dumps(d, sort_keys=True))

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.plan_fields(), sort_keys=True).encode()).hexdigest()[:16]
