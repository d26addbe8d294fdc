"""Captioning task: COCO caption metrics through pycocoevalcap (PTB tokenizer on Java)."""

import math
import shutil

import pytest

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="the COCO PTB tokenizer needs Java (run.sh installs it)")


def rows():
    caps = {"a": ["a dog barks at a passing car", "a dog is barking loudly outside"],
            "b": ["rain falls steadily on a tin roof", "heavy rain on a metal roof"],
            "c": ["a bell rings three times in a church", "church bells ringing"]}
    return [{"id": k, "caption": v[0], "extra": {"captions": v}} for k, v in caps.items()]


def score(tmp_path, hyps: dict[str, bytes]):
    from uniaudio.benchmark.metrics.base import SET_METRICS
    from uniaudio.benchmark.metrics import captioning  # noqa: F401

    d = tmp_path / "sys"
    d.mkdir(parents=True, exist_ok=True)
    for k, v in hyps.items():
        (d / f"{k}.txt").write_bytes(v)
    return SET_METRICS.get("captioning").score_set(rows(), d, tmp_path)


def test_exact_reference_scores_one_and_matches_pycocoevalcap(tmp_path):
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    perfect = score(tmp_path, {r["id"]: r["caption"].encode() for r in rows()})
    assert perfect["bleu_4"] == pytest.approx(1.0, abs=1e-6) and perfect["rouge_l"] == pytest.approx(1.0)
    hyps = {"a": b"A dog barks!", "b": b"rain on a roof", "c": b"birds sing in the morning"}
    got = score(tmp_path, hyps)
    # independent: the same scorers on hand-tokenised text (lower case, punctuation removed)
    gts = {r["id"]: r["extra"]["captions"] for r in rows()}
    res = {"a": ["a dog barks"], "b": ["rain on a roof"], "c": ["birds sing in the morning"]}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    cider, _ = Cider().compute_score(gts, res)
    assert got["bleu_1"] == pytest.approx(bleu[0]) and got["bleu_4"] == pytest.approx(bleu[3])
    assert got["cider"] == pytest.approx(cider) and got["cider"] < perfect["cider"]


def test_bad_outputs_are_reported_not_scored_as_zero(tmp_path):
    from uniaudio.benchmark.metrics.base import MetricError

    got = score(tmp_path, {"a": b"a dog barks", "b": b"   ", "c": b"\xff\xfe bad"})
    assert got["items_scored"] == 1 and got["items_skipped"]["b"] == "empty caption"
    assert "UTF-8" in got["items_skipped"]["c"]
    with pytest.raises(MetricError, match="no item could be scored"):
        score(tmp_path / "x", {"a": b""})


def test_caption_task_in_the_demo_suite(tmp_path, demo_root):
    from uniaudio import manifest
    from uniaudio.benchmark.runner import run
    from uniaudio.pipeline.recipes import records

    suite = tmp_path / "suite"
    manifest.write_manifest(suite / "caption.parquet", [r for r in records("audiocaps", demo_root / "audiocaps")
                                                        if r.split in ("val", "test")])
    (gt,) = run(["caption"], "ground-truth", str(suite), None, tmp_path / "out", progress=False)
    (sh,) = run(["caption"], "shuffled", str(suite), None, tmp_path / "out", progress=False)
    g, s = gt["metrics"]["captioning"], sh["metrics"]["captioning"]
    assert g["items_missing"] == 0 and g["value"]["cider"] > s["value"]["cider"]
    assert g["card"]["implementation"].startswith("pycocoevalcap")
    # CLAP of the generated caption: offline with no weights -> NaN with the fetch command, never a number
    assert math.isnan(gt["metrics"]["clap"]["value"]["clap"]) and gt["metrics"]["clap"]["items_failed"] == gt["items"]
