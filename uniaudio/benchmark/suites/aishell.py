"""AISHELL-1 test (openslr SLR33: data_aishell/wav/test/SPK/*.wav + transcript/aishell_transcript_v0.8.txt),
every test utterance with a transcript line (7,176), Mandarin asr scored by CER as the AISHELL
recipes do (the `aishell-cer` preset: `zh-cer` text rule, transcripts to simplified characters)."""

from __future__ import annotations

from ...manifest import Record
from .base import BuildContext, Built, Suite, SuiteError, register

LAYOUT = ("AISHELL-1 as openslr ships it, the per-speaker tarballs untarred: ROOT/data_aishell/wav/test/SPK/*.wav "
          "and ROOT/data_aishell/transcript/aishell_transcript_v0.8.txt")


def test_rows(ctx: BuildContext, corpus: str, layout: str = LAYOUT) -> list[Record]:
    """Every test utterance with a transcript line of an AISHELL-1-layout folder, by id, as `corpus`."""
    from ...pipeline.recipes import RecipeError, records
    from ...pipeline.recipes.common import REJECT_KEY

    base = ctx.root / "data_aishell" if (ctx.root / "data_aishell").is_dir() else ctx.root
    ctx.check_layout((base / "transcript" / "aishell_transcript_v0.8.txt").is_file() and (base / "wav" / "test").is_dir(),
                     layout)
    try:
        rows = [r for r in records("aishell", ctx.root, split="test") if REJECT_KEY not in r.extra]
    except (RecipeError, FileNotFoundError) as e:
        raise SuiteError(f"{ctx.root}: {e} (expected {layout})") from None
    if not rows:
        raise SuiteError(f"{ctx.root} holds no test utterance with a transcript (expected {layout})")
    return sorted((Record(**{**r.__dict__, "corpus": corpus}) for r in rows), key=lambda r: r.id)


def _test(ctx: BuildContext) -> Built:
    return Built({"asr": test_rows(ctx, "aishell1")})


register(Suite("aishell1-test", ("asr",), "1", "AISHELL-1 test (openslr SLR33)", LAYOUT,
               "every test utterance with a transcript line", _test, published_items={"asr": 7176},
               protocol={"cer": {"text": "zh-cer: punctuation and spaces removed, full-width to half-width, "
                                         "transcripts to simplified characters"}},
               preset="aishell-cer", published="AISHELL-1 (Bu et al. 2017); UniAudio 2.0 (arXiv 2602.04683) ASR table"))
