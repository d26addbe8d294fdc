"""VoiceBank-DEMAND (Valentini-Botinhao et al. 2016; Edinburgh DataShare), the se test set:
`clean_testset_wav/` and `noisy_testset_wav/` hold the same 824 file names (speakers p232 and
p257, 48 kHz as shipped; the metrics resample), `testset_txt/` their transcripts when present.
Each item: the noisy file in, the clean file as the reference."""

from __future__ import annotations

from ... import audio
from ...manifest import Record
from .base import BuildContext, Built, Suite, SuiteError, register

LAYOUT = "VoiceBank-DEMAND: ROOT/clean_testset_wav/*.wav and ROOT/noisy_testset_wav/*.wav (same names)"


def _build(ctx: BuildContext) -> Built:
    clean_dir, noisy_dir = ctx.root / "clean_testset_wav", ctx.root / "noisy_testset_wav"
    ctx.check_layout(clean_dir.is_dir() and noisy_dir.is_dir(), LAYOUT)
    clean = {p.stem: p for p in clean_dir.glob("*.wav")}
    noisy = {p.stem: p for p in noisy_dir.glob("*.wav")}
    missing = sorted(set(clean) ^ set(noisy))  # a file without its pair: not an item
    out = []
    for uid in sorted(set(clean) & set(noisy)):
        try:
            info = audio.info(clean[uid])
        except audio.AudioError as e:
            raise SuiteError(f"{clean[uid]}: {e}") from None
        txt = ctx.root / "testset_txt" / f"{uid}.txt"
        out.append(Record(id=uid, corpus="voicebank-demand", split="test", domain="speech", path=str(clean[uid]),
                          duration=info.duration, sample_rate=info.sample_rate, channels=info.channels,
                          text=txt.read_text(errors="replace").strip() if txt.is_file() else None,
                          speaker=uid.split("_")[0], language="en", extra={"input_path": str(noisy[uid])}))
    return Built({"se": out}, missing)


register(Suite("voicebank-demand", ("se",), "1", "VoiceBank-DEMAND test set (Edinburgh DataShare, 28-speaker version)",
               LAYOUT, "every clean / noisy pair of the test set", _build, published_items={"se": 824},
               protocol={"pesq": {"mode": "wb", "sample_rate": 16000}, "stoi": {"extended": False}},
               published="Valentini-Botinhao et al. 2016; the speech-enhancement tables that report PESQ-wb / STOI"))
