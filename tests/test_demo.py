import csv
import hashlib
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from uniaudio import audio
from uniaudio.demo import build_demo, music, sounds, speech

AUDIOCAPS_COLS = ["audiocap_id", "youtube_id", "start_time", "caption"]
MUSICCAPS_COLS = ["ytid", "start_s", "end_s", "audioset_positive_labels", "aspect_list", "caption",
                  "author_id", "is_balanced_subset", "is_audioset_eval"]


def audio_files(root: Path):
    return sorted(p for p in root.rglob("*") if p.suffix in (".flac", ".wav"))


def test_librispeech_layout(demo_root):
    ls = demo_root / "LibriSpeech"
    flacs = sorted(ls.glob("*/*/*/*.flac"))
    assert len(flacs) == 32
    speakers = {p.parts[-3] for p in flacs}
    assert len(speakers) >= 6
    for f in flacs:
        split, spk, chap = f.parts[-4:-1]
        assert split in ("train-clean-100", "test-clean")
        assert f.stem.startswith(f"{spk}-{chap}-")
        trans = f.parent / f"{spk}-{chap}.trans.txt"
        ids = [line.split(" ", 1)[0] for line in trans.read_text().splitlines()]
        assert f.stem in ids
    assert "SEX" in (ls / "SPEAKERS.TXT").read_text()


def test_every_file_opens_with_soundfile_and_soxi(demo_root):
    files = audio_files(demo_root)
    assert len(files) == 32 + 12 + 8 + 4 + 11 + 21  # LibriSpeech, audiocaps, musiccaps, long, songs, Mandarin
    for f in files:
        info = sf.info(f)
        assert info.frames > 0
    soxi = subprocess.run(["soxi", "-D", *map(str, files)], capture_output=True, text=True)
    assert soxi.returncode == 0, soxi.stderr
    durations = [float(d) for d in soxi.stdout.split()]
    assert len(durations) == len(files) and min(durations) > 1.0


def test_transcripts_are_what_espeak_said(demo_root):
    """Re-speak each transcript with the speaker's voice settings: the stored audio must be
    exactly that speech (so the transcript is exactly what espeak-ng was asked to say)."""
    by_id = {s.id: s for s in speech.SPEAKERS}
    checked = 0
    for trans in sorted((demo_root / "LibriSpeech").rglob("*.trans.txt"))[:6]:
        for line in trans.read_text().splitlines():
            uid, text = line.split(" ", 1)
            assert text == text.upper() and text.replace(" ", "").isalpha()
            stored, _ = audio.load(trans.parent / f"{uid}.flac")
            with tempfile.TemporaryDirectory() as tmp:
                subprocess.run(speech.espeak_args(by_id[uid.split("-")[0]], text.lower(), f"{tmp}/a.wav"), check=True)
                fresh = speech.headroom(audio.load(f"{tmp}/a.wav", speech.SAMPLE_RATE)[0])
            assert len(fresh) == len(stored)
            assert np.max(np.abs(fresh - stored)) < 1e-3
            checked += 1
    assert checked >= 6


def _median_log_f0(x: np.ndarray, sr: int = 16000) -> float:
    n = 640
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[::320]
    energy = (frames**2).sum(1)
    f0s = []
    for w in frames[energy > np.percentile(energy, 60)]:
        w = w - w.mean()
        ac = np.correlate(w, w, "full")[n - 1:]
        lo, hi = sr // 400, sr // 60
        k = lo + int(np.argmax(ac[lo:hi]))
        if ac[k] > 0.3 * ac[0]:
            f0s.append(sr / k)
    return float(np.log(np.median(f0s)))


def test_speakers_are_distinguishable(demo_root):
    """Leave-one-out nearest-centroid on median pitch identifies the speaker."""
    flacs = sorted((demo_root / "LibriSpeech").glob("*/*/*/*.flac"))
    feats = np.array([_median_log_f0(audio.load(f)[0]) for f in flacs])
    spk = np.array([f.parts[-3] for f in flacs])
    right = 0
    for i in range(len(flacs)):
        keep = np.arange(len(flacs)) != i
        cents = {s: feats[keep & (spk == s)].mean() for s in set(spk[keep])}
        right += min(cents, key=lambda s: abs(feats[i] - cents[s])) == spk[i]
    assert right / len(flacs) >= 0.95


def test_audiocaps_layout(demo_root):
    ac = demo_root / "audiocaps"
    for split in ("train", "val", "test"):
        with open(ac / f"{split}.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert rows and list(rows[0]) == AUDIOCAPS_COLS
        for r in rows:
            assert (ac / "audio" / split / f"{r['youtube_id']}.wav").exists()
            assert len(r["youtube_id"]) == 11 and r["caption"]
        if split != "train":  # evaluation splits carry several captions per clip, as AudioCaps does
            assert len(rows) > len({r["youtube_id"] for r in rows})


def test_beep_caption_counts_the_beeps(tmp_path):
    for count in (2, 3, 4):
        clip = sounds.Clip("train", f"beep{count}xxxxx", 0, "beeps", {"count": count, "freq": 880}, "none", {},
                           (), (), seed=1)
        x, sr = audio.load(sounds.synthesize(clip, tmp_path))
        env = np.convolve(np.abs(x), np.ones(160) / 160, mode="same") > 0.1
        onsets = int(np.sum(np.diff(env.astype(int)) == 1))
        assert onsets == count
        assert sounds.COUNT_WORDS[count] in sounds.EVENTS["beeps"][2][0]({"count": count, "freq": 880})


def test_musiccaps_layout_and_captions(demo_root):
    mc = demo_root / "musiccaps"
    with open(mc / "musiccaps-public.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and list(rows[0]) == MUSICCAPS_COLS
    plan = {p.ytid: p for p in music.plan(7, 0.67)}
    for r in rows:
        p = plan[r["ytid"]]
        x, sr = audio.load(mc / "audio" / f"{r['ytid']}.wav", mono=False)
        assert x.shape[0] == int(music.CLIP_SECONDS * sr) and np.abs(x).max() > 0.5
        assert int(r["end_s"]) - int(r["start_s"]) == 10
        cap = r["caption"]
        assert INSTR_WORD(p) in cap and str(p.tempo) in cap and p.mood in cap
        assert p.instrument in r["aspect_list"] and p.mood in r["aspect_list"]


def INSTR_WORD(p):
    return music.INSTRUMENTS[p.instrument][2]


def test_music_midi_matches_plan():
    p = music.plan(3, 1.0)[0]
    mf = music.midi(p)
    tempos = [m.tempo for t in mf.tracks for m in t if m.type == "set_tempo"]
    programs = {m.program for t in mf.tracks for m in t if m.type == "program_change"}
    assert tempos == [round(60_000_000 / p.tempo)]
    assert programs == {music.INSTRUMENTS[p.instrument][0]}


def test_seed_and_scale():
    assert speech.plan(1, 1.0) == speech.plan(1, 1.0)
    assert [u.text for u in speech.plan(1, 1.0)] != [u.text for u in speech.plan(2, 1.0)]
    assert len(speech.plan(0, 2.0)) == 2 * len(speech.plan(0, 1.0))
    assert len(sounds.plan(0, 10.0)) == 10 * len(sounds.plan(0, 1.0))
    assert len(music.plan(0, 10.0)) == 10 * len(music.plan(0, 1.0))
    with pytest.raises(ValueError, match="scale"):
        build_demo("/tmp/never", scale=0)


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "demo.json"}


def test_same_seed_same_bytes(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    build_demo(a, seed=5, scale=0.2, progress=False)
    build_demo(b, seed=5, scale=0.2, progress=False)
    da, db = _digest(a), _digest(b)
    assert da == db and len(da) > 20


def test_voices_plan_is_deterministic_and_synthesizes_every_kind_of_voice(tmp_path):
    from uniaudio import audio
    from uniaudio.demo import voices

    a, b = voices.plan(3, 2.0), voices.plan(3, 2.0)
    assert a == b and {u.voice.engine for u in a} == {"flite", "festival"}
    assert {v.voice for v in voices.VOICES if v.engine == "festival"} <= voices.festival_voices()
    # one of each kind, for real: flite, HTS, diphone, unit selection (reads transliterated text)
    kinds = ("slt", "cmu_us_slt_arctic_hts", "kal_diphone", "msu_ru_nsh_clunits")
    for kind in kinds:
        u = next(u for u in a if u.voice.voice == kind)
        wav, sr = audio.load(voices.synthesize(u, tmp_path))
        assert sr == 16000 and len(wav) > sr and abs(wav).max() > 0.01, kind
    assert voices.cyrillic("the cheese") == "те чисе"


def test_sentences_from_a_text_keep_only_what_a_voice_reads_as_written():
    from uniaudio.demo.transcripts import sentences_from_text, transcript

    text = ("The early bird catches the worm, but the second mouse gets the cheese.\n%\n"
            "I owe you 42 dollars and a pint of beer.\n%\n"  # digits: read as words
            "Fair words butter no parsnips.\n\t\t-- John Clarke\n%\n"  # the attribution goes
            "The NASA probe landed safely on the far side.  Short one.\n\n"  # acronym; too short
            "Call the C.I.A. at once, then read alt.cyberpunk for the rest of it.\n%\n"  # dotted
            "\"Never put off till tomorrow what you can do the day after tomorrow,\" said he.\n%\n"
            "the early bird catches the worm, but the second mouse gets the cheese.\n")  # a repeat
    assert sentences_from_text(text) == [
        "The early bird catches the worm, but the second mouse gets the cheese.",
        "Fair words butter no parsnips.",
        "Never put off till tomorrow what you can do the day after tomorrow,\" said he."]
    assert transcript("Don't panic, it's only a test!") == "DON'T PANIC IT'S ONLY A TEST"


def test_voices_plan_from_a_sentence_pool_uses_every_sentence_before_repeating():
    from uniaudio.demo import voices

    pool = [f"sentence number {w} has exactly six words" for w in ("one", "two", "three", "four", "five", "six", "seven")]
    a, b = voices.plan(1, 2.0, pool), voices.plan(1, 2.0, pool)
    assert a == b and a != voices.plan(2, 2.0, pool)
    assert all(len(u.text.split()) >= 10 for u in a)
    first = " ".join(u.text for u in a).split(" has exactly six words")[:7]
    assert sorted(s.strip().split()[-1] for s in first) == sorted(p.split()[2] for p in pool)
    with pytest.raises(ValueError, match="no words"):
        voices.plan(1, 2.0, ["", "  "])


def test_voices_refuse_to_resume_into_a_folder_of_another_plan(tmp_path):
    from uniaudio.demo import voices

    (tmp_path / "plan.sha1").write_text("0" * 40 + "\n")  # as a build with another seed leaves it
    with pytest.raises(RuntimeError, match="another plan"):
        voices.build(tmp_path, seed=1, minutes=0.1, progress=False)
