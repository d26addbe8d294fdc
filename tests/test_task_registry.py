"""One place per task: a task defined by one `register` call (here, in a test) is offered by the
CLI, gets its demo test set, is scored by the systems it lists and is published with the
directions its metrics declare; a metric that declares no values cannot be registered."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from uniaudio import audio
from uniaudio.manifest import Record


@pytest.fixture
def toy_task():
    from uniaudio.benchmark.tasks import TASKS, Task, metric, output_file, register

    def demo(s):  # two 1-second tones, each its own reference
        out = []
        for k, hz in enumerate((220.0, 440.0)):
            wav = (0.3 * np.sin(2 * np.pi * hz * np.arange(16000) / 16000)).astype(np.float32)
            path = audio.save(output_file(s.root / "toy_tone", f"tone-{k}", ".wav"), wav, 16000)
            out.append(Record(id=f"tone-{k}", corpus="toy", split="test", domain="sound", path=str(path),
                              language="en"))
        return out

    task = register(Task("toy_tone", "audio", (metric("si_sdr"), metric("lsd")), "a tone -> the same tone",
                         {"ref_audio": "path"}, systems=("passthrough", "ground-truth"), demo=demo))
    yield task
    TASKS.pop("toy_tone")


def test_a_task_registered_in_one_place_runs_end_to_end(toy_task, tmp_path):
    from uniaudio.benchmark import suites
    from uniaudio.cli import benchmark

    root = tmp_path / "bench"
    (root / "demo").mkdir(parents=True)
    (root / "demo" / f".{suites.SUITE_VERSION}").touch()  # a demo suite built before the task existed
    res = CliRunner().invoke(benchmark, ["tasks"])
    assert "toy_tone: a tone -> the same tone" in res.output and "systems: passthrough, ground-truth" in res.output
    res = CliRunner().invoke(benchmark, ["run", "--task", "toy_tone", "--data-root", str(root),
                                         "--out", str(tmp_path / "out"), "--date", "2026-12-06"])
    assert res.exit_code == 0, res.output
    assert (root / "demo" / "toy_tone.parquet").is_file()  # its demo set, built on first use
    ran = sorted(p.name for p in (tmp_path / "out" / "results" / "toy_tone").iterdir())
    assert ran == ["ground-truth", "passthrough"]
    board = json.loads((tmp_path / "out" / "leaderboards" / "leaderboard.json").read_text())
    (task,) = [t for t in board["tasks"] if t["task"] == "toy_tone"]
    assert {c["key"]: c["direction"] for c in task["columns"]} == {"si_sdr": "higher", "lsd": "lower"}
    assert task["description"] == "a tone -> the same tone"


def test_a_metric_must_declare_its_values():
    from uniaudio.benchmark.metrics.base import REGISTRY, Metric, Value, declared, register

    with pytest.raises(TypeError, match="declares no values"):
        @register("undeclared_toy")
        class Undeclared(Metric):
            name = "undeclared_toy"
    with pytest.raises(TypeError, match="direction 'up'"):
        @register("bad_direction_toy")
        class BadDirection(Metric):
            name, values = "bad_direction_toy", {"bad_direction_toy": Value("up")}
    assert "undeclared_toy" not in REGISTRY and "bad_direction_toy" not in REGISTRY
    for name, cls in REGISTRY.items():  # every registered metric declares its own name's value
        assert declared(name) is not None and cls.values, name
    assert declared("wer_utt_mean").unit == "%" and declared("attributes_f0_hz").direction is None


def test_publish_refuses_a_value_no_metric_declares(tmp_path):
    from uniaudio.benchmark.publish.collect import collect

    run = tmp_path / "results" / "asr" / "mine"
    run.mkdir(parents=True)
    (run / "items.jsonl").write_text(json.dumps({"id": "a", "values": {"wer": 0.1, "mystery": 3.0}}) + "\n")
    (run / "aggregate.json").write_text(json.dumps({
        "task": "asr", "system": "mine", "run": {}, "metrics": {
            "wer": {"value": {"wer": 0.1}, "items_scored": 1, "items_failed": 0},
            "mystery": {"value": {"mystery": 3.0}, "items_scored": 1, "items_failed": 0}}}))
    rows, refused = collect([tmp_path])
    assert rows == [] and "'mystery'" in refused[0]["reason"] and "declared by no registered metric" in refused[0]["reason"]


def test_the_results_schema_file_is_the_one_the_code_checks():
    from uniaudio.benchmark import results

    assert results.SCHEMA_FILE.read_text() == results.schema_text()
    with pytest.raises(results.ResultError, match=r"items.jsonl line 3: values"):
        results.check_item({"id": "x", "values": [1]}, 3)
