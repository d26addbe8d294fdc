import os
import subprocess

import numpy as np
import pytest
import soundfile as sf

from uniaudio import audio
from uniaudio.audio import AudioError

SR = 16000


def tone(seconds=1.0, sr=SR, freq=440.0, channels=1):
    t = np.arange(int(seconds * sr)) / sr
    x = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def reason_of(path, **kw):
    with pytest.raises(AudioError) as ei:
        audio.load(path, **kw)
    assert str(path) in str(ei.value)  # the message names the file
    return ei.value.reason


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_save_load_round_trip(tmp_path, suffix):
    x = tone()
    p = audio.save(tmp_path / f"a{suffix}", x, SR)
    y, sr = audio.load(p)
    assert sr == SR and y.dtype == np.float32 and y.shape == x.shape
    assert np.max(np.abs(x - y)) < 1e-3  # 16-bit quantisation
    assert not list(tmp_path.glob(".*tmp*"))  # no temp file left behind


def test_window_reads_exact_span(tmp_path):
    x = np.arange(SR * 3, dtype=np.float32) / (SR * 3)
    p = audio.save(tmp_path / "ramp.wav", x, SR, subtype="FLOAT")
    y, _ = audio.load(p, offset=1.0, duration=0.5)
    assert len(y) == SR // 2
    np.testing.assert_allclose(y, x[SR:SR + SR // 2])
    tail, _ = audio.load(p, offset=2.5)
    assert len(tail) == SR // 2
    assert reason_of(p, offset=5.0) == audio.BAD_WINDOW


def test_stereo_96k_mixes_down_and_resamples(tmp_path):
    left, right = tone(2.0, 96000, 440), tone(2.0, 96000, 880)
    p = tmp_path / "st.wav"
    sf.write(p, np.stack([left, right], 1), 96000)
    y, sr = audio.load(p, sr=SR)
    assert sr == SR and y.ndim == 1 and len(y) == 2 * SR
    both, sr2 = audio.load(p, mono=False)
    assert sr2 == 96000 and both.shape == (2 * 96000, 2)
    # mono is the mean of the channels: 440 Hz and 880 Hz both present at half amplitude
    spec = np.abs(np.fft.rfft(y)) / len(y)
    freqs = np.fft.rfftfreq(len(y), 1 / SR)
    for f in (440, 880):
        assert spec[np.argmin(np.abs(freqs - f))] == pytest.approx(0.125, rel=0.05)


@pytest.mark.parametrize("subtype,fmt", [("ULAW", "WAV"), ("PCM_U8", "WAV"), ("PCM_24", "FLAC"), ("VORBIS", "OGG")])
def test_reads_other_encodings(tmp_path, subtype, fmt):
    p = tmp_path / f"x.{fmt.lower()}"
    sf.write(p, tone(), SR, format=fmt, subtype=subtype)
    y, sr = audio.load(p)
    assert sr == SR and abs(len(y) - SR) < 100 and np.abs(y).max() > 0.3


def test_reads_mp3(tmp_path):
    if "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile has no MP3 support")
    p = tmp_path / "x.mp3"
    sf.write(p, tone(), SR, format="MP3")
    y, sr = audio.load(p, sr=22050)
    assert sr == 22050 and np.abs(y).max() > 0.3


# --- the bad inputs of the issue: one error type, a clear reason each ---------------

def test_truncated_flac(tmp_path):
    good = audio.save(tmp_path / "good.flac", np.random.default_rng(0).uniform(-0.5, 0.5, SR * 2).astype(np.float32), SR)
    bad = tmp_path / "cut.flac"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert reason_of(bad) == audio.TRUNCATED


def test_truncated_wav(tmp_path):
    good = audio.save(tmp_path / "good.wav", tone(), SR)
    bad = tmp_path / "cut.wav"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert reason_of(bad) == audio.TRUNCATED


def test_zero_byte(tmp_path):
    (tmp_path / "z.wav").touch()
    assert reason_of(tmp_path / "z.wav") == audio.EMPTY
    with pytest.raises(AudioError, match="empty"):
        audio.info(tmp_path / "z.wav")


def test_text_named_wav(tmp_path):
    p = tmp_path / "notes.wav"
    p.write_text("this is a text file, not audio\n" * 20)
    assert reason_of(p) == audio.UNREADABLE
    assert "not a recognised audio format" in str(pytest.raises(AudioError, audio.info, p).value)


def test_nan_samples(tmp_path):
    x = tone()
    x[100:110] = np.nan
    p = tmp_path / "nan.wav"
    sf.write(p, x, SR, subtype="FLOAT")
    assert reason_of(p) == audio.NON_FINITE


def test_missing_path(tmp_path):
    assert reason_of(tmp_path / "nope.flac") == audio.MISSING


def test_unreadable_permissions(tmp_path):
    p = audio.save(tmp_path / "locked.wav", tone(), SR)
    os.chmod(p, 0)
    try:
        assert reason_of(p) == audio.PERMISSION
    finally:
        os.chmod(p, 0o644)


def test_directory_is_not_audio(tmp_path):
    assert reason_of(tmp_path) == audio.UNSUPPORTED


def test_error_survives_pickling(tmp_path):
    import pickle

    e = AudioError(tmp_path / "x.wav", audio.TRUNCATED, "cut")
    e2 = pickle.loads(pickle.dumps(e))
    assert (e2.path, e2.reason, e2.detail) == (e.path, e.reason, e.detail)


def test_save_refuses_bad_arrays(tmp_path):
    with pytest.raises(AudioError, match="non_finite"):
        audio.save(tmp_path / "n.wav", np.array([0.0, np.inf], np.float32), SR)
    with pytest.raises(AudioError, match="empty"):
        audio.save(tmp_path / "e.wav", np.zeros(0, np.float32), SR)
    with pytest.raises(AudioError, match="unsupported"):
        audio.save(tmp_path / "x.mp4", tone(), SR)
    assert not list(tmp_path.iterdir())


def test_resample_length_and_content():
    x = tone(1.0, 44100, 1000)
    y = audio.resample(x, 44100, SR)
    assert len(y) == SR
    peak = np.argmax(np.abs(np.fft.rfft(y)))
    assert abs(peak * SR / len(y) - 1000) < 2


def test_info_matches_soxi(tmp_path):
    p = audio.save(tmp_path / "i.flac", tone(1.5), SR)
    i = audio.info(p)
    assert (i.sample_rate, i.channels, i.frames, i.format) == (SR, 1, int(1.5 * SR), "FLAC")
    soxi = subprocess.run(["soxi", "-s", str(p)], capture_output=True, text=True)
    if soxi.returncode == 0:
        assert int(soxi.stdout) == i.frames


def test_save_ogg_opus_is_compact_and_close(tmp_path):
    x = (tone(3.0, 16000, 220) + 0.5 * tone(3.0, 16000, 1230)).astype(np.float32) * 0.4
    p = audio.save(tmp_path / "a.ogg", x, 16000, compression_level=0.9)
    y, sr = audio.load(p)
    assert sr == 16000 and len(y) == len(x)
    assert p.stat().st_size * 8 / 3.0 < 48_000  # ~32 kbps, far below 16-bit PCM's 256 kbps
    snr = 10 * np.log10((x**2).sum() / ((x - y) ** 2).sum())
    assert snr > 20, snr  # sample-aligned (no codec delay left) and close
    with pytest.raises(audio.AudioError) as e:  # Opus has no 22.05 kHz mode: a clear error, no file
        audio.save(tmp_path / "b.ogg", x, 22050)
    assert e.value.reason == audio.UNSUPPORTED and not list(tmp_path.glob("*b.ogg*"))
