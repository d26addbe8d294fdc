"""Systems under test. Every system ends up as a folder of outputs named by utterance id
(`{task}/{name}.wav` or `.txt`, name = `output_file(...)`: the id itself when it is a safe
file name, else a sanitised form with a hash, since test-set ids are untrusted), so built-in
baselines are scored exactly like anyone's outputs. Built-ins write that folder; `--system
DIR` points at an existing one; `--system pkg.module:Class` loads an adapter with
`produce(task, rows, outdir)` (which should name files with `output_file`). An item a system
cannot produce is recorded in `system.failures` (id -> reason) and the others go on."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from .. import audio, storage, textnorm
from .tasks import TASKS, Task, output_file, row_value


def generation_log(outdir: Path) -> Path:
    """Beside a system's output folder (which holds outputs only): one JSON line per generated
    item, `{id, stop, frames, max_frames}` (why the generation stopped)."""
    return outdir.with_name(f"{outdir.name}.generation.jsonl")


class System:
    name = ""
    # card keys that describe what the last produce() did, not which outputs it makes: left out
    # of the stamp that decides whether earlier outputs are reused
    run_state: tuple[str, ...] = ("torch_threads", "generation_stops", "scoring")
    # tasks it can produce outputs for; () = any task. The floors and ceilings that work on any
    # task's rows (ground truth, passthrough, shuffled) set `generic`: they serve the tasks whose
    # definition lists them (`Task.systems`), so a task added in one place gets them too
    tasks: tuple[str, ...] = ()
    generic = False

    def produce(self, task: Task, rows: list[dict], outdir: Path) -> None:
        raise NotImplementedError

    def each(self, rows: list[dict], fn) -> None:
        """fn(row) for every row; an item that raises is recorded in `self.failures` with
        its reason and the rest go on."""
        failures = self.__dict__.setdefault("failures", {})
        for r in rows:
            try:
                fn(r)
            except Exception as e:  # noqa: BLE001 - recorded per item, shown as that item's failure
                failures[r["id"]] = f"{type(e).__name__}: {e}"

    def card(self) -> dict:
        """What the aggregate records about the system (its model and size where it has one)."""
        return {"name": self.name, "kind": type(self).__name__}


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
    name, generic = "ground-truth", True

    def produce(self, task, rows, outdir):
        def one(r):
            if task.output == "text":  # the reference text: transcript, answer key, or first caption
                output_file(outdir, r["id"], ".txt").write_text(row_value(r, task.refs.get("ref_text", "caption")) or "")
            else:  # native rate: 48 kHz metrics (CLAP) must not get a 16 kHz copy
                wav, sr = audio.load(r["path"])
                audio.save(output_file(outdir, r["id"], ".wav"), wav, sr)

        self.each(rows, one)


class WhisperTiny(System):
    """ASR baseline: faster-whisper with the packaged Whisper tiny.en."""
    name, tasks = "whisper-tiny", ("asr",)

    def produce(self, task, rows, outdir):
        from ..transcribers import FasterWhisper

        asr = FasterWhisper()

        def one(r):
            lang = textnorm.primary_language(r.get("language") or "en")
            if lang != "en":  # never a transcript in the wrong language scored as if it were one
                raise ValueError(f"Whisper tiny.en is English-only and this item is {r['language']!r}: score a "
                                 "multilingual ASR (--system pkg.module:Class, or a folder of its transcripts)")
            wav, _ = audio.load(r["path"], 16000)
            output_file(outdir, r["id"], ".txt").write_text(asr.transcribe([wav])[0])

        self.each(rows, one)


class Espeak(System):
    """TTS baseline: espeak-ng, one fixed voice per language (it ignores the speaker prompt and,
    for instruct_tts, the instruction): `voice` for English, `cmn-latn-pinyin` for Mandarin,
    espeak-ng's voice of that name for another language (an item in a language espeak-ng lacks
    fails with its reason). For svs it speaks the lyrics (no melody); for speech_edit it speaks
    the edited transcript anew (the words right, the original voice lost)."""
    name, tasks = "espeak", ("tts", "instruct_tts", "svs", "speech_edit")
    VOICES = {"zh": "cmn-latn-pinyin"}  # espeak-ng's name where it is not the language's own code (its
    # plain `cmn` reads the pinyin it makes of characters as English on Debian's 1.51)

    def __init__(self, voice: str = "en-us"):
        self.voice = voice

    def voice_for(self, language: str | None) -> str:
        lang = textnorm.primary_language(language or "en")
        return self.voice if lang == "en" else self.VOICES.get(lang, lang)

    def produce(self, task, rows, outdir):
        from ..demo.tools import espeak

        def one(r):
            wav, sr = espeak(r["text"].lower(), self.voice_for(r.get("language")))
            audio.save(output_file(outdir, r["id"], ".wav"), wav, sr)

        self.each(rows, one)


class Passthrough(System):
    """The floor of transformation tasks: returns the task's input audio unchanged (the
    noisy speech for se, the reverberant speech for dereverb, the mixture for tse, the source
    speaker for vc, the unedited sound or speech for sound_edit and speech_edit)."""
    name, generic = "passthrough", True

    def produce(self, task, rows, outdir):
        def one(r):
            wav, sr = audio.load(row_value(r, task.input))
            audio.save(output_file(outdir, r["id"], ".wav"), wav, sr)

        self.each(rows, one)


class Shuffled(System):
    """Floor for generation tasks: each item gets the reference of another item (right
    distribution, wrong content), so CLAP, KL, WER and SIM must score it worse than the
    ground truth. For text tasks (asr, caption): another item's transcript or caption."""
    name, generic = "shuffled", True

    def produce(self, task, rows, outdir):
        other = stand_ins(rows)

        def one(r):
            if task.output == "text":
                text = row_value(other[r["id"]], task.refs.get("ref_text", "caption"))
                output_file(outdir, r["id"], ".txt").write_text(text or "")
                return
            wav, sr = audio.load(other[r["id"]]["path"])
            audio.save(output_file(outdir, r["id"], ".wav"), wav, sr)

        self.each(sorted(rows, key=lambda r: r["id"]), one)


def stand_ins(rows: list[dict]) -> dict[str, dict]:
    """Each item's stand-in for the shuffled floor: in id order, the item half the set away
    (not the next one: in a set grouped by speaker the next item is often this item's own
    speaker prompt, and SIM then compared the prompt with itself, scoring the floor above the
    ground truth), skipping items of the same speaker and items whose audio this item is given
    (its reference, prompt, input or enrollment) and, for instructed speech, items asking for
    any of the same attributes (their reference would satisfy this item's request); without
    any such item, any other item."""
    order = sorted(rows, key=lambda r: r["id"])
    n = len(order)
    # each row's extra parsed once: the search below visits few candidates, but a published test
    # set has thousands of items
    given = [{r.get("path")} | {row_value(r, f"extra:{k}") for k in ("prompt_path", "input_path", "enroll_path")}
             for r in order]
    def requested(r) -> set:  # (attribute, value) pairs; a test set's malformed field asks for nothing
        a = row_value(r, "extra:attributes")
        return {(str(k), json.dumps(v, sort_keys=True)) for k, v in a.items()} if isinstance(a, dict) else set()

    attrs = [requested(r) for r in order]

    def fits(k: int, j: int) -> bool:
        r, c = order[k], order[j]
        return c.get("path") not in given[k] and not attrs[k] & attrs[j] \
            and not (r.get("speaker") and c.get("speaker") == r.get("speaker"))

    out = {}
    for k, r in enumerate(order):
        ring = [(k + n // 2 + j) % n for j in range(n)]
        others = [j for j in ring if j != k] or [k]
        out[r["id"]] = order[next((j for j in others if fits(k, j)), others[0])]
    return out


class CodecResynthesis(System):
    """codec:NAME: encode and decode the reference with a registered tokenizer."""
    tasks = ("codec",)

    def __init__(self, tokenizer: str, **options):
        from ..tokenize import get

        self.tok = get(tokenizer, **options)
        self.name = f"codec-{tokenizer}"

    def produce(self, task, rows, outdir):
        def one(r):
            wav, sr = audio.load(r["path"], self.tok.sample_rate)
            out = self.tok.decode(self.tok.encode(wav, sr))
            audio.save(output_file(outdir, r["id"], ".wav"), out, self.tok.sample_rate)

        self.each(rows, one)


class LanguageModel(System):
    """lm:MODEL: a transformers causal LM (local dir, $UNIAUDIO_MODELS or HF cache) answers
    each MMLU prompt with the letter of highest log-likelihood (lm-eval's protocol)."""
    tasks = ("mmlu",)

    def __init__(self, model: str):
        self.model = model
        self.name = f"lm-{Path(model).name}"

    def load(self):
        from .tasks.mmlu import HFCausalLM

        return HFCausalLM(self.model)

    def produce(self, task, rows, outdir):
        lm = self.load()
        self.n_parameters = sum(p.numel() for p in lm.model.parameters())
        self.settings = lm.settings()
        answer_mmlu(self, lm, rows, outdir)

    def card(self) -> dict:
        return dict(super().card(), model=self.model, n_parameters=getattr(self, "n_parameters", None),
                    scoring=getattr(self, "settings", None))


def answer_mmlu(system: System, lm, rows: list[dict], outdir: Path) -> None:
    """Each MMLU prompt answered by the letter of highest log-likelihood (lm-eval's rule)."""
    import json

    from tqdm import tqdm

    from .tasks.mmlu import LETTERS, answer

    def one(r):
        letter, lls = answer(lm, r["text"])
        # lm-eval's per-sample record: every choice's log-likelihood and the pick
        output_file(outdir, r["id"], ".json").write_text(json.dumps(
            {"prediction": letter, "loglikelihoods": dict(zip(LETTERS, lls)), "truncated_tokens": lm.truncated}))
        output_file(outdir, r["id"], ".txt").write_text(letter)

    system.each(tqdm(rows, desc=f"{system.name} answering", unit="q", leave=False), one)


class ChanceLM(LanguageModel):
    """The chance floor for mmlu, through the real scoring path: a randomly initialised tiny
    Llama (seed 0) over a byte-level tokenizer, built in memory: a chance-level floor (random
    weights favour some letter, so on a small set it can land well below 25%)."""
    name = "chance-lm"

    def __init__(self):
        self.model = "random-init tiny Llama (chance baseline, not a trained model)"

    def card(self) -> dict:
        return dict(super().card(), test_model=True, warning="random weights: a chance-level floor, not a model's score")

    def load(self):
        from .tasks.mmlu import HFCausalLM

        return HFCausalLM(self.model, objects=self.objects())

    @staticmethod
    def objects() -> tuple:
        """(tokenizer, model): the byte-level tokenizer and the seeded random tiny Llama."""
        import torch
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers
        from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

        byte_vocab = {c: i for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}  # alphabet() order varies
        tok = Tokenizer(models.BPE(vocab=byte_vocab, merges=[]))
        tok.pre_tokenizer, tok.decoder = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
        fast = PreTrainedTokenizerFast(tokenizer_object=tok)
        torch.manual_seed(0)
        cfg = LlamaConfig(vocab_size=len(byte_vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096)
        return fast, LlamaForCausalLM(cfg)


class LMCheckpoint(System):
    """lm-ckpt:PATH: a `uniaudio train lm` checkpoint (OUT or OUT/model.pt) generates speech
    from text + a same-speaker prompt (tts), sound/music from captions (tta, ttm), and, when its
    sentences held the engine's simulated pairs, clean speech from noisy (se) or reverberant
    (dereverb) speech, the target speaker from a mixture + enrollment (tse) and an edited sound
    from a sound + an instruction (sound_edit), speech in a described style (instruct_tts, from the
    engine's prosody measure), singing from a score (svs, the demo's singing corpus) and edited
    speech (speech_edit, learned as infilling from the engine's word timings), and a voice
    converted from the source's content codes + a prompt (vc); sampled with a
    seed per item (a stable hash of its id) so reruns give the same outputs. A multi-stream
    checkpoint also writes transcripts (asr) and captions, and with an LLM middle answers MMLU
    through its backbone (lm-eval's log-likelihood rule).

    `shots=K` (`--system-option shots=K`): each audio-out item is generated after K solved items
    of the same test set (their conditions and reference outputs) in one auditory sentence,
    UniAudio 2.0's in-context use; the K are a stable draw among the other items of the set, and
    the system's name says `-Kshot`."""
    tasks = ("tts", "tta", "ttm")
    stochastic = True  # it samples: `benchmark run --seeds N` runs it N times (run_seed 0..N-1)
    run_seed = 0

    def __init__(self, path: str, shots: int = 0, **sampling):
        if isinstance(shots, bool) or not isinstance(shots, int) or not 0 <= shots <= 16:
            raise ValueError(f"lm-ckpt: shots must be an integer in [0, 16], got {shots!r}")
        unknown = sorted(set(sampling) - {"temperature", "top_k", "top_p"})
        if unknown:
            raise ValueError(f"lm-ckpt: unknown option(s) {unknown}; known: shots, temperature, top_k, top_p")
        if storage.is_uri(path):  # an s3:// out folder or its model.pt
            self.path = path if path.endswith(".pt") else storage.join(path, "model.pt")
            found, parent = storage.exists(self.path), self.path.rsplit("/", 2)[-2]
        else:
            p = Path(path)
            self.path = p / "model.pt" if p.is_dir() else p
            found, parent = self.path.is_file(), self.path.parent.name
        if not found:
            raise ValueError(f"lm-ckpt: {self.path} not found (give a `uniaudio train lm` out folder or its model.pt)")
        self.name = f"lm-ckpt-{parent}" + (f"-{shots}shot" if shots else "")
        self.sampling, self.shots, self.test_sets = sampling, shots, {}
        from ..train.generate import LMGenerator

        self.generator = LMGenerator(self.path)  # loaded once: its model kind says which tasks it serves
        self.tasks = self.generator.tasks

    def produce(self, task, rows, outdir):
        import hashlib

        from tqdm import tqdm

        from ..train.generate import Sampling, max_length

        gen = self.generator
        if task.name == "mmlu":
            from .backbone import backbone_mmlu_model

            lm = backbone_mmlu_model(gen)
            self.settings = lm.settings()
            return answer_mmlu(self, lm, rows, outdir)

        def one(r):
            key = r["id"] if not self.run_seed else f"{self.run_seed}\x1f{r['id']}"  # run 0: the seeds of before
            seed = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "little")
            s = Sampling(**{**self.sampling, "seed": seed})
            if task.name in ("asr", "caption"):
                wav, sr = audio.load(r["path"])
                text = gen.asr(wav, sr, s) if task.name == "asr" else gen.caption(wav, sr, s)
                output_file(outdir, r["id"], ".txt").write_text(text)
                return
            report, (conds, seconds) = {}, self._conditions(task, r)
            shots = [gen.solved(self._conditions(task, x)[0], *audio.load(x["path"])) for x in self._shots(task, r)]
            out = gen.generate(task.name, conds, s, max_seconds=max_length(task.name, seconds), shots=shots,
                               report=report)
            audio.save(output_file(outdir, r["id"], ".wav"), out, gen.audio.sample_rate)
            stops[r["id"]] = report

        import torch

        # sampled tokens can flip with the float reduction order, which follows torch's intra-op thread
        # count (measured: the same seeds at 1 and 2 threads gave different audio): the card records it
        self.torch_threads = torch.get_num_threads()
        stops: dict[str, dict] = {}
        try:
            self.each(tqdm(rows, desc=f"{self.name} {task.name}", unit="item", leave=False), one)
        finally:
            if stops:  # appended: a resumed run adds the items it generated now
                with open(generation_log(outdir), "a") as f:
                    f.writelines(json.dumps({"id": k, **v}) + "\n" for k, v in stops.items())
            counts = self.__dict__.setdefault("stops", {})[task.name] = {}  # this run's items (one seed)
            for v in stops.values():
                counts[v["stop"]] = counts.get(v["stop"], 0) + 1

    def _conditions(self, task, r) -> tuple[list, float]:
        """(the condition segments of a test row, its input's seconds) for an audio-out task."""
        t = task.name
        if t == "tts":
            prompt = row_value(r, "extra:prompt_path")
            wav, sr = audio.load(prompt) if prompt else (None, 0)
            return self.generator.conditions(t, text=r["text"], prompt=wav, prompt_sr=sr, language=r.get("language")), 0.0
        if t in ("tta", "ttm"):
            return self.generator.conditions(t, text=r["caption"]), 0.0
        if t == "instruct_tts":
            return self.generator.conditions(t, text=r["text"], instruction=row_value(r, "extra:instruction"),
                                             language=r.get("language")), 0.0
        if t == "svs":
            notes = row_value(r, "extra:notes")
            return self.generator.conditions(t, notes=notes), sum(float(n["seconds"]) for n in notes)
        wav, sr = audio.load(row_value(r, task.input))  # noisy / reverberant / mixture / sound to edit
        if t == "speech_edit":
            return self.generator.conditions(t, wav=wav, sr=sr, text=r["text"], span=self._word_span(r, wav, sr),
                                             language=r.get("language")), \
                len(wav) / sr
        if t == "vc":  # the source's content in the voice of the prompt
            pwav, psr = audio.load(row_value(r, "extra:prompt_path"))
            return self.generator.conditions(t, wav=wav, sr=sr, prompt=pwav, prompt_sr=psr), len(wav) / sr
        enroll = row_value(r, "extra:enroll_path") if t == "tse" else None
        ewav, esr = audio.load(enroll) if enroll else (None, 0)
        instruction = row_value(r, "extra:instruction") if t == "sound_edit" else None
        return self.generator.conditions(t, wav=wav, sr=sr, prompt=ewav, prompt_sr=esr, instruction=instruction), \
            len(wav) / sr

    def _word_span(self, r, wav, sr) -> tuple[float, float]:
        """speech_edit: (start, end) seconds of the word the edit replaces in the input, from
        Whisper tiny.en's word timings (the aligner the engine's `words` measure uses): the timed
        word equal to `extra.old_word`, the one at the edit's position when it occurs twice."""
        import re

        from .. import transcribers

        if getattr(self, "_aligner", None) is None:
            self._aligner = transcribers.load("faster-whisper")
        norm = lambda w: re.sub(r"[^\w']", "", w.lower())  # noqa: E731
        old = norm(row_value(r, "extra:old_word") or "")
        before, after = (row_value(r, "extra:original_text") or "").split(), r["text"].split()
        at = next((i for i, (x, y) in enumerate(zip(before, after)) if x != y), None)
        _, words = self._aligner.transcribe_words([audio.resample(wav, sr, 16000)])[0]
        hits = [i for i, (w, _, _) in enumerate(words) if norm(w) == old]
        if not old or not hits:
            raise ValueError(f"speech_edit: the word to replace ({old!r}) was not heard in the input "
                             f"(heard {' '.join(w for w, _, _ in words)[:80]!r})")
        i = min(hits, key=lambda h: abs(h - at)) if at is not None else hits[0]
        return words[i][1], words[i][2]

    def see_test_set(self, task, rows: list[dict]) -> None:
        """The whole test set (the runner calls this before produce, which may get only the items a
        resume still lacks): where the in-context examples are drawn from, the same on every run."""
        self.test_sets[task.name] = rows

    def _shots(self, task, r) -> list[dict]:
        if not self.shots:
            return []
        import heapq

        from ..pipeline.draws import uniform

        pool = [x for x in self.test_sets.get(task.name, []) if x["id"] != r["id"]]
        if len(pool) < self.shots:
            raise ValueError(f"{self.shots} shots need {self.shots} other items in the {task.name} test set, "
                             f"it has {len(pool)}")
        return heapq.nsmallest(self.shots, pool, key=lambda x: uniform("shot", r["id"], x["id"]))

    def card(self) -> dict:
        return dict(super().card(), **self.generator.card(), sampling=self.sampling, shots=self.shots,
                    run_seed=self.run_seed,
                    torch_threads=getattr(self, "torch_threads", None), scoring=getattr(self, "settings", None),
                    generation_stops=getattr(self, "stops", None))


BUILTIN = {"ground-truth": GroundTruth, "whisper-tiny": WhisperTiny, "espeak": Espeak, "passthrough": Passthrough,
           "shuffled": Shuffled, "chance-lm": ChanceLM}
def serves(system, task: str) -> bool:
    """Whether a system (a built-in, or any adapter object) produces outputs for `task`."""
    if getattr(system, "generic", False):
        return task in TASKS and system.name in TASKS[task].systems
    tasks = getattr(system, "tasks", ())
    return not tasks or task in tasks


def served(system) -> list[str]:
    return [t for t in TASKS if serves(system, t)]


def baseline(task: str) -> str:
    """The system a plain `benchmark run --task TASK` scores: the first its definition lists."""
    return TASKS[task].systems[0]


def applicable(task: str) -> list[str]:
    """Every built-in system `benchmark run --task all` scores on `task`, its baseline first."""
    return list(TASKS[task].systems)


def load(spec: str, **options) -> System:
    """A built-in name, `codec:TOKENIZER`, `pkg.module:Class`, or a folder of outputs; `options`
    (`--system-option KEY=VALUE`) go to the systems that take them (lm-ckpt:)."""
    if options and not spec.startswith("lm-ckpt:"):
        raise ValueError(f"system {spec!r} takes no options (got {sorted(options)}); lm-ckpt: takes shots, "
                         "temperature, top_k, top_p")
    if spec in BUILTIN:
        return BUILTIN[spec]()
    if spec.startswith("codec:"):
        return CodecResynthesis(spec.split(":", 1)[1])
    if spec.startswith("lm:"):
        return LanguageModel(spec.split(":", 1)[1])
    if spec.startswith("lm-ckpt:"):
        return LMCheckpoint(spec.split(":", 1)[1], **options)
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
                     f"codec:TOKENIZER, lm:MODEL, lm-ckpt:CHECKPOINT, or pkg.module:Class")
