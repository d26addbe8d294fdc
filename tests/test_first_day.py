"""A user's first day (issue 21): paths that work from any folder, refusals that explain
themselves, one-line CLI errors, truncation found by `data info`, honest BPE sizes."""

import json
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from pipeline_helpers import config, shard_ids
from uniaudio import audio, manifest
from uniaudio.pipeline.recipes import records

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]


def cli(*args, cwd=None):
    return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_manifest_paths_work_from_any_folder(tmp_path, demo_root, monkeypatch):
    work = tmp_path / "work"
    shutil.copytree(demo_root / "LibriSpeech", work / "corpora" / "LibriSpeech")
    monkeypatch.chdir(work)
    manifest.write_manifest("inside.parquet", records("librispeech", "corpora/LibriSpeech"))
    manifest.write_manifest(tmp_path / "elsewhere" / "outside.parquet", records("librispeech", "corpora/LibriSpeech"))
    # stored: relative to the manifest's folder when under it, absolute otherwise
    raw_inside = manifest.pq.read_table(work / "inside.parquet").column("path").to_pylist()
    raw_outside = manifest.pq.read_table(tmp_path / "elsewhere" / "outside.parquet").column("path").to_pylist()
    assert all(p.startswith("corpora/LibriSpeech/") for p in raw_inside)
    assert all(p.startswith(str(work)) for p in raw_outside)
    monkeypatch.chdir(tmp_path)
    for m in (work / "inside.parquet", tmp_path / "elsewhere" / "outside.parquet"):
        recs = list(manifest.iter_records(m))
        assert recs and all(Path(r.path).is_absolute() and Path(r.path).is_file() for r in recs)
    # the whole folder moves: relative paths follow it
    shutil.move(str(work), str(tmp_path / "moved"))
    assert all(Path(r.path).is_file() for r in manifest.iter_records(tmp_path / "moved" / "inside.parquet"))


def test_extra_paths_follow_the_same_rule(tmp_path, monkeypatch):
    (tmp_path / "suite" / "prompts").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    rec = manifest.Record(id="a", corpus="t", split="test", domain="speech", path="suite/a.wav",
                          extra={"prompt_path": "suite/prompts/p.wav", "note": "kept"})
    manifest.write_manifest("suite/tts.parquet", [rec])
    monkeypatch.chdir("/")
    (row,) = manifest.read_rows(tmp_path / "suite" / "tts.parquet")
    assert row["path"] == str(tmp_path / "suite" / "a.wav")
    assert json.loads(row["extra"]) == {"prompt_path": str(tmp_path / "suite" / "prompts" / "p.wav"), "note": "kept"}


def test_legacy_manifests_keep_their_working_directory_rule(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    monkeypatch.chdir(tmp_path)
    legacy = manifest.SCHEMA.with_metadata({b"uniaudio.schema": manifest.LEGACY_TAG})
    row = manifest.Record(id="a", corpus="t", split="s", domain="speech", path="data/a.wav").to_row()
    (tmp_path / "sub").mkdir()
    pq.write_table(pa.Table.from_pylist([row], schema=legacy), "sub/old.parquet")
    (r,) = manifest.iter_records(tmp_path / "sub" / "old.parquet")
    assert r.path == str(tmp_path / "data" / "a.wav")  # relative to the cwd, as such files always were


@pytest.mark.slow
def test_pipeline_consumes_a_manifest_built_in_another_folder(tmp_path, demo_root, ray_local, monkeypatch):
    from uniaudio.pipeline.run import run

    work = tmp_path / "work"
    shutil.copytree(demo_root / "musiccaps", work / "musiccaps")
    monkeypatch.chdir(work)
    manifest.write_manifest("mc.parquet", records("musiccaps", "musiccaps"))
    monkeypatch.chdir(tmp_path)
    report = run(config(tmp_path / "out", [{"manifest": str(work / "mc.parquet"), "name": "mc"}]), progress=False)
    assert report["samples"] == 8 and report["rejected"] == 0 and len(shard_ids(tmp_path / "out")) == 8


def test_refused_run_names_the_field_and_leaves_config_json(tmp_path, demo_root, ray_local):
    from uniaudio.pipeline.plan import PlanMismatch
    from uniaudio.pipeline.run import run

    out = tmp_path / "out"
    inputs = [{"recipe": "musiccaps", "root": str(demo_root / "musiccaps")}]
    run(config(out, inputs), progress=False)
    before = (out / "config.json").read_bytes()
    with pytest.raises(PlanMismatch) as ei:
        # a tokenizer change: refused before the tokenizer would load
        run(config(out, inputs, sample_rate=24000, tokenizer="mulaw"), progress=False)
    msg = str(ei.value)
    assert "sample_rate: 16000 -> 24000" in msg and 'tokenizer: "none" -> "mulaw"' in msg
    assert (out / "config.json").read_bytes() == before


def test_run_sh_flags_and_the_readme_config_plan_the_same(tmp_path, demo_root, monkeypatch):
    """run.sh demo passes --input flags; the README then runs configs/demo-pipeline.yaml:
    both must describe one plan (same fingerprint), or the second is refused."""
    import yaml

    from uniaudio.config import from_dict
    from uniaudio.pipeline.config import PipelineConfig

    script = (REPO / "run.sh").read_text()
    flags = [f.split(":", 1) for f in
             __import__("re").findall(r'--input "([a-z]+:\$dir/corpora/[A-Za-z]+)"', script)]
    assert [r for r, _ in flags] == ["librispeech", "audiocaps", "musiccaps", "aishell"]
    monkeypatch.chdir(tmp_path)
    cfg = yaml.safe_load((REPO / "configs/demo-pipeline.yaml").read_text())
    from_flags = dict(cfg, inputs=[{"recipe": r, "root": root.replace("$dir", "demo-data")} for r, root in flags])
    a, b = from_dict(PipelineConfig, cfg), from_dict(PipelineConfig, from_flags)
    assert a.fingerprint() == b.fingerprint()


@pytest.mark.slow
def test_run_sh_demo_then_readme_command_resumes(tmp_path, demo_root):
    """The CLI in the order the README gives it: run.sh's pipeline call, then the README's."""
    corpora = tmp_path / "demo-data" / "corpora"
    for name in ("LibriSpeech", "audiocaps", "musiccaps", "aishell"):
        shutil.copytree(demo_root / name, corpora / name)
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    base = ["uniaudio", "pipeline", "run", "configs/demo-pipeline.yaml", "--tokenizer", "mulaw", "--num-cpus", "2"]
    first = cli(*base, "--out", "demo-data/shards", "--input", "librispeech:demo-data/corpora/LibriSpeech",
                "--input", "audiocaps:demo-data/corpora/audiocaps", "--input", "musiccaps:demo-data/corpora/musiccaps",
                "--input", "aishell:demo-data/corpora/aishell", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    second = cli(*base, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert '"written_this_run": 0' in second.stdout


@pytest.mark.parametrize("recipe", ["librispeech", "vctk", "audiocaps", "musiccaps", "ljspeech", "clotho"])
def test_recipe_on_a_wrong_folder_is_one_line_and_non_zero(tmp_path, recipe):
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "readme.txt").write_text("not a corpus")
    out = cli("uniaudio", "pipeline", "manifest", "--recipe", recipe, "--root", str(tmp_path / "root"),
              "--out", str(tmp_path / "m.parquet"))
    assert out.returncode == 1
    lines = [line for line in out.stderr.splitlines() if line.strip() and not line.startswith(recipe + ":")]
    assert "Traceback" not in out.stderr and lines[0].startswith("Error: ") and recipe in lines[0]
    assert not (tmp_path / "m.parquet").exists()
    if recipe in ("librispeech", "vctk"):
        assert "expected" in lines[0]


def test_debug_flag_shows_the_traceback(tmp_path):
    (tmp_path / "root").mkdir()
    out = cli("uniaudio", "--debug", "pipeline", "manifest", "--recipe", "librispeech", "--root", str(tmp_path / "root"),
              "--out", str(tmp_path / "m.parquet"))
    assert out.returncode == 1 and "Traceback" in out.stderr and "RecipeError" in out.stderr


@pytest.mark.parametrize("spec", ["lm:/a/missing/folder", "lm:./nope"])
def test_missing_local_model_folder_says_so(spec):
    from uniaudio.benchmark.systems import load
    from uniaudio.models import ModelNotFound

    with pytest.raises(ModelNotFound, match="does not exist") as ei:
        load(spec).load()
    assert "huggingface-cli" not in str(ei.value)


@pytest.mark.slow
def test_benchmark_mmlu_missing_model_is_one_line(tmp_path):
    from uniaudio.benchmark.tasks.mmlu import DEMO

    out = cli("benchmark", "mmlu", "--data", str(DEMO), "--model", "/a/missing/folder")
    assert out.returncode == 1 and "does not exist" in out.stderr and "huggingface-cli" not in out.stderr


def test_truncated_wav_is_truncated_for_info_and_load(tmp_path):
    p = tmp_path / "cut.wav"
    with wave.open(str(p), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.sin(np.arange(16000) / 7) * 8000).astype("<i2").tobytes())
    p.write_bytes(p.read_bytes()[:2000])
    for fn in (audio.info, audio.load):
        with pytest.raises(audio.AudioError) as ei:
            fn(p)
        assert ei.value.reason == "truncated"
    out = cli("uniaudio", "data", "info", str(p))
    assert out.returncode == 1 and "ERROR truncated" in out.stderr


def test_train_bpe_says_when_the_vocabulary_stops_short(tmp_path, demo_root):
    m = tmp_path / "ls.parquet"
    manifest.write_manifest(m, records("librispeech", demo_root / "LibriSpeech"))
    out = cli("uniaudio", "train", "bpe", "--manifest", str(m), "--vocab-size", "8000", "--out", str(tmp_path / "t.json"))
    assert out.returncode == 0, out.stderr
    assert "stopped at" in out.stderr and "of the 8000 asked" in out.stderr
