"""The whole line with every folder an s3:// prefix on the test S3 server: corpus -> token
shards -> auditory sentences -> `train lm` (resumed on a "fresh machine": an empty local cache)
-> `benchmark run` of its checkpoint on a test set in the store -> leaderboards in the store."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from uniaudio import storage

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def upload_tree(folder: Path, prefix: str) -> None:
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            storage.upload(str(p), storage.join(prefix, p.relative_to(folder).as_posix()))


def log_records(uri: str) -> list[dict]:
    return [json.loads(line) for line in storage.read_text(storage.join(uri, "log.jsonl")).splitlines()]


def test_corpus_to_leaderboard_with_every_folder_in_object_storage(s3, demo_root, ray_local, tmp_path, monkeypatch):
    from pipeline_helpers import config
    from test_lm import lm_config
    from uniaudio.config import from_dict
    from uniaudio.manifest import Record, write_manifest
    from uniaudio.pipeline.recipes import records
    from uniaudio.pipeline.run import run as run_pipeline
    from uniaudio.pipeline.sentences import SentenceConfig, run as run_sentences
    from uniaudio.pipeline.verify import verify
    from uniaudio.train.lm import train

    bucket = s3.bucket("line")
    tokens, sent, lm, bench, boards = (f"{bucket}/{n}" for n in ("tokens", "sentences", "lm", "bench", "boards"))

    report = run_pipeline(config(tokens, [{"recipe": "librispeech", "root": str(demo_root / "LibriSpeech")}],
                                 tokenizer="uniaudio-codec", tokenizer_options={"beam": 1},
                                 shard={"max_samples": 6}), progress=False)
    assert report["samples"] > 0 and verify(tokens)["problems"] == []
    assert not (Path.cwd() / "s3:").exists()  # nothing went to a local folder named after the URI

    scfg = from_dict(SentenceConfig, {"tokens": tokens, "output": sent})
    srep = run_sentences(scfg, progress=False)
    assert srep["bundles"] > 0 and verify(sent)["problems"] == []
    # a shard whose done record is gone (a worker killed between its tar and its record) is built again
    done = storage.glob(f"{sent}/done/*.json")
    storage.delete(done[0])
    again = run_sentences(scfg, progress=False)
    assert again["shards"]["written_this_run"] == 1 and again["shards"]["skipped_done"] == len(done) - 1
    assert again["bundles"] == srep["bundles"] and verify(sent)["problems"] == []

    # train 2 steps, then resume to 4 from an empty local cache: the run pulls its state from the store
    monkeypatch.setenv("UNIAUDIO_CACHE", str(tmp_path / "cache-a"))
    train(lm_config(sent, lm, steps=2, lr_decay_steps=4), progress=False)
    monkeypatch.setenv("UNIAUDIO_CACHE", str(tmp_path / "cache-b"))
    res = train(lm_config(sent, lm, steps=4, lr_decay_steps=4), progress=False)
    assert res["model"] == f"{lm}/model.pt" and res["step"] == 4
    log = log_records(lm)
    assert [r["step"] for r in log if r.get("event") == "start"] == [0, 2]
    assert sorted(r["step"] for r in log if "loss" in r) == [1, 2, 3, 4]  # each step logged once

    # a tts test set in the store (its audio beside it, relative paths), scored through the CLI
    speech = sorted(records("librispeech", demo_root / "LibriSpeech", split="test-clean"), key=lambda r: r.id)[:2]
    suite = tmp_path / "suite"
    (suite / "audio").mkdir(parents=True)
    rows = []
    for i, r in enumerate(speech):
        for src in (r.path, speech[1 - i].path):
            shutil.copy(src, suite / "audio" / Path(src).name)
        rows.append(Record(**{**r.__dict__, "path": str(suite / "audio" / Path(r.path).name),
                              "extra": {**r.extra, "prompt_path": str(suite / "audio" / Path(speech[1 - i].path).name)}}))
    write_manifest(suite / "tts.parquet", rows)
    upload_tree(suite, f"{bucket}/suite")
    env = {"UNIAUDIO_CACHE": str(tmp_path / "cache-c")}
    cmd = [str(BIN / "uniaudio"), "benchmark", "run", "--task", "tts", "--system", f"lm-ckpt:{lm}",
           "--suite", f"{bucket}/suite", "--out", bench, "--publish", boards]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**__import__("os").environ, **env})
    assert done.returncode == 0, done.stderr[-3000:]
    agg = json.loads(storage.read_text(f"{bench}/results/tts/lm-ckpt-lm/aggregate.json"))
    assert agg["metrics"]["wer"]["items_scored"] == 2 and agg["system_card"]["step"] == 4
    assert len(storage.read_text(f"{bench}/results/tts/lm-ckpt-lm/items.jsonl").splitlines()) == 2
    board = json.loads(storage.read_text(f"{boards}/leaderboard.json"))
    assert [t["task"] for t in board["tasks"]] == ["tts"]
    assert storage.exists(f"{boards}/index.html")
