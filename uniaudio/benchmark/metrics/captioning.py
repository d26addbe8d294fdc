"""Audio-captioning scores as UniAudio 2.0 / DCASE report them on AudioCaps: BLEU-1..4, CIDEr
and ROUGE-L from the COCO caption evaluation code (`pycocoevalcap`), after its PTB tokenizer
(Stanford CoreNLP, needs Java). Corpus-level: CIDEr's IDF and BLEU's brevity penalty are taken
over the whole test set, so these are set-level metrics. References: every caption of the
item (`extra.captions`, else `caption`)."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from pathlib import Path

from ..tasks import output_file, row_value
from .base import SET_METRICS, MetricError, Value, register, versions


@contextlib.contextmanager
def _quiet():
    """Silence Python prints and the Java tokenizer's stderr (a subprocess: fd level)."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(io.StringIO()):
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def references(row: dict) -> list[str]:
    caps = row_value(row, "extra:captions") or ([row["caption"]] if row.get("caption") else [])
    return [c for c in caps if c and c.strip()]


@register("captioning", SET_METRICS)
class CaptionScores:
    name = "captioning"
    values = {"bleu": Value("higher"), "cider": Value("higher"), "rouge": Value("higher")}

    def __init__(self):
        if shutil.which("java") is None:
            raise MetricError("the COCO PTB tokenizer needs Java: apt-get install default-jre-headless")
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.rouge.rouge import Rouge
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

        self.tokenizer, self.scorers = PTBTokenizer(), (("bleu", Bleu(4)), ("cider", Cider()), ("rouge_l", Rouge()))

    def score_set(self, rows: list[dict], sys_dir: Path, cache_dir: Path) -> dict:
        gts, res, skipped = {}, {}, {}
        for r in rows:
            refs, path = references(r), output_file(sys_dir, r["id"], ".txt")
            if not path.exists():
                continue  # counted as missing by the runner
            try:
                hyp = path.read_bytes().decode("utf-8").strip()
            except UnicodeDecodeError as e:
                skipped[r["id"]] = f"not valid UTF-8 at byte {e.start}"
                continue
            if not refs:
                skipped[r["id"]] = "no reference caption"
            elif not hyp:
                skipped[r["id"]] = "empty caption"
            else:
                gts[r["id"]] = [{"caption": c} for c in refs]
                res[r["id"]] = [{"caption": hyp}]
        if not res:
            raise MetricError(f"no item could be scored ({len(skipped)} skipped: {sorted(set(skipped.values()))})")
        with _quiet():  # the scorers print progress; keep the CLI's output clean
            gts, res = self.tokenizer.tokenize(gts), self.tokenizer.tokenize(res)
            out = {}
            for name, scorer in self.scorers:
                value, _ = scorer.compute_score(gts, res, **({"verbose": 0} if name == "bleu" else {}))
                if name == "bleu":
                    out.update({f"bleu_{n + 1}": float(v) for n, v in enumerate(value)})
                else:
                    out[name] = float(value)
        out["items_scored"] = len(res)
        if skipped:  # an empty or unreadable caption is reported, not silently scored as zero
            out["items_skipped"] = skipped
        return out

    def card(self) -> dict:
        return {"name": self.name, "implementation": "pycocoevalcap (COCO caption evaluation)",
                "tokenizer": "PTBTokenizer (Stanford CoreNLP 3.4.1), lower-cased, punctuation removed",
                "aggregation": "corpus-level over the set: BLEU-1..4 (closest ref length), CIDEr (n=4, sigma=6, "
                               "IDF over this set's references), ROUGE-L (beta=1.2)",
                "references": "all captions of each item", "versions": versions("pycocoevalcap")}
