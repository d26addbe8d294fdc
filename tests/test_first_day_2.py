"""A user's first day, round two (issue 36): numbers in YAML, honest offline errors without
retries, built-in names that are never hub ids, extras that say which, the small things a
newcomer sees first."""

import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]


def test_yaml_numbers_read_as_numbers_in_every_config(tmp_path):
    from uniaudio.config import load, yaml_load
    from uniaudio.train.codec_trainer import CodecTrainConfig
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
    with pytest.raises(models.ModelNotFound, match=r"hf download org/missing-model --local-dir"):
        models.from_pretrained(ClapModel, "org/missing-model")
    assert (tmp_path / "cache" / "hub-probe.json").is_file()

    class Loader:  # records how the hub client is asked: never without local_files_only once offline
        calls: list = []

        @classmethod
        def from_pretrained(cls, name, **kw):
            cls.calls.append(kw)
            raise OSError("not in the cache")

    with pytest.raises(models.ModelNotFound):
        models.from_pretrained(Loader, "org/other-model")  # the probe remembered: cache only, no hub call
    assert Loader.calls == [{"local_files_only": True}]

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
    import importlib.metadata

    from click.testing import CliRunner

    from uniaudio.benchmark import bench_requirements
    from uniaudio.cli import benchmark

    assert "pesq" in bench_requirements() and "zhon" in bench_requirements()  # read from the installed metadata
    real = importlib.metadata.version

    def version(dist):
        if dist == "pesq":
            raise importlib.metadata.PackageNotFoundError(dist)
        return real(dist)

    monkeypatch.setattr(importlib.metadata, "version", version)
    res = CliRunner().invoke(benchmark, ["run", "--task", "asr"])
    assert res.exit_code != 0 and "[bench] extra" in res.output and "pesq" in res.output


def test_the_core_install_imports_nothing_of_the_bench_extra():
    """A cluster node installs `uniaudio` alone: the data engine, tokenizers and trainer import
    without any [bench] package (their modules are blocked here), and no core requirement is one."""
    from importlib.metadata import packages_distributions, requires

    from uniaudio.benchmark import bench_requirements

    bench = set(bench_requirements()) - {"setuptools"}  # a version pin for resemblyzer, not a feature
    core = {r.split(";")[0].split("[")[0].split(">")[0].split("=")[0].strip() for r in requires("uniaudio")
            if "extra ==" not in r}
    assert bench and not bench & core
    blocked = sorted(mod for mod, dists in packages_distributions().items() if set(dists) & bench)
    assert {"zhon", "whisper", "pesq", "scipy", "matplotlib"} <= set(blocked)  # (jiwer is core: the transcript check)
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {blocked!r}:
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
import uniaudio.pipeline.run, uniaudio.pipeline.sentences.run, uniaudio.pipeline.verify, uniaudio.train.lm
import uniaudio.train.codec_trainer, uniaudio.train.factorized_trainer, uniaudio.train.generate, uniaudio.tokenize, uniaudio.demo
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
