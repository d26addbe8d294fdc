"""`libri2mix-test`: target speaker extraction on Libri2Mix (JorisCos/LibriMix), `wav16k/min`,
test split: ROOT/wav16k/min/test/{mix_clean,s1,s2}/{mixture_ID}.wav and
ROOT/wav16k/min/metadata/mixture_test_mix_clean.csv (`mixture_ID` = `{utt1}_{utt2}`, LibriSpeech
utterance ids). Each mixture's target is s1; the enrollment is another utterance of s1's
speaker, a clean source (s1 or s2) of another test mixture, picked by a seeded hash and listed
in the item (`extra.enroll_id`)."""

from __future__ import annotations

import csv
import io
import hashlib
from pathlib import Path

from ... import audio, storage
from ...manifest import Record
from .base import BuildContext, Built, Suite, SuiteError, register

LAYOUT = ("Libri2Mix: ROOT/wav16k/min/metadata/mixture_test_mix_clean.csv and "
          "ROOT/wav16k/min/test/{mix_clean,s1,s2}/MIXTURE_ID.wav")


def _build(ctx: BuildContext) -> Built:
    base = ctx.root / "wav16k" / "min"
    meta = base / "metadata" / "mixture_test_mix_clean.csv"
    ctx.check_layout(meta.is_file(), LAYOUT)
    rows = list(csv.DictReader(io.StringIO(storage.read_text(str(meta)))))
    if not rows or "mixture_ID" not in rows[0]:
        raise SuiteError(f"{meta}: expected a LibriMix metadata CSV with a mixture_ID column")
    test = base / "test"
    sources: dict[str, list[tuple[str, Path]]] = {}  # speaker -> (utterance, clean source file)
    for r in rows:
        mid = r["mixture_ID"]
        for utt, sub in zip(mid.split("_"), ("s1", "s2")):
            sources.setdefault(utt.split("-")[0], []).append((utt, test / sub / f"{mid}.wav"))
    out, missing = [], []
    for r in rows:
        mid = r["mixture_ID"]
        utt = mid.split("_")[0]
        mix, target = test / "mix_clean" / f"{mid}.wav", test / "s1" / f"{mid}.wav"
        others = [s for s in sources[utt.split("-")[0]] if s[0] != utt and s[1].is_file()]
        if not (mix.is_file() and target.is_file() and others):
            missing.append(mid)
            continue
        h = int.from_bytes(hashlib.blake2b(f"{ctx.seed}\x1f{mid}".encode(), digest_size=8).digest(), "little")
        enroll_utt, enroll = others[h % len(others)]
        info = audio.info(target)
        out.append(Record(id=mid, corpus="libri2mix", split="test", domain="speech", path=str(target),
                          duration=info.duration, sample_rate=info.sample_rate, channels=info.channels,
                          speaker=utt.split("-")[0], language="en",
                          extra={"input_path": str(mix), "enroll_path": str(enroll), "enroll_id": enroll_utt,
                                 "target_utterance": utt}))
    return Built({"tse": out}, missing)


register(Suite("libri2mix-test", ("tse",), "1", "Libri2Mix wav16k/min test, mix_clean (JorisCos/LibriMix)", LAYOUT,
               "every test mixture; target s1; enrollment: another utterance of s1's speaker from the test sources, "
               "picked by a seeded hash", _build, published_items={"tse": 3000},
               protocol={"si_sdr": {}, "pesq": {"mode": "wb"}, "stoi": {}},
               published="UniAudio (arXiv 2310.00704) TSE table; SpEx+ / TD-SpeakerBeam Libri2Mix tables"))
