"""LibriSpeech suites (openslr SLR12: ROOT/{test-clean,test-other}/SPK/CHAP/*.flac + trans.txt):

- `librispeech-test-clean`, `librispeech-test-other` (asr): every utterance of the split, as the
  Open ASR Leaderboard scores them (2,620 / 2,939);
- `librispeech-test-clean-tts` (zero-shot tts, the VALL-E / NaturalSpeech 3 / UniAudio rule):
  targets of 4 to 10 s, each prompted by the first 3 s of another utterance of the same speaker
  (picked by a seeded hash of the target id among that speaker's utterances of at least 3 s);
- `librispeech-pc-test-clean` (tts, F5-TTS's cross-sentence list: 1,127 lines of
  `prompt_utt TAB prompt_seconds TAB prompt_text TAB target_utt TAB target_seconds TAB target_text`;
  the prompt is the whole prompt utterance, its text given, the LibriSpeech-PC texts keep case
  and punctuation)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ... import audio, storage
from ..tasks.base import output_file
from ...manifest import Record
from .base import BuildContext, Built, Suite, SuiteError, register

LAYOUT = "LibriSpeech as openslr ships it: ROOT/{split}/SPK/CHAP/SPK-CHAP-UTT.flac with SPK-CHAP.trans.txt"
ASR_PROTOCOL = {"wer": {"normalizer": "whisper-english (Open ASR Leaderboard)"}}
TTS_PROTOCOL = {"wer": {"asr": "hubert-large-ls960-ft or whisper-large-v3 (as each paper says)"},
                "sim": {"model": "WavLM-large + ECAPA-TDNN speaker verification (Sim-O: vs the original prompt)"}}
PROMPT_SECONDS = 3.0


def _utterances(ctx: BuildContext, split: str) -> list[Record]:
    from ...pipeline.recipes import RecipeError, records
    from ...pipeline.recipes.common import REJECT_KEY

    folder = ctx.root / split if (ctx.root / split).is_dir() else ctx.root
    ctx.check_layout(any(folder.rglob("*.trans.txt")), f"{LAYOUT} (no {split}/**/*.trans.txt under it)")
    try:
        rows = [r for r in records("librispeech", ctx.root, split=split) if REJECT_KEY not in r.extra]
    except RecipeError as e:
        raise SuiteError(f"{ctx.root}: {e} (expected {LAYOUT})") from None
    if not rows:
        raise SuiteError(f"{ctx.root} holds no {split} utterances (expected {LAYOUT})")
    return sorted(rows, key=lambda r: r.id)


def _asr(split: str):
    def build(ctx: BuildContext) -> Built:
        return Built({"asr": _utterances(ctx, split)})
    return build


for _split, _n in (("test-clean", 2620), ("test-other", 2939)):
    register(Suite(f"librispeech-{_split}", ("asr",), "1", f"LibriSpeech {_split} (openslr SLR12)", LAYOUT,
                   f"every utterance of {_split}", _asr(_split), published_items={"asr": _n},
                   protocol=ASR_PROTOCOL, preset="open-asr-leaderboard",
                   published="Open ASR Leaderboard (huggingface/open_asr_leaderboard); UniAudio 2.0 (arXiv 2602.04683) "
                             "ASR table"))


def _pick(seed: int, target: str, candidates: list[Record]) -> Record:
    h = hashlib.blake2b(f"{seed}\x1f{target}".encode(), digest_size=8).digest()
    return candidates[int.from_bytes(h, "little") % len(candidates)]


def _zero_shot(ctx: BuildContext) -> Built:
    rows = _utterances(ctx, "test-clean")
    by_speaker: dict[str, list[Record]] = {}
    for r in rows:
        by_speaker.setdefault(r.speaker, []).append(r)
    out = []
    for r in rows:
        if r.duration is None or not 4.0 <= r.duration <= 10.0:
            continue
        others = [o for o in by_speaker[r.speaker] if o.id != r.id and (o.duration or 0) >= PROMPT_SECONDS]
        if not others:
            continue
        p = _pick(ctx.seed, r.id, others)
        wav, sr = audio.load(p.path, offset=0.0, duration=PROMPT_SECONDS)
        prompt = audio.save(output_file(ctx.out / "prompts", r.id, ".wav"), wav, sr)  # ids from the corpus: untrusted
        out.append(Record(**{**r.__dict__, "extra": {**r.extra, "prompt_path": str(prompt), "prompt_id": p.id,
                                                       "prompt_seconds": PROMPT_SECONDS}}))
    return Built({"tts": out})


register(Suite("librispeech-test-clean-tts", ("tts",), "1", "LibriSpeech test-clean (openslr SLR12)", LAYOUT,
               "targets of 4-10 s; prompt: the first 3 s of another utterance (>= 3 s) of the same speaker, picked "
               "by a seeded hash of the target id", _zero_shot, protocol=TTS_PROTOCOL,
               published="NaturalSpeech 3 (arXiv 2403.03100) Table 1: UniAudio Sim-O 0.57 / WER 2.49, "
                         "ground truth 0.68 / 1.94"))

# the published list ships with uniaudio (benchmark/data/lists/README.md): the default --list
PC_LIST = Path(__file__).parents[1] / "data" / "lists" / "librispeech_pc_test_clean_cross_sentence.lst"
PC_SHA256 = "09811d521effa4eeb1da655f7379de97343b2f5ea86d829ec7ccb8656758a10f"
PC_FORMAT = ("F5-TTS's librispeech_pc_test_clean_cross_sentence.lst: one item a line, six tab-separated fields "
             "prompt_utt, prompt_seconds, prompt_text, target_utt, target_seconds, target_text")


def parse_pc_list(path) -> list[tuple[str, str, str, str]]:
    """(prompt_utt, prompt_text, target_utt, target_text) of each line, or SuiteError naming the
    first line that does not parse."""
    out = []
    for n, line in enumerate(storage.read_text(str(path)).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 6 or any(len(u.split("-")) != 3 for u in (parts[0], parts[3])):
            raise SuiteError(f"{path} line {n}: expected six tab-separated fields ({PC_FORMAT}), got "
                             f"{len(parts)}: {line.strip()[:120]!r}")
        out.append((parts[0], parts[2], parts[3], parts[5]))
    return out


def _cross_sentence(ctx: BuildContext) -> Built:
    lines = parse_pc_list(ctx.list_file)
    have = {r.id: r for r in _utterances(ctx, "test-clean")}
    out, missing = [], []
    for prompt_utt, prompt_text, target_utt, target_text in lines:
        gone = [u for u in (target_utt, prompt_utt) if u not in have]
        if gone:
            missing.append(target_utt if target_utt in gone else f"{target_utt} (prompt {prompt_utt})")
            continue
        r, p = have[target_utt], have[prompt_utt]
        out.append(Record(**{**r.__dict__, "text": target_text.strip(),
                             "extra": {**r.extra, "prompt_path": p.path, "prompt_id": p.id,
                                       "prompt_text": prompt_text.strip()}}))
    return Built({"tts": out}, missing)


register(Suite("librispeech-pc-test-clean", ("tts",), "1", "LibriSpeech test-clean (openslr SLR12) with F5-TTS's "
               "LibriSpeech-PC cross-sentence list", LAYOUT, "the pairs of the published list",
               _cross_sentence, published_items={"tts": 1127}, protocol=TTS_PROTOCOL,
               published="F5-TTS (arXiv 2410.06885) LibriSpeech-PC test-clean table", list_format=PC_FORMAT,
               list_packaged=PC_LIST, list_sha256=PC_SHA256))
