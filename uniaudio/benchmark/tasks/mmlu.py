"""MMLU exactly as lm-eval-harness (0.4.13, task `mmlu`, model `hf`) scores it.

Prompt (its `_default_template_yaml`): `The following are multiple choice questions (with
answers) about {subject with spaces}.\n\n`, then the first 5 dev rows, each
`{question.strip()}\nA. {A}\nB. {B}\nC. {C}\nD. {D}\nAnswer: {answer}` joined by `\n\n`,
then `\n\n` and the test row in the same form ending `Answer:`. Choices are not stripped.

Scoring (its HFLM): the prediction is the letter whose continuation " A".." D" has the
highest log-likelihood. Context and continuation are encoded as `_encode_pair` does: trailing
whitespace of the context moves into the continuation, the whole string is encoded once and
the continuation is `whole[len(encode(context)):]` even when a token spans the boundary; special
tokens as the tokenizer adds them by default (a Llama tokenizer prepends its BOS, GPT-2's adds
nothing), unless the text already starts with the BOS (or, without one, the EOS) or
`add_bos_token` is set (True / False: always / never, for every model: lm-eval before 0.4.13
added none unless the model was a Gemma, which `add_bos_token=False` reproduces for the others);
context + continuation are cut from the left to the model's maximum length + 1; log-softmax in
the model's dtype unless `softmax_dtype` says.
Accuracy is micro-averaged over questions (and per subject).

Reads the official layout: data/dev/{subject}_dev.csv and data/test/{subject}_test.csv (no
header; question, A, B, C, D, answer); quoted fields may hold newlines and any character."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ...manifest import Record
from .base import DemoSuite, Task, metric, register

LETTERS = ("A", "B", "C", "D")


class MMLUFormatError(ValueError):
    pass


@dataclass(frozen=True)
class Question:
    subject: str
    question: str
    choices: tuple[str, str, str, str]
    answer: str


def read_csv(path: Path, subject: str) -> list[Question]:
    out = []
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise MMLUFormatError(f"{path}: not valid UTF-8 at byte {e.start}") from None
    # csv splits records itself (newline=""): a quoted field keeps its newlines, and \x85,
    # \x0c or \u2028 inside a field (which str.splitlines would break at) stay characters
    reader = csv.reader(io.StringIO(text, newline=""))
    for row in reader:
        n = reader.line_num
        if not row:
            continue
        if len(row) != 6:
            raise MMLUFormatError(f"{path} line {n}: expected 6 columns (question, A, B, C, D, answer), got {len(row)}")
        if row[5].strip() not in LETTERS:
            raise MMLUFormatError(f"{path} line {n}: answer must be one of A-D, got {row[5]!r}")
        out.append(Question(subject, row[0], tuple(row[1:5]), row[5].strip()))
    return out


def load(root: str | Path, subjects: list[str] | None = None) -> dict[str, tuple[list[Question], list[Question]]]:
    """subject -> (dev, test) from ROOT/data/{dev,test} (or ROOT/{dev,test})."""
    root = Path(root)
    base = root / "data" if (root / "data" / "test").is_dir() else root
    if not (base / "test").is_dir():
        raise FileNotFoundError(f"MMLU: no test/ folder under {root} (expected data/dev/*_dev.csv, data/test/*_test.csv)")
    found = sorted(p.name[: -len("_test.csv")] for p in (base / "test").glob("*_test.csv"))
    out = {}
    for s in subjects or found:
        test = base / "test" / f"{s}_test.csv"
        dev = base / "dev" / f"{s}_dev.csv"
        if not test.exists() or not dev.exists():
            raise FileNotFoundError(f"MMLU subject {s!r}: need {dev} and {test}")
        out[s] = (read_csv(dev, s), read_csv(test, s))
    return out


def format_example(q: Question, with_answer: bool) -> str:
    text = q.question.strip() + "".join(f"\n{letter}. {choice}" for letter, choice in zip(LETTERS, q.choices)) + "\nAnswer:"
    return text + (f" {q.answer}\n\n" if with_answer else "")


def prompt(q: Question, shots: list[Question]) -> str:
    head = f"The following are multiple choice questions (with answers) about {q.subject.replace('_', ' ')}.\n\n"
    return head + "".join(format_example(s, True) for s in shots) + format_example(q, False)


DEMO = Path(__file__).parents[1] / "data" / "mmlu-demo"


def records(root: str | Path, shots: int = 5) -> list:
    """An MMLU test set as benchmark manifest records: text = the full k-shot prompt,
    extra = subject, answer, question index. `benchmark run --task mmlu` scores these."""
    out = []
    for subject, (dev, test) in sorted(load(root).items()):
        if len(dev) < shots:
            raise MMLUFormatError(f"subject {subject!r}: {len(dev)} dev examples for a {shots}-shot prompt")
        for i, q in enumerate(test):
            out.append(Record(id=f"{subject}-{i:04d}", corpus="mmlu", split="test", domain="text",
                              path=str(Path(root).resolve()), text=prompt(q, dev[:shots]), language="en",
                              extra={"subject": subject, "answer": q.answer, "index": i}))
    return out


def answer(model: "LogLikelihoodModel", context: str) -> tuple[str, list[float]]:
    """The letter with the highest log-likelihood after the prompt, and the four values."""
    lls = model.loglikelihood(context, [f" {letter}" for letter in LETTERS])
    return LETTERS[max(range(4), key=lambda i: lls[i])], lls


class LogLikelihoodModel(Protocol):
    def loglikelihood(self, context: str, continuations: list[str]) -> list[float]: ...


def evaluate(model: LogLikelihoodModel, data: dict[str, tuple[list[Question], list[Question]]],
             shots: int = 5, limit: int | None = None) -> dict:
    per_subject, predictions, right, total = {}, [], 0, 0
    for subject, (dev, test) in sorted(data.items()):
        if len(dev) < shots:
            raise MMLUFormatError(f"subject {subject!r}: {len(dev)} dev examples for a {shots}-shot prompt")
        ok = 0
        for q in test[:limit]:
            pred, lls = answer(model, prompt(q, dev[:shots]))
            ok += pred == q.answer
            predictions.append({"subject": subject, "answer": q.answer, "prediction": pred, "loglikelihoods": lls})
        n = len(test[:limit])
        per_subject[subject] = {"accuracy": ok / n if n else float("nan"), "questions": n}
        right, total = right + ok, total + n
    return {"accuracy": right / total if total else float("nan"), "questions": total, "shots": shots,
            "aggregation": "micro average over questions", "per_subject": per_subject, "predictions": predictions}


def encode_pair(encode, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-eval's `_encode_pair`: trailing whitespace of the context moves to the continuation;
    the continuation's tokens are those of the whole string after the context's, even where
    the tokenizer merges across the boundary."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    whole = encode(context + continuation)
    ctx = encode(context)
    return ctx, whole[len(ctx):]


class HFCausalLM:
    """Any transformers causal LM from a local dir, $UNIAUDIO_MODELS or the HF cache, scored
    as lm-eval's `hf` model scores a loglikelihood request (see the module docstring)."""

    DEFAULT_MAX_LENGTH = 2048  # lm-eval's, for models that name no length

    def __init__(self, model: str, device: str = "cpu", *, objects: tuple | None = None,
                 max_length: int | None = None, softmax_dtype: str | None = None, add_bos_token: bool | None = None):
        """`objects=(tokenizer, model)` scores an already-built model (e.g. the chance baseline).
        `max_length`: context window (default: the model config's); `softmax_dtype`: None = the
        model's dtype (lm-eval's default) or "float32"; `add_bos_token`: None = lm-eval 0.4.13's rule
        (the tokenizer's default), True / False = always / never."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ...models import from_pretrained

        self.torch, self.name = torch, model
        if objects:
            self.tok, self.model = objects
        else:
            self.tok = from_pretrained(AutoTokenizer, model)
            self.model = from_pretrained(AutoModelForCausalLM, model)
        self.model = self.model.eval().to(device)
        self.device = device
        if softmax_dtype not in (None, "float32", "float64", "bfloat16", "float16"):
            raise ValueError(f"softmax_dtype must be None (the model's) or a torch float dtype name, got {softmax_dtype!r}")
        self.softmax_dtype = softmax_dtype
        self.add_bos_token = add_bos_token
        self.max_length = max_length or self._config_max_length()
        # lm-eval's prefix token (its loglikelihood prefix): BOS, else EOS; text starting with it gets no other
        prefix = self.tok.bos_token_id if self.tok.bos_token_id is not None else self.tok.eos_token_id
        self.prefix_text = self.tok.decode(prefix) if prefix is not None else None

    def _config_max_length(self) -> int:
        for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
            if hasattr(self.model.config, attr):
                return int(getattr(self.model.config, attr))
        n = getattr(self.tok, "model_max_length", None)
        return self.DEFAULT_MAX_LENGTH if not n or n > 10**9 else int(n)

    def settings(self) -> dict:
        """What changes the scores, for the metric/system card."""
        bos = ("tokenizer default (lm-eval 0.4.13: add_bos_token=None)" if self.add_bos_token is None
               else "always" if self.add_bos_token else "never (lm-eval before 0.4.13, non-Gemma models)")
        return {"max_length": self.max_length, "add_bos_token": self.add_bos_token, "special_tokens": bos,
                "bos_added": self.encode("A") != list(self.tok("A", add_special_tokens=False).input_ids),
                "lm_eval_rule": "0.4.13",
                "softmax_dtype": self.softmax_dtype or f"model ({str(next(self.model.parameters()).dtype)})",
                "encode_pair": "lm-eval _encode_pair", "truncation": "left, context + continuation to max_length + 1"}

    def encode(self, text: str) -> list[int]:
        """lm-eval 0.4.13's `tok_encode`: the tokenizer's default special tokens unless
        `add_bos_token` says, and none for text that already starts with the prefix token."""
        if self.add_bos_token is not None:
            kwargs = {"add_special_tokens": self.add_bos_token}
        elif self.prefix_text and text.startswith(self.prefix_text):
            kwargs = {"add_special_tokens": False}
        else:
            kwargs = {}
        return list(self.tok(text, **kwargs).input_ids)

    def loglikelihood(self, context: str, continuations: list[str]) -> list[float]:
        """Sum of log p(continuation tokens | context) for each continuation."""
        self.truncated = 0
        out = []
        for cont in continuations:
            ctx_ids, cont_ids = encode_pair(self.encode, context, cont)
            if not cont_ids:
                raise ValueError(f"continuation {cont!r} encodes to no tokens after the context")
            full = (ctx_ids + cont_ids)[-(self.max_length + 1):]
            self.truncated = max(self.truncated, len(ctx_ids) + len(cont_ids) - len(full))
            ids = self.torch.tensor([full[:-1]], device=self.device)
            with self.torch.inference_mode():
                logits = self.model(ids).logits[0]
                dtype = getattr(self.torch, self.softmax_dtype) if self.softmax_dtype else logits.dtype
                logp = self.torch.log_softmax(logits.to(dtype), -1)
            n = len(cont_ids)
            target = self.torch.tensor(cont_ids, device=self.device)
            out.append(float(logp[-n:].gather(1, target[:, None]).sum()))
        return out


def demo(s: DemoSuite) -> list[Record]:
    """A 15-question stand-in in MMLU's layout (not MMLU): the offline demo."""
    return records(DEMO)


TASK = register(Task("mmlu", "text", (metric("accuracy"),),
                     "5-shot multiple-choice prompt -> answer letter (micro accuracy and per subject)",
                     {"ref_text": "extra:answer", "group": "extra:subject"}, input="text",
                     systems=("chance-lm", "ground-truth"), demo=demo))
