"""tools/device/: the Opus packer and the wall-clock-budgeted codec training, run as scripts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from uniaudio import audio, manifest
from uniaudio.pipeline.recipes import records

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(ROOT / "tools/device" / script), *args], cwd=cwd, env=env,
                           capture_output=True, text=True, timeout=300)


def test_pack_opus_packs_and_leaves_out_unreadable_files(demo_root, tmp_path):
    recs = list(records("librispeech", demo_root / "LibriSpeech", split="train-clean-100"))[:3]
    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"fLaC not really")
    recs.append(manifest.Record(id="bad", corpus="x", split="train", domain="speech", path=str(bad)))
    manifest.write_manifest(tmp_path / "small.parquet", recs)
    proc = _run("pack_opus.py", "packed", "small.parquet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "small: 3 files, 1 left out" in proc.stdout and "bad.flac: " in proc.stdout
    packed = list(manifest.iter_records(tmp_path / "packed/small.parquet"))
    assert len(packed) == 3
    for src, dst in zip(recs, packed):
        assert dst.path.endswith(".ogg") and audio.info(tmp_path / dst.path).sample_rate == 16000
        ref, _ = audio.load(src.path, 16000)
        got, _ = audio.load(tmp_path / dst.path, 16000)
        assert abs(len(got) - len(ref)) <= 1 and dst.duration == len(got) / 16000
        err = got[: len(ref)] - ref[: len(got)]
        assert 10 * np.log10(np.sum(ref**2) / np.sum(err**2)) > 15  # lossy, but the same audio


@pytest.mark.slow
def test_train_codec_timed_ends_inside_its_budget_with_a_complete_schedule(demo_root, tmp_path):
    m = tmp_path / "train.parquet"
    manifest.write_manifest(m, list(records("librispeech", demo_root / "LibriSpeech", split="train-clean-100")))
    cfg = {"manifests": [str(m)], "out": str(tmp_path / "run"), "device": "cpu", "threads": 1,
           "model": {"channels": 4, "latent_dim": 16, "n_codebooks": 2, "codebook_size": 16},
           "steps": 1, "batch_size": 1, "segment_seconds": 0.25, "lr": 1e-3, "warmup_steps": 5}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    t = time.time()
    proc = _run("train_codec_timed.py", "c.yaml", "--budget", "20", "--reserve", "3", "--copy-to", str(tmp_path),
                cwd=tmp_path)
    took = time.time() - t
    assert proc.returncode == 0, proc.stderr[-2000:]
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    steps = log[-1]["step"]
    assert steps > 30 and "training" in proc.stdout and took < 20 + 20  # the budget, plus interpreter start and imports
    # the cosine ran its full course: the last lr is the floor (min_lr_ratio x lr)
    assert abs(log[-1]["lr"] - 1e-3 * 0.1) < 1e-3 * 0.02
    assert (tmp_path / "codec.pt").is_file() and (tmp_path / "MODEL_CARD.md").is_file()
    # refuses to overwrite a run
    again = _run("train_codec_timed.py", "c.yaml", "--budget", "45", cwd=tmp_path)
    assert again.returncode != 0 and "last.pt exists" in again.stderr
