"""Sound and music suites over the caption corpora (their recipes read the layouts):

- `audiocaps-test` (tta and caption): the AudioCaps test clips (`test.csv`; about 975 listed,
  fewer still downloadable), every reference caption of a clip kept (`extra.captions`);
- `clotho-eval` (caption): Clotho v2 evaluation (1,045 clips, five captions each);
- `musiccaps` (ttm): the MusicCaps clips marked `is_audioset_eval` (the eval split).
These corpora are downloaded clip by clip from YouTube and some clips are always gone: a listed
clip whose audio is not there is a missing item (named; `--allow-missing` builds without it)."""

from __future__ import annotations

from pathlib import Path

from ...manifest import Record
from .base import BuildContext, Built, Suite, SuiteError, register


def _clips(ctx: BuildContext, recipe: str, split: str, layout: str) -> tuple[list[Record], list[str]]:
    from ...pipeline.recipes import RecipeError, records
    from ...pipeline.recipes.common import REJECT_KEY

    try:
        rows = [r for r in records(recipe, ctx.root, split=split) if REJECT_KEY not in r.extra]
    except (RecipeError, FileNotFoundError) as e:
        raise SuiteError(f"{ctx.root}: {e} (expected {layout})") from None
    have = [r for r in rows if r.duration and Path(r.path).is_file()]
    missing = sorted(r.id for r in rows if not (r.duration and Path(r.path).is_file()))
    return sorted(have, key=lambda r: r.id), missing


AUDIOCAPS = "AudioCaps: ROOT/test.csv (audiocap_id,youtube_id,start_time,caption) and the clips, ROOT/audio/test/{ytid}.*"
CLOTHO = "Clotho v2: ROOT/clotho_captions_evaluation.csv and ROOT/evaluation/*.wav"
MUSICCAPS = "MusicCaps: ROOT/musiccaps-public.csv and the clips, ROOT/audio/{ytid}.*"
SOUND_PROTOCOL = {"fad": {"embedding": "VGGish (fadtk / audioldm_eval)"}, "kl": {"classifier": "PaSST or PANNs"},
                  "clap": {"checkpoint": "LAION-CLAP music_speech_audioset (as the card records)"},
                  "captioning": {"metrics": "BLEU-1..4, CIDEr, ROUGE-L against every reference caption"}}


def _audiocaps(ctx: BuildContext) -> Built:
    have, missing = _clips(ctx, "audiocaps", "test", AUDIOCAPS)
    return Built({"tta": have, "caption": have}, missing)


def _clotho(ctx: BuildContext) -> Built:
    have, missing = _clips(ctx, "clotho", "evaluation", CLOTHO)
    return Built({"caption": have}, missing)


def _musiccaps(ctx: BuildContext) -> Built:
    have, missing = _clips(ctx, "musiccaps", "eval", MUSICCAPS)
    return Built({"ttm": have}, missing)


register(Suite("audiocaps-test", ("tta", "caption"), "1", "AudioCaps test (cdjkim/audiocaps csv + your clips)",
               AUDIOCAPS, "every test clip listed in test.csv that is downloaded", _audiocaps,
               protocol=SOUND_PROTOCOL, published="UniAudio 2.0 (arXiv 2602.04683): AudioCaps CIDEr 0.69; "
                                                  "AudioLDM / Make-An-Audio tables (FAD, KL, CLAP)"))
register(Suite("clotho-eval", ("caption",), "1", "Clotho v2 evaluation split", CLOTHO, "every evaluation clip",
               _clotho, published_items={"caption": 1045}, protocol=SOUND_PROTOCOL,
               published="DCASE audio-captioning tables (Clotho v2 evaluation)"))
register(Suite("musiccaps", ("ttm",), "1", "MusicCaps (Google csv + your clips), is_audioset_eval rows", MUSICCAPS,
               "the clips marked is_audioset_eval", _musiccaps, protocol=SOUND_PROTOCOL,
               published="MusicLM / MusicGen tables (FAD VGGish, KL, CLAP)"))
