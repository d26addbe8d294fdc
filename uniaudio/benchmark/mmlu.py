"""MMLU in the lm-eval-harness format: for each subject, a description line, 5 dev examples,
the test question, `Answer:`; the prediction is the letter whose continuation " A".." D" has
the highest log-likelihood; accuracy is micro-averaged over questions (and per subject).

Reads the official layout: data/dev/{subject}_dev.csv and data/test/{subject}_test.csv
(no header; question, A, B, C, D, answer)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

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
    for n, row in enumerate(csv.reader(text.splitlines()), 1):
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
    text = q.question + "".join(f"\n{letter}. {choice}" for letter, choice in zip(LETTERS, q.choices)) + "\nAnswer:"
    return text + (f" {q.answer}\n\n" if with_answer else "")


def prompt(q: Question, shots: list[Question]) -> str:
    head = f"The following are multiple choice questions (with answers) about {q.subject.replace('_', ' ')}.\n\n"
    return head + "".join(format_example(s, True) for s in shots) + format_example(q, False)


DEMO = Path(__file__).parent / "data" / "mmlu-demo"


def records(root: str | Path, shots: int = 5) -> list:
    """An MMLU test set as benchmark manifest records: text = the full k-shot prompt,
    extra = subject, answer, question index. `benchmark run --task mmlu` scores these."""
    from ..manifest import Record

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


class HFCausalLM:
    """Any transformers causal LM from a local dir, $UNIAUDIO_MODELS or the HF cache."""

    def __init__(self, model: str, device: str = "cpu", *, objects: tuple | None = None):
        """`objects=(tokenizer, model)` scores an already-built model (e.g. the chance baseline)."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ..models import from_pretrained

        self.torch, self.name = torch, model
        if objects:
            self.tok, self.model = objects
        else:
            self.tok = from_pretrained(AutoTokenizer, model)
            self.model = from_pretrained(AutoModelForCausalLM, model)
        self.model = self.model.eval().to(device)
        self.device = device

    def loglikelihood(self, context: str, continuations: list[str]) -> list[float]:
        """Sum of log p(continuation tokens | context), continuation tokenised after the context
        as lm-eval-harness does (encode(context + cont) split at len(encode(context)))."""
        ctx = self.tok(context, add_special_tokens=True).input_ids
        out = []
        for cont in continuations:
            full = self.tok(context + cont, add_special_tokens=True).input_ids
            n_cont = len(full) - len(ctx)
            if n_cont <= 0 or full[: len(ctx)] != ctx:  # tokenisation merged across the boundary
                full = ctx + self.tok(cont, add_special_tokens=False).input_ids
                n_cont = len(full) - len(ctx)
            ids = self.torch.tensor([full], device=self.device)
            with self.torch.inference_mode():
                logp = self.torch.log_softmax(self.model(ids).logits[0].float(), -1)
            target = ids[0, -n_cont:]
            out.append(float(logp[-n_cont - 1:-1].gather(1, target[:, None]).sum()))
        return out
