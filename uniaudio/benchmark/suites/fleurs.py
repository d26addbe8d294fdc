"""FLEURS (google/fleurs), one language as its repository ships it: ROOT = `data/{lang}` holding
`{split}.tsv` (no header; `id`, `file name`, `raw transcription`, `transcription`, phonemes, sample
count, gender, tab-separated) and `audio/{split}.tar.gz` unpacked beside it (`audio/{split}/*.wav`,
or the wavs straight under `audio/`). `fleurs-test`: every line of test.tsv whose wav is there
(asr); the reference is the raw transcription, the language the folder's (`cmn_hans_cn` -> zh).
Scored as Whisper's paper scores FLEURS: WER after Whisper's basic normaliser (CER beside it,
the figure for languages written without spaces)."""

from __future__ import annotations

from pathlib import Path

from ... import audio, storage
from ...manifest import Record
from .base import BuildContext, Built, Suite, SuiteError, register

LAYOUT = "FLEURS as google/fleurs ships a language: ROOT = data/{lang} with test.tsv and audio/test.tar.gz unpacked"
FIELDS = 7  # id, file name, raw transcription, transcription, phonemes, sample count, gender
# FLEURS' folder names -> the language code rows carry (its first part, except these)
LANGUAGE = {"cmn_hans_cn": "zh", "yue_hant_hk": "yue"}


def language_of(folder: str) -> str:
    return LANGUAGE.get(folder, folder.split("_")[0])


def parse_tsv(path: Path) -> list[tuple[str, str, str, str]]:
    """(id, file name, raw transcription, gender) per line, or SuiteError naming the first bad line."""
    out = []
    for n, line in enumerate(storage.read_text(str(path)).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != FIELDS or not parts[1].strip():
            raise SuiteError(f"{path} line {n}: expected {FIELDS} tab-separated fields (id, file name, raw "
                             f"transcription, transcription, phonemes, samples, gender); got {len(parts)}")
        name = parts[1].strip()
        if Path(name).name != name or name in (".", ".."):  # a list from elsewhere names files, not paths
            raise SuiteError(f"{path} line {n}: the file name {name!r} is a path; FLEURS lists bare wav names")
        out.append((parts[0].strip(), name, parts[2].strip(), parts[6].strip()))
    return out


def _split(split: str):
    def build(ctx: BuildContext) -> Built:
        tsv = ctx.root / f"{split}.tsv"
        ctx.check_layout(tsv.is_file() and (ctx.root / "audio").is_dir(), f"{LAYOUT} (no {split}.tsv and audio/)")
        lang = language_of(ctx.root.name)
        out, missing = [], []
        for sid, name, text, gender in parse_tsv(tsv):
            wav = next((p for p in (ctx.root / "audio" / split / name, ctx.root / "audio" / name) if p.is_file()), None)
            uid = Path(name).stem  # FLEURS repeats a sentence id for each of its speakers' recordings
            if wav is None:
                missing.append(uid)
                continue
            try:
                info = audio.info(wav)
            except audio.AudioError as e:
                raise SuiteError(f"{tsv}: {name}: {e}") from None
            out.append(Record(id=uid, corpus="fleurs", split=split, domain="speech", path=str(wav), text=text,
                              language=lang, duration=info.duration, sample_rate=info.sample_rate,
                              channels=info.channels, extra={"sentence_id": sid, "gender": gender.lower()}))
        if not out and not missing:
            raise SuiteError(f"{tsv} lists no utterance")
        return Built({"asr": sorted(out, key=lambda r: r.id)}, missing)
    return build


register(Suite("fleurs-test", ("asr",), "1", "FLEURS test, one language (google/fleurs data/{lang})", LAYOUT,
               "every line of test.tsv (its raw transcription)", _split("test"),
               protocol={"wer": {"normalizer": "whisper-basic (Whisper's FLEURS evaluation)"}},
               preset="fleurs", published="FLEURS (Conneau et al. 2022); Whisper (Radford et al. 2022) Table 14"))
