"""Generation from a trained UniAudio LM checkpoint (OUT/model.pt): KV-cached sampling.

The prompt is built by the same vocabulary code as the training bundles (`sequence_rows`), up
to and including the target segment's begin row. The global transformer keeps one KV cache for
the whole sequence; each new frame runs the local transformer over its K slots with a fresh
cache. One segment-ending rule for both models: an audio segment ends on its own end marker
(`<audio_end>`) or at the task's maximum length; every other non-audio id (a text token, another
special) is masked out where the audio could end, so a briefly trained model that puts mass on
text ids does not cut its audio short. Slot 0 samples codes or `<audio_end>`; slots 1..K-1 of a
frame only codebook codes. Each generation reports why it stopped (`report`: end_marker or
max_length, and the frames). Sampling: temperature, top-k, top-p, from a seeded generator (the
same seed gives the same audio).

The multi-stream model (UniAudio 2.0) decides each row with its text head, restricted to
`<empty>` (an audio row, whose K codes its local decoder samples) and `<audio_end>`. It also
writes text (asr, caption): the text head restricted to the text range and the segment's end
marker.

Tokenizers whose lower-rate rows hold one code for several frames (`held_rows`, `hold`: the
factorized tokenizer's semantic rows) get those slots copied from the group's first frame
instead of sampled, and the audio may end only after a whole group: what they decode."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import checkpoint, storage
from ..tokenize import frontends
from ..tokenize.score import score_text
from ..tokenize.vocab import Vocabulary
from .model import ModelConfig, make_model


# condition audio (+ an enrollment or an instruction) -> target audio: the engine's simulated pairs
AUDIO_TO_AUDIO = ("se", "dereverb", "tse", "sound_edit")
# served only by checkpoints whose sentences held them
LEARNED_ONLY = AUDIO_TO_AUDIO + ("instruct_tts", "svs", "speech_edit", "vc")


def max_length(task: str, input_seconds: float = 0.0) -> float:
    """Seconds a task's generated audio may run (its segment-ending rule's maximum): tts and
    instruct_tts 12 s, tta 5 s, ttm 10 s; audio-to-audio tasks 1.5x their input + 1 s (their target
    is as long as it); svs 1.5x its score's length + 1 s."""
    fixed = {"tts": 12.0, "instruct_tts": 12.0, "tta": 5.0, "ttm": 10.0}
    return fixed[task] if task in fixed else 1.5 * input_seconds + 1.0


@dataclass
class Sampling:
    temperature: float = 0.9
    top_k: int = 30  # UniAudio's inference default
    top_p: float = 1.0
    seed: int = 0

    def validate(self) -> None:
        if self.temperature < 0 or self.top_k < 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"sampling: temperature >= 0, top_k >= 0, 0 < top_p <= 1; got {self}")


def _pick(logits: torch.Tensor, s: Sampling, gen: torch.Generator) -> int:
    logits = logits.float().cpu()  # sampled on the CPU with a seeded generator: the same on every device
    if s.temperature == 0:
        return int(logits.argmax())
    logits = logits / s.temperature
    if s.top_k and s.top_k < logits.numel():
        kth = torch.topk(logits, s.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, -1)
    if s.top_p < 1:
        sp, si = probs.sort(descending=True)
        keep = sp.cumsum(0) - sp < s.top_p
        probs = torch.zeros_like(probs).scatter(0, si[keep], sp[keep])
        probs /= probs.sum()
    return int(torch.multinomial(probs, 1, generator=gen))


class LMGenerator:
    """A model.pt with its vocabulary, text BPE and audio tokenizer, ready to sample."""

    def __init__(self, path: str | Path, device: str = "auto"):
        from tokenizers import Tokenizer

        from ..tokenize.text import BPETokenizer

        ck = checkpoint.load(path)
        if ck.get("kind") != "uniaudio-lm":
            raise ValueError(f"{path} is not a uniaudio LM checkpoint (OUT/model.pt of `uniaudio train lm`)")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.path, self.ck, self.device = path if storage.is_uri(path) else Path(path), ck, torch.device(device)
        self.vocab = Vocabulary.from_dict(ck["vocab"])
        cfg = ModelConfig(**ck["model_config"])
        self.kind = cfg.kind
        # what it can do: audio out always; the multi-stream model writes text too, and with an
        # LLM middle answers MMLU through its backbone
        self.tasks = ("tts", "tta", "ttm")
        if cfg.kind == "multistream":
            self.tasks += ("asr", "caption") + (("mmlu",) if cfg.llm_vocab else ())
        # tasks from the engine's pairs and measures only when its sentences held them (older: none)
        self.tasks += tuple(t for t in LEARNED_ONLY if t in ck.get("trained_tasks", ()))
        self.model = make_model(cfg, self.vocab).to(self.device).eval()
        self.model.load_state_dict(ck["model"])
        self.bpe = BPETokenizer(Tokenizer.from_str(ck["text_tokenizer"]))
        self.audio_range = self.vocab.audio_range()
        self.audio_end = self.vocab.id("<audio_end>")
        self._audio_tok = None

    @property
    def audio(self):
        """The audio tokenizer the bundles were made with (decodes the generated codes)."""
        if self._audio_tok is None:
            from ..tokenize import get

            spec = self.ck["audio_tokenizer"]
            self._audio_tok = get(spec["name"], **spec.get("options", {}))
        return self._audio_tok

    def card(self) -> dict:
        return {"checkpoint": str(self.path), "step": self.ck.get("step"), "model_config": self.ck["model_config"],
                "n_parameters": sum(p.numel() for p in self.model.parameters()),
                "audio_tokenizer": self.ck["audio_tokenizer"], "data": self.ck.get("data")}

    def prefix(self, task: str, segments: list[tuple[str, str, object]]) -> np.ndarray:
        """Rows of `<start> <task> segments... <audio_start>`: the prompt for an audio target."""
        dummy = np.zeros((self.audio_range.codebooks, 1), np.int64)
        rows = self.vocab.sequence_rows(task, segments + [("audio", "audio", dummy)], len(segments))
        return rows.ids[: rows.segment_rows[-1][0] + 1]

    @torch.no_grad()
    def _frame(self, h: torch.Tensor, s: Sampling, gen: torch.Generator, allow_end: bool, forced: dict[int, int]):
        """Sample one row from the global state h [d]: ("audio", K ids) or ("token", id); the
        slots in `forced` take the given ids (held rows; never with allow_end)."""
        m, k = self.model, self.model.cfg.n_streams
        caches = [dict() for _ in m.local_blocks]
        prev = torch.tensor([[m.cfg.vocab_size]], device=self.device)
        ids = []
        for slot in range(k):
            x = m.local_forward(h[None], prev, caches, start=slot)
            if slot in forced:
                ids.append(forced[slot])
                prev = torch.tensor([[forced[slot]]], device=self.device)
                continue
            logits = m.slot_logits(x[:, -1], slot)[0]
            support = m.support(slot)
            keep = (support >= self.audio_range.offset) & (support < self.audio_range.end)
            if slot == 0 and allow_end:  # codes or the segment's end marker, nothing else
                keep = keep | (support == self.audio_end)
            tok = int(support[_pick(logits.masked_fill(~keep, float("-inf")), s, gen)])
            if tok == self.audio_end:
                return "end", tok
            ids.append(tok)
            prev = torch.tensor([[tok]], device=self.device)
        return "audio", ids

    @torch.no_grad()
    def _ms_frame(self, h: torch.Tensor, s: Sampling, gen: torch.Generator, allow_end: bool, forced: dict[int, int]):
        """The multi-stream model's next row from h [d]: the text head says whether it is audio
        (`<empty>`) or a token; an audio row's K codes come from the local decoder (the slots in
        `forced` take the given ids)."""
        m, k = self.model, self.model.cfg.n_streams
        if allow_end:  # before min_frames: audio; then <empty> (audio) or <audio_end>, nothing else
            sup = m.text_support
            logits = m.text_logits(h).masked_fill((sup != m.cfg.empty_id) & (sup != self.audio_end), float("-inf"))
            if int(sup[_pick(logits, s, gen)]) == self.audio_end:
                return "end", None
        caches = [dict() for _ in m.local_blocks]
        prev = torch.tensor([[m.cfg.vocab_size]], device=self.device)
        ids = []
        for slot in range(k):
            x = m.local_forward(h[None], prev, caches, start=slot)
            if slot in forced:
                tok = forced[slot]
            else:
                tok = m.audio_offset + slot * m.codebook_size + _pick(m.slot_logits(x[:, -1], slot)[0], s, gen)
            ids.append(tok)
            prev = torch.tensor([[tok]], device=self.device)
        return "audio", ids

    @torch.no_grad()
    def continue_text(self, prefix: np.ndarray, end_id: int, s: Sampling, max_tokens: int = 200) -> list[int]:
        """Text-range ids sampled after the prefix rows until `end_id` (the segment's end
        marker): the multi-stream model's text head, restricted to text ids and that marker."""
        s.validate()
        m, k = self.model, self.model.cfg.n_streams
        if len(prefix) + max_tokens > m.cfg.max_rows:
            max_tokens = m.cfg.max_rows - len(prefix)
        text = self.vocab.ranges["text"]
        sup = m.text_support
        allowed = ((sup >= text.offset) & (sup < text.offset + text.size)) | (sup == end_id)
        gen = torch.Generator().manual_seed(s.seed)
        caches = [dict() for _ in range(m.n_global_layers())]
        h = m.global_forward(torch.as_tensor(prefix, device=self.device)[None],
                             torch.arange(len(prefix), device=self.device)[None], None, caches)[0, -1]
        out: list[int] = []
        for i in range(max_tokens):
            tok = int(sup[_pick(m.text_logits(h).masked_fill(~allowed, float("-inf")), s, gen)])
            if tok == end_id:
                break
            out.append(tok - text.offset)
            row = torch.full((1, 1, k), tok, device=self.device)
            h = m.global_forward(row, torch.tensor([[len(prefix) + i]], device=self.device), None, caches)[0, -1]
        return out

    def _text_for(self, task: str, segments, modality: str, s: Sampling) -> str:
        if task not in self.tasks:
            raise ValueError(f"{self.path}: a {self.kind} checkpoint does not write text ({task}); "
                             "the multi-stream model does")
        rows = self.vocab.sequence_rows(task, segments + [(modality, "text", [0])], len(segments))
        prefix = rows.ids[: rows.segment_rows[-1][0] + 1]
        return self.bpe.decode(self.continue_text(prefix, self.vocab.id(f"<{modality}_end>"), s)).strip()

    def asr(self, wav: np.ndarray, sr: int, s: Sampling) -> str:
        """The transcript of speech (multi-stream model: text out through its text head)."""
        return self._text_for("asr", [("audio", "audio", self.audio.encode(wav, sr))], "text", s)

    def caption(self, wav: np.ndarray, sr: int, s: Sampling) -> str:
        return self._text_for("caption", [("audio", "audio", self.audio.encode(wav, sr))], "caption", s)

    @torch.no_grad()
    def continue_audio(self, prefix: np.ndarray, max_frames: int, s: Sampling, min_frames: int = 1,
                       held_rows: tuple[int, ...] = (), hold: int = 1, report: dict | None = None) -> np.ndarray:
        """Codes [K, frames] sampled after the prefix rows until the model ends the segment or
        `max_frames` (the task's maximum, or what the model's context leaves). The `held_rows` of
        every frame but the first of each group of `hold` copy that first frame's ids; the audio
        ends only at whole groups (a cut at max_frames drops a partial group). `report` (a dict)
        receives `stop` (end_marker / max_length) and `frames`."""
        s.validate()
        m = self.model
        if len(prefix) + max_frames > m.cfg.max_rows:
            max_frames = m.cfg.max_rows - len(prefix)
            if max_frames < 1:
                raise ValueError(f"prompt of {len(prefix)} rows leaves no room in the model's {m.cfg.max_rows} rows")
        gen = torch.Generator().manual_seed(s.seed)
        caches = [dict() for _ in range(m.n_global_layers() if self.kind == "multistream" else len(m.blocks))]
        frame = self._ms_frame if self.kind == "multistream" else self._frame
        ids = torch.as_tensor(prefix, device=self.device)[None]
        pos = torch.arange(len(prefix), device=self.device)[None]
        h = m.global_forward(ids, pos, None, caches)[0, -1]
        frames, stop = [], "max_length"
        for f in range(max_frames):
            forced = {r: frames[-1][r] for r in held_rows} if f % hold else {}
            kind, row = frame(h, s, gen, allow_end=f >= min_frames and not forced, forced=forced)
            if kind == "end":
                stop = "end_marker"
                break
            frames.append(row)
            step = torch.tensor([[row]], device=self.device)
            h = m.global_forward(step, torch.tensor([[len(prefix) + f]], device=self.device), None, caches)[0, -1]
        frames = frames[: len(frames) - len(frames) % hold]
        if report is not None:
            report.update(stop=stop, frames=len(frames), max_frames=max_frames)
        if not frames:
            return np.zeros((self.audio_range.codebooks, 0), np.int64)
        return self.vocab.decode_tokens("audio", np.array(frames).reshape(-1))

    def text_ids(self, text: str, *, transcript: bool = False, language: str | None = None) -> list[int]:
        """BPE ids of a text; a transcript first through the text front end its sentences used for
        `language` (None: their default language; checkpoints from before front ends: as written).
        Captions, instructions and scores go as written, as the sentence stage writes them."""
        fronts = self.ck.get("text_frontends") or {"text_frontends": {}, "default_language": "en"}
        if transcript and fronts["text_frontends"]:
            front = frontends.for_language(fronts["text_frontends"], language, fronts["default_language"])
            if front is None:
                raise ValueError(f"language {language!r} has no text front end in this checkpoint's sentences "
                                 f"({fronts['text_frontends']})")
            text = front(text)
        ids = self.bpe.encode(text)
        if not ids:
            raise ValueError("empty text")
        return ids

    def conditions(self, task: str, *, text: str | None = None, instruction: str | None = None,
                   wav: np.ndarray | None = None, sr: int = 0, prompt: np.ndarray | None = None, prompt_sr: int = 0,
                   prompt_seconds: float = 3.0, notes: list | str | None = None,
                   span: tuple[float, float] | None = None, language: str | None = None) -> list:
        """The condition segments of one audio-out item, as the sentence stage lays them out:
        tts: text (+ the first `prompt_seconds` of a prompt of the voice); instruct_tts: the
        instruction (a caption segment) + text; tta / ttm: caption (`text`); se / dereverb: the
        input audio; tse: + the enrollment's first `prompt_seconds`; sound_edit: the input sound +
        the instruction; svs: the score as text (`notes`, tokenize/score.py); speech_edit: the
        input before and after `span` (the seconds of the word to replace) + the edited text; vc:
        the source's content codes (the factorized tokenizer's semantic rows) + the first
        `prompt_seconds` of the target voice."""
        def cut(x, x_sr):
            return self.audio.encode(x, x_sr)[:, : int(round(prompt_seconds * self.audio.frame_rate))]

        if task == "svs":
            return [("text", "text", self.text_ids(score_text(notes)))]
        if task == "vc":  # content of the source + a prompt of the voice, as the content_of sequences
            if wav is None or prompt is None:
                raise ValueError("vc needs the source speech and a prompt of the target voice")
            if "semantic" not in self.vocab.ranges:
                raise ValueError(f"{self.path}: its vocabulary has no content codes (train on tokens made with "
                                 "`measure: [semantic]`)")
            from ..pipeline.stages import semantic_tokenizer

            content = semantic_tokenizer()
            learned = (self.ck.get("semantic_tokenizer") or {}).get("version")
            if learned and learned != content.semantic_describe()["version"]:
                raise ValueError(f"{self.path} learned vc from content codes of {learned}, the factorized tokenizer "
                                 f"here is {content.semantic_describe()['version']}")
            return [("semantic", "semantic", content.semantic_codes(wav, sr)),
                    ("prompt", "audio", cut(prompt, prompt_sr))]
        if task == "speech_edit":  # infilling, as the sentence stage's masked_word sequences
            if wav is None or not (text or "").strip() or span is None:
                raise ValueError("speech_edit needs the input speech, the edited text and the span of the word to replace")
            codes = self.audio.encode(wav, sr)
            fr, n = self.audio.frame_rate, codes.shape[1]
            a, b = max(1, int(span[0] * fr)), min(n - 1, int(np.ceil(span[1] * fr)))
            if not 0 < a < b < n:
                raise ValueError(f"speech_edit: the span {span} s leaves no speech on one side of a {n / fr:.2f} s input")
            return [("audio", "audio", codes[:, :a]), ("audio", "audio", codes[:, b:]),
                    ("text", "text", self.text_ids(text.strip(), transcript=True, language=language))]
        if task == "instruct_tts":
            if not (text or "").strip() or not (instruction or "").strip():
                raise ValueError("instruct_tts needs a text and an instruction")
            return [("caption", "text", self.text_ids(instruction.strip())),
                    ("text", "text", self.text_ids(text.strip(), transcript=True, language=language))]
        if task in ("tts", "tta", "ttm"):
            if not (text or "").strip():
                raise ValueError(f"{task} needs a text")
            segs = [("text" if task == "tts" else "caption", "text",
                     self.text_ids(text.strip(), transcript=task == "tts", language=language))]
            return segs + ([("prompt", "audio", cut(prompt, prompt_sr))] if task == "tts" and prompt is not None else [])
        if task not in AUDIO_TO_AUDIO:
            raise ValueError(f"{self.path} generates no audio for {task!r}")
        if wav is None:
            raise ValueError(f"{task} needs its input audio")
        segs = [("audio", "audio", self.audio.encode(wav, sr))]
        if task == "tse":
            if prompt is None:
                raise ValueError("tse needs an enrollment of the target speaker")
            segs.append(("prompt", "audio", cut(prompt, prompt_sr)))
        if task == "sound_edit":
            if not (instruction or "").strip():
                raise ValueError("sound_edit needs an instruction")
            segs.append(("text", "text", self.text_ids(instruction.strip())))
        return segs

    def solved(self, conditions: list, target: np.ndarray, sr: int) -> list:
        """An in-context example: an item's conditions and its reference output."""
        return conditions + [("audio", "audio", self.audio.encode(target, sr))]

    def generate(self, task: str, conditions: list, s: Sampling, *, max_seconds: float, shots: list[list] = (),
                 report: dict | None = None) -> np.ndarray:
        """The audio after `conditions`; `shots` (solved examples of the same task) go first in the
        same auditory sentence: UniAudio 2.0's in-context use, `<start> <task> ex1 ... exK item <target>`."""
        segments = [seg for shot in shots for seg in shot] + list(conditions)
        tok = self.audio
        frames = self.continue_audio(self.prefix(task, segments), int(max_seconds * tok.frame_rate), s,
                                     min_frames=int(0.2 * tok.frame_rate), held_rows=tok.held_rows, hold=tok.hold,
                                     report=report)
        if frames.shape[1] == 0:
            raise ValueError("the model generated no audio frames")
        return self.audio.decode(frames)

    def tts(self, text: str, prompt_wav: np.ndarray | None, prompt_sr: int, s: Sampling, *, prompt_seconds: float = 3.0,
            max_seconds: float = 12.0, report: dict | None = None) -> np.ndarray:
        """Speech for `text` in the voice of a prompt (its first `prompt_seconds` are used, as in training)."""
        conds = self.conditions("tts", text=text, prompt=prompt_wav, prompt_sr=prompt_sr, prompt_seconds=prompt_seconds)
        return self.generate("tts", conds, s, max_seconds=max_seconds, report=report)

    def transform(self, task: str, wav: np.ndarray, sr: int, s: Sampling, *, enroll: np.ndarray | None = None,
                  enroll_sr: int = 0, instruction: str | None = None, report: dict | None = None) -> np.ndarray:
        """se / dereverb / tse / sound_edit: the input audio (tse: + an enrollment; sound_edit: + the
        instruction) -> the audio, at most 1.5x the input's length + 1 s (the target is as long)."""
        conds = self.conditions(task, wav=wav, sr=sr, prompt=enroll, prompt_sr=enroll_sr, instruction=instruction)
        return self.generate(task, conds, s, max_seconds=max_length(task, len(wav) / sr), report=report)

    def text_to_audio(self, task: str, caption: str, s: Sampling, *, max_seconds: float = 10.0,
                      report: dict | None = None) -> np.ndarray:
        return self.generate(task, self.conditions(task, text=caption), s, max_seconds=max_seconds, report=report)
