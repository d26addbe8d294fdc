"""Real speech from ../shared/data/ljspeech-mini (read in place, never copied)."""

import csv

import numpy as np

from uniaudio import audio


def test_reads_every_ljspeech_file(ljspeech_mini):
    with open(ljspeech_mini / "metadata.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="|", quoting=csv.QUOTE_NONE))
    assert len(rows) >= 30
    for uid, text, normalized in rows:
        path = ljspeech_mini / "wavs" / f"{uid}.wav"
        info = audio.info(path)
        assert info.sample_rate == 22050 and info.channels == 1
        wav, sr = audio.load(path, sr=16000)
        assert sr == 16000 and wav.dtype == np.float32
        assert abs(len(wav) / sr - info.duration) < 1e-3
        assert 0.05 < np.abs(wav).max() < 1.05  # resampling may ring slightly past full scale
        assert normalized.strip()


def test_window_of_real_speech_matches_full_read(ljspeech_mini):
    path = sorted((ljspeech_mini / "wavs").glob("*.wav"))[0]
    full, sr = audio.load(path)
    part, _ = audio.load(path, offset=0.5, duration=1.25)
    start = int(round(0.5 * sr))
    np.testing.assert_array_equal(part, full[start:start + len(part)])
    assert len(part) == int(round(1.25 * sr))
