"""`mmlu`: MMLU in its official CSV layout (hendrycks/test `data.tar`: ROOT/dev/{subject}_dev.csv
and ROOT/test/{subject}_test.csv, 57 subjects, 14,042 test questions), five-shot prompts from
each subject's dev questions, as lm-eval's `mmlu` task builds them."""

from __future__ import annotations

from .base import BuildContext, Built, Suite, SuiteError, register

LAYOUT = "MMLU's CSV layout: ROOT/dev/{subject}_dev.csv and ROOT/test/{subject}_test.csv"


def _build(ctx: BuildContext) -> Built:
    from ..tasks.mmlu import records

    ctx.check_layout(any((ctx.root / d / "test").is_dir() and (ctx.root / d / "dev").is_dir() for d in ("", "data")),
                     LAYOUT + " (or ROOT/data/..., as data.tar unpacks)")
    try:
        rows = records(ctx.root)
    except (ValueError, FileNotFoundError) as e:
        raise SuiteError(f"{ctx.root}: {e} (expected {LAYOUT})") from None
    return Built({"mmlu": rows})


register(Suite("mmlu", ("mmlu",), "1", "MMLU (hendrycks/test, official CSV)", LAYOUT,
               "every test question, five shots from the subject's dev set", _build,
               published_items={"mmlu": 14042}, protocol={"accuracy": {"shots": 5, "rule": "lm-eval log-likelihood"}},
               published="UniAudio 2.0 (arXiv 2602.04683): MMLU 44.1", preset="lm-eval"))
