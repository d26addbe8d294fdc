"""Test suites. `demo` is built offline from the demo corpora (and ljspeech-mini when it is
found), so `benchmark run --task all` needs nothing from the network."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from .. import audio, manifest
from ..manifest import Record
from .tasks import output_file  # ids become file names only through files.safe_name

SUITE_VERSION = "demo-11"  # 5: paths relative to the suite folder (any cwd); 6: dereverb; 7: instruct_tts; 8-9: sound_edit;
# 10: svs, speech_edit; 11: plausible sentences, held-out voices the offline ASR reads


def default_root() -> Path:
    return Path(os.environ.get("UNIAUDIO_BENCHMARK_DATA", Path.home() / ".cache" / "uniaudio" / "benchmark"))


def find_ljspeech_mini() -> Path | None:
    for cand in (os.environ.get("UNIAUDIO_SHARED_DATA"), "../shared/data", "shared/data"):
        if cand and (Path(cand) / "ljspeech-mini" / "metadata.csv").is_file():
            return Path(cand) / "ljspeech-mini"
    return None


def mix(target: np.ndarray, interferer: np.ndarray, sir_db: float) -> np.ndarray:
    """Target + interfering speech at an exact signal-to-interference ratio (target length)."""
    other = np.resize(interferer, len(target)).astype(np.float64)
    other *= np.sqrt(np.mean(target**2) / (np.mean(other**2) * 10 ** (sir_db / 10)))
    out = target + other
    return (out / max(1.0, np.abs(out).max() / 0.99)).astype(np.float32)


def add_noise(clean: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    """Clean speech + brown-ish noise at an exact SNR (deterministic)."""
    rng = np.random.default_rng(seed)
    noise = np.cumsum(rng.standard_normal(len(clean)))
    noise -= np.convolve(noise, np.ones(200) / 200, mode="same")
    p_clean, p_noise = np.mean(clean**2), np.mean(noise**2)
    noise *= np.sqrt(p_clean / (p_noise * 10 ** (snr_db / 10)))
    mix = clean + noise
    return (mix / max(1.0, np.abs(mix).max() / 0.99)).astype(np.float32)


DEREVERB_RT60 = (0.4, 0.7, 1.0)  # seconds, cycled over the test utterances


def room_response(rt60: float, sr: int, seed: int) -> np.ndarray:
    """A room impulse response with reverberation time `rt60`: a direct path, then Gaussian
    noise whose energy decays by 60 dB in `rt60` seconds (Polack's statistical model), 1.2 x
    rt60 long. The direct path is at sample 0, so reverberant speech stays aligned with the dry
    reference (PESQ, STOI and SI-SDR compare them sample by sample)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(1.2 * rt60 * sr)) / sr
    h = rng.standard_normal(len(t)) * np.exp(-3 * np.log(10) * t / rt60)  # amplitude: -60 dB at rt60
    h[0] = 0.0
    h *= 0.6 / np.sqrt(np.sum(h**2))  # reverberant tail at about -4.4 dB against the direct path
    h[0] = 1.0
    return h


def measure_rt60(h: np.ndarray, sr: int) -> float:
    """RT60 of an impulse response by Schroeder backward integration (ISO 3382): the energy
    decay curve's slope between -5 and -25 dB, extrapolated to 60 dB (T20)."""
    energy = np.cumsum(np.asarray(h, np.float64)[::-1] ** 2)[::-1]
    edc = 10 * np.log10(energy / energy[0] + 1e-300)
    i5, i25 = int(np.argmax(edc <= -5)), int(np.argmax(edc <= -25))
    if not 0 < i5 < i25:
        raise ValueError("the decay does not reach -25 dB")
    t = np.arange(i5, i25 + 1) / sr
    slope = np.polyfit(t, edc[i5:i25 + 1], 1)[0]  # dB per second
    return float(-60.0 / slope)


def reverberate(dry: np.ndarray, rt60: float, sr: int, seed: int) -> tuple[np.ndarray, float]:
    """(dry speech in a room of reverberation time rt60, cut to the dry length; the RT60
    measured on the response used)."""
    from scipy.signal import fftconvolve

    h = room_response(rt60, sr, seed)
    wet = fftconvolve(dry.astype(np.float64), h)[: len(dry)]
    return (wet / max(1.0, np.abs(wet).max() / 0.99)).astype(np.float32), measure_rt60(h, sr)


# instruct_tts: how espeak-ng realises each requested attribute (voice, -p pitch 0-99, -s words
# per minute), and the words of the instruction. Measured on espeak-ng 1.51: -p 30 -> ~88 Hz,
# -p 90 -> ~155 Hz, +f3 -p 60 -> ~230 Hz median F0; -s 80 / 160 / 300 -> 1.9-2.2 / 3.3-4.0 / 5.9-6.6
# words/s on the demo texts (the rate bands of metrics/prosody.py sit between).
ESPEAK_PITCH = {"low": ("en-us", 30, "a low-pitched male"), "medium": ("en-us", 90, "a medium-pitched"),
                "high": ("en-us+f3", 60, "a high-pitched female")}
ESPEAK_RATE = {"slow": (80, "slowly"), "normal": (160, "at a normal pace"), "fast": (300, "quickly")}


def instruction(attrs: dict[str, str]) -> str:
    return f"Say it {ESPEAK_RATE[attrs['rate']][1]} in {ESPEAK_PITCH[attrs['pitch']][2]} voice."


def render_instructed(text: str, attrs: dict[str, str], dest: Path) -> Path:
    """The reference for an instruction: espeak-ng with the voice, pitch and rate it names."""
    from ..demo.tools import espeak

    voice, pitch, _ = ESPEAK_PITCH[attrs["pitch"]]
    wav, sr = espeak(text.lower(), voice, pitch=pitch, rate=ESPEAK_RATE[attrs["rate"]][0])
    return audio.save(dest, wav, sr)


def sound_edit_items(seed: int) -> list[dict]:
    """Edit pairs from the demo sound synthesizer: `add` items (background -> background + event)
    and `remove` items (mixture -> background), each background with a different event and seed
    in the two, so the set of inputs differs from the set of targets (FAD compares sets). The same
    generators and seeds make input and target, so the target is exactly the requested edit.
    Dicts: id, op, instruction, caption (of the target), input, target (float32 at 16 kHz)."""
    import random

    from ..demo import sounds

    rng = random.Random(f"sound-edit-{seed}")
    n = int(sounds.CLIP_SECONDS * sounds.SAMPLE_RATE)
    items = []
    combos = [("add", "rain", "bell"), ("add", "rumble", "beeps"), ("add", "hum", "siren"),
              ("remove", "rain", "ticking"), ("remove", "rumble", "chirps"), ("remove", "hum", "beeps")]
    for k, (op, bg, ev) in enumerate(combos):
        g_bg, sample_bg, bg_caps = sounds.BACKGROUNDS[bg]
        g_ev, sample_ev, ev_caps = sounds.EVENTS[ev]
        bp, ep = sample_bg(rng), sample_ev(rng)
        back = g_bg(np.random.default_rng(seed * 100 + k), n, bp)
        event = g_ev(np.random.default_rng(seed * 100 + 50 + k), n, ep)
        scale = 0.8 / max(1e-9, float(np.abs(back + event).max()))  # one gain for both: the edit is exact
        both, only_bg = ((back + event) * scale).astype(np.float32), (back * scale).astype(np.float32)
        ev_text, bg_text = ev_caps[0](ep), bg_caps[0]
        if op == "add":
            items.append({"id": f"sound-edit-add-{ev}-to-{bg}", "op": op, "instruction": f"Add this event: {ev_text}.",
                          "caption": sounds._caption(ev_text, bg_text), "input": only_bg, "target": both})
        else:
            items.append({"id": f"sound-edit-remove-{ev}-from-{bg}", "op": op, "instruction": f"Remove the {ev}.",
                          "caption": bg_text[0].upper() + bg_text[1:], "input": both, "target": only_bg})
    return items


def svs_records(dest: Path, seed: int, count: int = 12) -> list[Record]:
    """Demo songs (lyrics on seeded melodies) sung by Festival's two diphone voices in turn;
    extra: notes (the score) and singer."""
    from ..demo import singing

    out = []
    for k in range(count):
        notes, singer = singing.demo_score(k, seed), singing.SINGERS[k % len(singing.SINGERS)]
        wav, sr = singing.sing(notes, singer)
        uid = f"svs-{k:02d}"
        out.append(Record(id=uid, corpus="demo-svs", split="test", domain="singing", path=str(audio.save(
            output_file(dest, uid, ".wav"), wav, sr)), text=" ".join(n["lyric"] for n in notes), speaker=singer,
            language="en", extra={"notes": notes, "singer": singer}))
    return out


def speech_edit_records(speech: list[Record], suite: Path) -> list[Record]:
    """One word of each test sentence replaced (espeak-ng voices in turn): `path` is the reference
    edit, `text` the edited transcript; extra: input_path (the original speech), original_text,
    old_word, new_word, edit_span_s (the edited region of the reference, seconds)."""
    from ..demo import speech_edit as se

    out = []
    for k, r in enumerate(speech):
        taken = {w.lower() for w in r.text.split()}
        new = next(w for j in range(len(se.REPLACEMENTS))
                   if (w := se.REPLACEMENTS[(k + j) % len(se.REPLACEMENTS)]) not in taken)
        voice = se.VOICES[k % len(se.VOICES)]
        pair = se.edit_pair(r.text, new, voice)
        uid = f"edit-{r.id}"
        original = audio.save(output_file(suite / "speech_edit_input", uid, ".wav"), pair["original"], 16000)
        edited = audio.save(output_file(suite / "speech_edit_ref", uid, ".wav"), pair["edited"], 16000)
        out.append(Record(id=uid, corpus="demo-speech-edit", split="test", domain="speech", path=str(edited),
                          text=pair["edited_text"], speaker=voice, language="en", extra={
                              "input_path": str(original), "original_text": pair["original_text"],
                              "old_word": pair["old_word"], "new_word": pair["new_word"],
                              "edit_span_s": [round(v, 4) for v in pair["span_s"]], "source_id": r.id}))
    return out


def build_demo(root: Path, *, seed: int = 0, progress: bool = False) -> Path:
    """Write {root}/demo/{task}.parquet test sets (once; reused after)."""
    from ..demo import build_demo as build_corpora
    from ..pipeline.recipes import records

    suite = root / "demo"
    marker = suite / f".{SUITE_VERSION}"
    if marker.exists():
        return suite
    if suite.is_dir() and any(suite.glob(".demo-*")):  # an older version's suite (ours: a cache) goes whole,
        shutil.rmtree(suite)  # corpora included, so no old file is reused under the new version
    if progress:
        print(f"[benchmark] building the demo suite in {suite} (once: its corpora, then each task's test set)",
              flush=True)
    corpora = suite / "corpora"
    if not (corpora / "demo.json").exists():
        build_corpora(corpora, seed=seed, scale=1.0, progress=progress)
    speech = sorted(records("librispeech", corpora / "LibriSpeech", split="test-clean"), key=lambda r: r.id)

    asr = [r for r in speech]
    lj = find_ljspeech_mini()
    if lj is not None:
        asr += list(records("ljspeech", lj, split="test"))
    manifest.write_manifest(suite / "asr.parquet", asr)

    by_spk: dict[str, list[Record]] = {}
    for r in speech:
        by_spk.setdefault(r.speaker, []).append(r)
    tts = []
    for spk_utts in by_spk.values():
        for i, r in enumerate(spk_utts):
            prompt = spk_utts[(i + 1) % len(spk_utts)]  # another utterance of the same speaker
            tts.append(Record(**{**r.__dict__, "extra": {**r.extra, "prompt_path": prompt.path, "prompt_id": prompt.id}}))
    manifest.write_manifest(suite / "tts.parquet", tts)

    se = []
    for k, r in enumerate(speech):
        clean, sr = audio.load(r.path, 16000)
        noisy = audio.save(output_file(suite / "se_noisy", r.id, ".wav"), add_noise(clean, 5.0, seed * 1000 + k), sr)
        se.append(Record(**{**r.__dict__, "extra": {**r.extra, "input_path": str(noisy), "snr_db": 5.0}}))
    manifest.write_manifest(suite / "se.parquet", se)
    dereverb = []
    for k, r in enumerate(speech):
        dry, sr = audio.load(r.path, 16000)
        rt60 = DEREVERB_RT60[k % len(DEREVERB_RT60)]
        wet, measured = reverberate(dry, rt60, sr, seed * 1000 + k)
        path = audio.save(output_file(suite / "dereverb_wet", r.id, ".wav"), wet, sr)
        dereverb.append(Record(**{**r.__dict__, "extra": {**r.extra, "input_path": str(path), "rt60_s": rt60,
                                                         "rt60_measured_s": round(measured, 3)}}))
    manifest.write_manifest(suite / "dereverb.parquet", dereverb)
    instructed = []
    for k, r in enumerate(speech):  # every pitch with every rate, cycled over the test texts
        attrs = {"pitch": ("low", "medium", "high")[k % 3], "rate": ("slow", "normal", "fast")[(k // 3) % 3]}
        ref = render_instructed(r.text, attrs, output_file(suite / "instruct_tts_ref", r.id, ".wav"))
        instructed.append(Record(**{**r.__dict__, "path": str(ref), "speaker": None, "extra": {
            "instruction": instruction(attrs), "attributes": attrs, "source_id": r.id}}))
    manifest.write_manifest(suite / "instruct_tts.parquet", instructed)
    edits = []
    for it in sound_edit_items(seed):
        src = audio.save(output_file(suite / "sound_edit_input", it["id"], ".wav"), it["input"], 16000)
        ref = audio.save(output_file(suite / "sound_edit_target", it["id"], ".wav"), it["target"], 16000)
        edits.append(Record(id=it["id"], corpus="demo-sound-edit", split="test", domain="sound", path=str(ref),
                            caption=it["caption"], language="en",
                            extra={"input_path": str(src), "instruction": it["instruction"], "op": it["op"]}))
    manifest.write_manifest(suite / "sound_edit.parquet", edits)
    manifest.write_manifest(suite / "svs.parquet", svs_records(suite / "svs_ref", seed))
    manifest.write_manifest(suite / "speech_edit.parquet", speech_edit_records(speech, suite))
    manifest.write_manifest(suite / "codec.parquet", speech)

    # vc: speak utterance of speaker A in the voice of speaker B (prompt = a B utterance)
    # tse: A's utterance mixed with B's at 0 dB, enrollment = another utterance of A
    speakers = sorted(by_spk)
    vc, tse = [], []
    for k, r in enumerate(speech):
        own = by_spk[r.speaker]
        other = by_spk[speakers[(speakers.index(r.speaker) + 1) % len(speakers)]]
        prompt = other[k % len(other)]
        vc.append(Record(**{**r.__dict__, "extra": {**r.extra, "prompt_path": prompt.path, "prompt_id": prompt.id}}))
        enroll = own[(own.index(r) + 1) % len(own)]
        target, sr = audio.load(r.path, 16000)
        mixture = audio.save(output_file(suite / "tse_mix", r.id, ".wav"), mix(target, audio.load(prompt.path, 16000)[0], 0.0), sr)
        tse.append(Record(**{**r.__dict__, "extra": {**r.extra, "input_path": str(mixture), "enroll_path": enroll.path,
                                                    "interferer_id": prompt.id, "sir_db": 0.0}}))
    manifest.write_manifest(suite / "vc.parquet", vc)
    # tta / ttm: the evaluation clips of the demo AudioCaps and MusicCaps, prompted by their captions
    sounds = [r for r in records("audiocaps", corpora / "audiocaps") if r.split in ("val", "test")]
    manifest.write_manifest(suite / "tta.parquet", sounds)
    manifest.write_manifest(suite / "caption.parquet", sounds)  # audio -> caption, all captions as references
    from . import mmlu

    manifest.write_manifest(suite / "mmlu.parquet", mmlu.records(mmlu.DEMO))  # a 15-question stand-in, not MMLU
    manifest.write_manifest(suite / "ttm.parquet", list(records("musiccaps", corpora / "musiccaps")))
    manifest.write_manifest(suite / "tse.parquet", tse)
    marker.touch()
    return suite


def load(suite: str, data_root: Path | None, progress: bool = False) -> Path:
    root = data_root or default_root()
    if suite == "demo":
        return build_demo(root, progress=progress)
    path = Path(suite)
    if path.is_dir():
        return path  # a folder of {task}.parquet test sets
    raise FileNotFoundError(f"unknown suite {suite!r}: 'demo' or a folder holding {{task}}.parquet test sets")
