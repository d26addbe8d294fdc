"""The unified vocabulary: special tokens first, then one id range per tokenizer, and the
two row layouts of auditory sentences built on it.

Special tokens: <pad> <start> <end> <unk> <empty>, one <task:NAME> per task, and <NAME_start> /
<NAME_end> per modality. Audio codecs get n_codebooks * codebook_size ids (codebook q, code
c -> offset + q * codebook_size + c, as UniAudio flattens RVQ codes); text and phonemes
get their vocab size. A sequence follows UniAudio's layout
    <start> <task:T> <m1_start> tokens <m1_end> <m2_start> tokens <m2_end> ... <end>
and the loss mask covers the target segment (its tokens and end marker) and <end> only.

Rows (`sequence_rows`): the same sequence with one row per special/text token and one row per
audio frame. Rendered two ways from one `Rows` value:
- `uniaudio` (UniAudio's multi-scale layout): int [rows, K], an audio row holds the frame's K
  codebook ids, any other row its token repeated K times; loss mask [rows];
- `multistream` (UniAudio 2.0's): int [rows, K + 1], audio streams first and the text stream
  last; each row is either audio (text stream <empty>) or text/special (audio streams
  <empty>); a stream mask and a per-stream loss mask, both [rows, K + 1]."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import storage

TASKS = ("tts", "vc", "se", "tse", "asr", "tta", "ttm", "svs", "caption", "speech_edit", "sound_edit",
         "instruct_tts", "codec", "text", "interleave", "dereverb")  # new tasks go last: ids before stay
MODALITIES = ("text", "phone", "audio", "semantic", "caption", "prompt")
BASE = ("<pad>", "<start>", "<end>", "<unk>", "<empty>")  # <empty>: a silent stream of a multistream row


@dataclass
class Rows:
    """One sequence in rows: `ids` [rows, K] (the `uniaudio` layout), `loss` [rows] and the
    (start, end) rows of each segment."""
    ids: np.ndarray
    loss: np.ndarray
    segment_rows: list[tuple[int, int]]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Range:
    name: str
    offset: int
    size: int
    codebooks: int = 1  # >1: an audio codec, codes flattened per codebook

    @property
    def end(self) -> int:
        return self.offset + self.size * self.codebooks


class Vocabulary:
    def __init__(self, tasks: tuple[str, ...] = TASKS, modalities: tuple[str, ...] = MODALITIES):
        self.specials = list(BASE) + [f"<task:{t}>" for t in tasks]
        for m in modalities:
            self.specials += [f"<{m}_start>", f"<{m}_end>"]
        self.special_id = {t: i for i, t in enumerate(self.specials)}
        if len(self.special_id) != len(self.specials):
            raise ValueError("duplicate special tokens")
        self.ranges: dict[str, Range] = {}

    # --- building --------------------------------------------------------------------
    def add(self, name: str, size: int, codebooks: int = 1) -> Range:
        if name in self.ranges:
            raise ValueError(f"tokenizer range {name!r} already added")
        if size <= 0 or codebooks <= 0:
            raise ValueError(f"{name}: size and codebooks must be positive")
        r = Range(name, self.size, size, codebooks)
        self.ranges[name] = r
        return r

    @property
    def size(self) -> int:
        return max([len(self.specials)] + [r.end for r in self.ranges.values()])

    def id(self, token: str) -> int:
        if token not in self.special_id:
            raise KeyError(f"unknown special token {token!r}")
        return self.special_id[token]

    # --- tokens <-> ids ----------------------------------------------------------------
    def encode_tokens(self, name: str, tokens) -> np.ndarray:
        """Tokenizer-local tokens -> global ids. Audio codes [n_codebooks, frames] are
        flattened frame by frame (q0 q1 .. q0 q1 ..), as UniAudio does."""
        r = self.ranges[name]
        a = np.asarray(tokens, dtype=np.int64)
        if r.codebooks > 1:
            if a.ndim != 2 or a.shape[0] != r.codebooks:
                raise ValueError(f"{name}: expected codes [{r.codebooks}, frames], got {a.shape}")
            a = a + (np.arange(r.codebooks)[:, None] * r.size)
            a = a.T.reshape(-1)
        if a.size and (a.min() < 0 or a.max() >= r.size * r.codebooks):
            raise ValueError(f"{name}: token out of range [0, {r.size})")
        return a + r.offset

    def decode_tokens(self, name: str, ids) -> np.ndarray:
        r = self.ranges[name]
        a = np.asarray(ids, dtype=np.int64) - r.offset
        if a.size and (a.min() < 0 or a.max() >= r.size * r.codebooks):
            raise ValueError(f"{name}: id outside its range [{r.offset}, {r.end})")
        if r.codebooks > 1:
            if a.size % r.codebooks:
                raise ValueError(f"{name}: {a.size} ids is not a whole number of frames")
            a = a.reshape(-1, r.codebooks).T - (np.arange(r.codebooks)[:, None] * r.size)
        return a

    def owner(self, token_id: int) -> str:
        if 0 <= token_id < len(self.specials):
            return "special"
        for r in self.ranges.values():
            if r.offset <= token_id < r.end:
                return r.name
        raise ValueError(f"id {token_id} is outside the vocabulary (size {self.size})")

    # --- sequences -------------------------------------------------------------------
    def sequence(self, task: str, segments: list[tuple[str, str, object]], target) -> tuple[np.ndarray, np.ndarray]:
        """segments: (modality, tokenizer range, tokens); target: index (or indices) of the
        segment(s) the model must produce. Returns (ids, loss_mask)."""
        ids = [self.id("<start>"), self.id(f"<task:{task}>")]
        mask = [0, 0]
        targets = self._targets(target, len(segments))
        for k, (modality, name, tokens) in enumerate(segments):
            body = self.encode_tokens(name, tokens).tolist()
            is_t = int(k in targets)
            ids += [self.id(f"<{modality}_start>")] + body + [self.id(f"<{modality}_end>")]
            mask += [0] + [is_t] * len(body) + [is_t]
        ids.append(self.id("<end>"))
        mask.append(1)
        return np.array(ids, np.int64), np.array(mask, np.int8)

    @staticmethod
    def _targets(target, n: int) -> set[int]:
        targets = {target} if isinstance(target, (int, np.integer)) else set(target)
        bad = [t for t in targets if not 0 <= t < n]
        if bad or not targets:
            raise ValueError(f"target {sorted(bad) or target} is not a segment index (0..{n - 1})")
        return targets

    def audio_range(self) -> Range:
        """The one audio codec range (K = its codebooks) the row layouts are built for: the range
        named `audio`, else the one range with several codebooks (other multi-codebook ranges of a
        vocabulary with an `audio` range, such as vc's content codes, are token rows)."""
        audio = [r for r in self.ranges.values() if r.name.startswith("audio")] or \
            [r for r in self.ranges.values() if r.codebooks > 1]
        if len(audio) != 1:
            raise ValueError(f"row layouts need exactly one audio range, the vocabulary has {[r.name for r in audio]}")
        return audio[0]

    def sequence_rows(self, task: str, segments: list[tuple[str, str, object]], target) -> "Rows":
        """The sequence of `sequence` as rows (see the module docstring): audio segments (the
        audio range's codes [K, frames]) give one row per frame, every other token one row.
        Returns Rows with `segment_rows` = (start, end) rows of each segment, begin/end marks
        included."""
        audio = self.audio_range()
        k_streams = audio.codebooks
        targets = self._targets(target, len(segments))
        blocks: list[np.ndarray] = []
        loss: list[np.ndarray] = []

        def tokens_rows(token_ids, is_loss: int) -> None:
            a = np.asarray(token_ids, np.int64).reshape(-1, 1)
            blocks.append(np.repeat(a, k_streams, axis=1))
            loss.append(np.full(len(a), is_loss, np.uint8))

        tokens_rows([self.id("<start>"), self.id(f"<task:{task}>")], 0)
        spans, n = [], 2
        for k, (modality, name, tokens) in enumerate(segments):
            is_t = int(k in targets)
            start = n
            tokens_rows([self.id(f"<{modality}_start>")], 0)
            if name == audio.name:
                flat = self.encode_tokens(name, tokens)  # frame-major: q0 q1 .. per frame
                blocks.append(flat.reshape(-1, k_streams))
                loss.append(np.full(len(flat) // k_streams, is_t, np.uint8))
            else:
                tokens_rows(self.encode_tokens(name, tokens), is_t)
            tokens_rows([self.id(f"<{modality}_end>")], is_t)
            n = sum(len(b) for b in blocks)
            spans.append((start, n))
        tokens_rows([self.id("<end>")], 1)
        return Rows(np.concatenate(blocks), np.concatenate(loss), spans)

    def is_audio_row(self, ids: np.ndarray) -> np.ndarray:
        """[rows] bool for a `uniaudio`-layout array: rows whose ids lie in the audio range."""
        r = self.audio_range()
        first = np.asarray(ids)[:, 0]
        return (first >= r.offset) & (first < r.end)

    def multistream(self, ids: np.ndarray, loss: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`uniaudio` layout -> (int32 [rows, K+1], stream mask, per-stream loss mask)."""
        ids = np.asarray(ids)
        audio_rows = self.is_audio_row(ids)
        k = ids.shape[1]
        out = np.full((len(ids), k + 1), self.id("<empty>"), np.int32)
        out[audio_rows, :k] = ids[audio_rows]
        out[~audio_rows, k] = ids[~audio_rows, 0]
        streams = np.zeros((len(ids), k + 1), bool)
        streams[audio_rows, :k] = True
        streams[~audio_rows, k] = True
        return out, streams, streams & (np.asarray(loss)[:, None] > 0)

    def from_multistream(self, ms: np.ndarray) -> np.ndarray:
        """[rows, K+1] -> the `uniaudio` layout [rows, K] (the inverse of `multistream`)."""
        ms = np.asarray(ms)
        k = ms.shape[1] - 1
        text_rows = ms[:, k] != self.id("<empty>")
        out = ms[:, :k].astype(np.int64)
        out[text_rows] = ms[text_rows, k:k + 1]
        return out

    def parse_rows(self, ids: np.ndarray) -> tuple[str, list[tuple[str, str, np.ndarray]]]:
        """Inverse of `sequence_rows` (a `uniaudio`-layout array of one sequence)."""
        ids = np.asarray(ids)
        audio_rows = self.is_audio_row(ids)
        flat: list[int] = []
        for row, is_audio in zip(ids.tolist(), audio_rows.tolist()):
            flat += row if is_audio else row[:1]
        return self.parse(flat)

    def parse(self, ids) -> tuple[str, list[tuple[str, str, np.ndarray]]]:
        """Inverse of `sequence`: (task, [(modality, range name, local tokens)])."""
        ids = list(np.asarray(ids).tolist())
        if len(ids) < 3 or ids[0] != self.id("<start>") or ids[-1] != self.id("<end>"):
            raise ValueError("sequence must start with <start> and end with <end>")
        task_tok = self.specials[ids[1]] if ids[1] < len(self.specials) else ""
        if not task_tok.startswith("<task:"):
            raise ValueError("second token must be a task token")
        segs, i = [], 2
        while i < len(ids) - 1:
            tok = self.specials[ids[i]] if ids[i] < len(self.specials) else ""
            if not tok.endswith("_start>"):
                raise ValueError(f"expected a segment start at position {i}, got id {ids[i]}")
            modality = tok[1:-len("_start>")]
            j = ids.index(self.id(f"<{modality}_end>"), i + 1)
            body = ids[i + 1:j]
            name = self.owner(body[0]) if body else "special"
            if any(self.owner(t) != name for t in body):
                raise ValueError(f"segment <{modality}> at position {i} mixes tokenizer ranges")
            segs.append((modality, name, self.decode_tokens(name, body) if body else np.array([], np.int64)))
            i = j + 1
        return task_tok[len("<task:"):-1], segs

    # --- persistence -------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"specials": self.specials, "ranges": [r.__dict__ for r in self.ranges.values()]}

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(json.dumps(self.to_dict(), indent=2))
        return p

    @classmethod
    def load(cls, path: str | Path) -> "Vocabulary":
        return cls.from_dict(json.loads(storage.read_text(str(path))))

    @classmethod
    def from_dict(cls, d: dict) -> "Vocabulary":
        v = cls(tasks=(), modalities=())
        v.specials = d["specials"]
        v.special_id = {t: i for i, t in enumerate(v.specials)}
        for r in d["ranges"]:
            v.ranges[r["name"]] = Range(**r)
        return v
