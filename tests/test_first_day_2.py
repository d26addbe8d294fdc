"""A user's first day, round two (issue 36): numbers in YAML, honest offline errors without
retries, built-in names that are never hub ids, extras that say which, the small things a
newcomer sees first."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]


def test_yaml_numbers_read_as_numbers_in_every_config(tmp_path):
    from uniaudio.config import load, yaml_load
    from uniaudio.train.codec import CodecTrainConfig
    from uniaudio.train.lm import LMTrainConfig

    assert yaml_load("a: 3e-3\nb: 1e5\nc: .5\nd: 2\ne: '3e-3'\nf: 3e\ng: -1.5E+2") == \
        {"a": 0.003, "b": 100000.0, "c": 0.5, "d": 2, "e": "3e-3", "f": "3e", "g": -150.0}
    (tmp_path / "lm.yaml").write_text("data: d\nout: o\nlr: 3e-3\n")
    assert load(LMTrainConfig, tmp_path / "lm.yaml").lr == 0.003
    (tmp_path / "codec.yaml").write_text("manifests: [d]\nout: o\nlr: 3e-4\n")
    assert load(CodecTrainConfig, tmp_path / "codec.yaml").lr == 0.0003
    # one way to read YAML: no other module parses it (the CLI's files and KEY=VALUE options included)
    for path in (REPO / "uniaudio").rglob("*.py"):
        if path.name != "config.py":
            assert "yaml.safe_load" not in path.read_text() and "yaml.load(" not in path.read_text(), path


def test_offline_is_decided_by_one_quick_probe(tmp_path, monkeypatch):
    """A closed network: the first model costs one probe (no hub retries), later ones none for a
    minute, and the error names the command the installed huggingface_hub has."""
    import socket

    from transformers import ClapModel

    from uniaudio import models

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: refused at once
    monkeypatch.setenv("UNIAUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("UNIAUDIO_MODELS", str(tmp_path / "models"))
    models._probe.clear()
    t0 = time.time()
    with pytest.raises(models.ModelNotFound, match=r"hf download org/missing-model --local-dir"):
        models.from_pretrained(ClapModel, "org/missing-model")
    assert time.time() - t0 < 10
    assert (tmp_path / "cache" / "hub-probe.json").is_file()

    def no_connect(*a, **k):
        raise AssertionError("probed again within the minute")

    monkeypatch.setattr(socket, "create_connection", no_connect)
    models._probe.clear()  # another process: the file answers
    assert models.offline()


def test_mmlu_chance_lm_runs_offline_and_is_never_a_hub_id():
    res = subprocess.run([str(BIN / "benchmark"), "mmlu", "--model", "chance-lm", "--limit", "2"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "micro average" in res.stdout and "not MMLU" in res.stderr and "hub" not in res.stderr


def test_a_command_that_needs_the_bench_extra_says_so(monkeypatch):
    import importlib.util

    from click.testing import CliRunner

    from uniaudio.cli import benchmark

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pesq" else real(name, *a))
    res = CliRunner().invoke(benchmark, ["run", "--task", "asr"])
    assert res.exit_code != 0 and "[bench] extra" in res.output and "pesq" in res.output


BENCH_ONLY = ("jiwer", "whisper", "resemblyzer", "pesq", "pystoi", "librosa", "scipy", "pyworld", "pysptk",
              "speechmos", "pycocoevalcap", "matplotlib", "selenium")


def test_the_core_install_imports_nothing_of_the_bench_extra():
    """A cluster node installs `uniaudio` alone: the data engine, tokenizers and trainer import
    without any [bench] package (they are blocked here), and the core dependency list has none."""
    import tomllib

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    core = " ".join(deps["dependencies"]).lower()
    for pkg in ("jiwer", "openai-whisper", "pesq", "pystoi", "librosa", "pyworld", "pysptk", "pycocoevalcap",
                "matplotlib", "speechmos", "resemblyzer"):
        assert pkg not in core, pkg
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {BENCH_ONLY!r}:
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
import uniaudio.pipeline.run, uniaudio.pipeline.sentences.run, uniaudio.pipeline.verify, uniaudio.train.lm
import uniaudio.train.codec, uniaudio.train.factorized, uniaudio.train.generate, uniaudio.tokenize, uniaudio.demo
from uniaudio.tokenize import get
get('mulaw')
from uniaudio.cli import main
from click.testing import CliRunner
for args in (['--help'], ['pipeline', '--help'], ['train', '--help'], ['data', '--help']):
    assert CliRunner().invoke(main, args).exit_code == 0, args
print('ok')
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-2000:]


def test_small_things_a_newcomer_sees_first():
    help_text = subprocess.run([str(BIN / "uniaudio"), "--help"], capture_output=True, text=True).stdout
    assert "(later)" not in help_text and "language models" in help_text
    bare = subprocess.run(["bash", str(REPO / "run.sh")], capture_output=True, text=True)
    assert bare.returncode == 2 and "set -euo" not in bare.stdout and "./run.sh demo" in bare.stdout
    assert "benchmark-results/" in (REPO / ".gitignore").read_text().splitlines()
