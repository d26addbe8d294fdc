"""`vctk-vc`: voice conversion pairs from VCTK 0.92 (ROOT/txt/pNNN/*.txt +
ROOT/wav48_silence_trimmed/pNNN/*_mic1.flac), the way UniAudio evaluates VC: a source utterance
of one speaker, to be spoken in the voice of another speaker given by one of that speaker's
utterances. VCTK has no official test split, so the rule is ours and stated in the card: each
speaker's first SOURCES utterances (by id) are sources; the prompt is an utterance of the next
speaker (sorted ids, cyclic), picked by a seeded hash of the source id."""

from __future__ import annotations

import hashlib

from ...manifest import Record
from .base import BuildContext, Built, Suite, SuiteError, register

LAYOUT = "VCTK 0.92: ROOT/txt/pNNN/pNNN_UUU.txt and ROOT/wav48_silence_trimmed/pNNN/pNNN_UUU_mic1.flac"
SOURCES = 5


def _build(ctx: BuildContext) -> Built:
    from ...pipeline.recipes import RecipeError, records
    from ...pipeline.recipes.common import REJECT_KEY

    ctx.check_layout((ctx.root / "txt").is_dir(), LAYOUT)
    try:
        rows = [r for r in records("vctk", ctx.root) if REJECT_KEY not in r.extra and r.duration]
    except RecipeError as e:
        raise SuiteError(f"{ctx.root}: {e} (expected {LAYOUT})") from None
    by_speaker: dict[str, list[Record]] = {}
    for r in sorted(rows, key=lambda r: r.id):
        by_speaker.setdefault(r.speaker, []).append(r)
    speakers = sorted(by_speaker)
    if len(speakers) < 2:
        raise SuiteError(f"{ctx.root}: voice conversion needs two speakers or more, found {len(speakers)}")
    out = []
    for i, spk in enumerate(speakers):
        voice = by_speaker[speakers[(i + 1) % len(speakers)]]
        for r in by_speaker[spk][:SOURCES]:
            h = int.from_bytes(hashlib.blake2b(f"{ctx.seed}\x1f{r.id}".encode(), digest_size=8).digest(), "little")
            p = voice[h % len(voice)]
            out.append(Record(**{**r.__dict__, "extra": {**r.extra, "prompt_path": p.path, "prompt_id": p.id}}))
    return Built({"vc": out})


register(Suite("vctk-vc", ("vc",), "1", "VCTK 0.92 (Edinburgh DataShare)", LAYOUT,
               f"each speaker's first {SOURCES} utterances, in the voice of the next speaker (an utterance picked by "
               "a seeded hash)", _build,
               protocol={"wer": {"reference": "the source transcript"}, "sim": {"reference": "the target-voice prompt"}},
               published="UniAudio (arXiv 2310.00704) VC table (its own VCTK pairs; this rule is uniaudio's)"))
