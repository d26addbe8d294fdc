"""Multiple-choice accuracy (MMLU): the system's answer letter vs the key. Per item 1 or 0
under `accuracy` and `accuracy_{group}`, so the aggregate gives the micro average over
questions and the per-subject accuracy. A missing output is a failure (NaN, counted); an
output with no answer letter is a wrong answer, as lm-eval counts it."""

from __future__ import annotations

import re

from .base import Metric, Value, register

_LETTER = re.compile(r"^\W*\(?([A-D])\b")


@register("accuracy")
class Accuracy(Metric):
    name = "accuracy"
    values = {"accuracy": Value("higher", "%")}
    needs = ("hyp_text", "ref_text")
    aggregation = "micro average over questions (accuracy); per group: accuracy_{subject}"

    def score(self, batch):
        out = []
        for s in batch:
            m = _LETTER.match(s.hyp_text or "")
            ok = float(bool(m) and m.group(1) == s.ref_text.strip())
            out.append({"accuracy": ok, **({f"accuracy_{s.group}": ok} if s.group else {})})
        return out

    def card(self):
        return dict(super().card(), sample_rate=None, answer_format="first letter A-D of the output")
