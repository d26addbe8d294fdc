import subprocess
import sys
from pathlib import Path

import numpy as np

from uniaudio import audio

BIN = Path(sys.executable).parent


def run(*args):
    return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=120)


def test_uniaudio_help_lists_groups():
    out = run("uniaudio", "--help")
    assert out.returncode == 0
    for group in ("data", "pipeline", "train", "benchmark"):
        assert f"  {group}" in out.stdout


def test_benchmark_alias_is_the_benchmark_group():
    a, b = run("benchmark", "--help"), run("uniaudio", "benchmark", "--help")
    assert a.returncode == b.returncode == 0
    assert a.stdout.split("\n", 1)[1] == b.stdout.split("\n", 1)[1]  # same text after the usage line


def test_data_info_reports_reasons(tmp_path):
    good = audio.save(tmp_path / "ok.flac", np.zeros(1600, np.float32) + 0.1, 16000)
    bad = tmp_path / "bad.wav"
    bad.write_text("nope")
    out = run("uniaudio", "data", "info", str(good), str(bad))
    assert out.returncode == 1
    assert "16000 Hz" in out.stdout and "ERROR unreadable" in out.stderr


def test_data_demo_rejects_bad_scale(tmp_path):
    out = run("uniaudio", "data", "demo", str(tmp_path / "d"), "--scale", "0")
    assert out.returncode == 2 and "--scale" in out.stderr


def test_data_demo_command(tmp_path):
    out = run("uniaudio", "data", "demo", str(tmp_path / "d"), "--scale", "0.1", "--seed", "3")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "d" / "demo.json").exists()
    assert '"librispeech"' in out.stdout


def test_train_bpe_command(tmp_path, demo_root):
    from uniaudio import manifest
    from uniaudio.pipeline.recipes import records

    m = tmp_path / "ls.parquet"
    manifest.write_manifest(m, records("librispeech", demo_root / "LibriSpeech"))
    out = run("uniaudio", "train", "bpe", "--manifest", str(m), "--vocab-size", "300", "--out", str(tmp_path / "t.json"))
    assert out.returncode == 0, out.stderr
    from uniaudio.tokenize.text import BPETokenizer

    bpe = BPETokenizer.load(tmp_path / "t.json")
    assert bpe.decode(bpe.encode("THE QUIET RIVER")) == "THE QUIET RIVER" and bpe.vocab_size <= 300
