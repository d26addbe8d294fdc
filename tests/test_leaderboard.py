"""Leaderboards (issue 16): intervals that are right, failures that show, hostile names that
stay text, byte-identical republishing, and the pages driven in headless Chromium."""

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from uniaudio import manifest
from uniaudio.benchmark.publish import publish
from uniaudio.benchmark.publish.stats import mean_ci, ratio_ci
from uniaudio.manifest import Record

REPO = Path(__file__).resolve().parents[1]
HOSTILE = "<img src=x onerror=alert(1)>"
SCRIPT_TEXT = "it ends </script><script>alert(2)</script> here"


def test_mean_interval_is_the_hand_computed_one():
    v = [float(x) for x in np.random.default_rng(0).normal(3.0, 0.5, 40)]
    ci = mean_ci(v)
    mean, se = sum(v) / 40, math.sqrt(sum((x - sum(v) / 40) ** 2 for x in v) / 39) / math.sqrt(40)
    assert ci["value"] == pytest.approx(mean) and ci["ci95"] == pytest.approx([mean - 1.96 * se, mean + 1.96 * se], rel=1e-3)
    small = mean_ci(v[:10])  # small n: bootstrap, reproducible, around the mean
    assert small == mean_ci(v[:10]) and small["ci95"][0] < small["value"] < small["ci95"][1] and "bootstrap" in small["method"]
    assert mean_ci([float("nan")])["value"] is None  # nothing finite: missing, not 0


def test_wer_bootstrap_is_reproducible_and_contains_the_corpus_wer():
    rng = np.random.default_rng(1)
    words = rng.integers(3, 30, 50)
    errors = rng.binomial(words, 0.1)
    a, b = ratio_ci(list(errors), list(words), seed=7), ratio_ci(list(errors), list(words), seed=7)
    assert a == b and a["value"] == pytest.approx(errors.sum() / words.sum())
    assert a["ci95"][0] < a["value"] < a["ci95"][1]
    assert ratio_ci(list(errors), list(words), seed=8)["ci95"] != a["ci95"]  # the seed is what fixes it


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Real `benchmark run` outputs on a planted asr suite: ground truth, a folder system with a
    hostile name whose transcript holds </script>, and one with a missing output."""
    from uniaudio.benchmark.runner import run

    root = tmp_path_factory.mktemp("lb")
    rows = [Record(id=f"utt-{i:02d}", corpus="t", split="test", domain="speech", path=f"/nonexistent/{i}.wav",
                   text=" ".join(["the quick brown fox jumps"] * (1 + i % 3))) for i in range(6)]
    manifest.write_manifest(root / "suite" / "asr.parquet", rows)
    hostile = root / "systems" / HOSTILE / "asr"
    partial = root / "systems" / "partial" / "asr"
    for d in (hostile, partial):
        d.mkdir(parents=True)
    for i, r in enumerate(rows):
        (hostile / f"{r.id}.txt").write_text(SCRIPT_TEXT if i == 0 else r.text.replace("fox", "cat"))
        if i != 3:  # utt-03 has no output: a failed item
            (partial / f"{r.id}.txt").write_text(r.text)
    out = root / "out"
    for system in ("ground-truth", str(root / "systems" / HOSTILE), str(root / "systems" / "partial")):
        run(["asr"], system, str(root / "suite"), None, out, progress=False)
    return out


def test_rows_values_intervals_failures_and_escaping_in_every_format(results, tmp_path):
    res = publish([results], tmp_path / "lb", date="2026-01-01")
    board = res["board"]
    (asr,) = board["tasks"]
    rows = {r["system"]: r for r in asr["rows"]}
    assert set(rows) == {"ground-truth", HOSTILE, "partial"} and board["refused"] == []
    assert rows["ground-truth"]["values"]["wer"]["value"] == 0.0
    part = rows["partial"]["values"]["wer"]
    assert part["failed"] == 1 and part["failure_reasons"] == {"missing": 1} and part["n"] == 5  # shown, not averaged in
    assert rows[HOSTILE]["values"]["wer"]["ci95"][0] <= rows[HOSTILE]["values"]["wer"]["value"]
    text = {p.name: p.read_text() for p in (tmp_path / "lb").iterdir()}
    assert "NaN" not in text["leaderboard.json"] and json.loads(text["leaderboard.json"])["schema"] == "uniaudio.leaderboard/1"
    assert HOSTILE not in text["leaderboard.md"] and "&lt;img src=x onerror=alert(1)&gt;" in text["leaderboard.md"]
    for name, page in text.items():
        if name.endswith(".html"):
            assert HOSTILE not in page and "</script><script>alert(2)" not in page, name
    assert "⚠ 1 failed" in text["task-asr.html"] and "⚠ 1 failed" in text["leaderboard.md"]
    csv_bad = [line for line in text["leaderboard.csv"].splitlines() if line.startswith(("=", "+", "@"))]
    assert not csv_bad
    # the same inputs published again: byte-identical files
    again = publish([results], tmp_path / "lb2", date="2026-01-01")
    assert {p.name: p.read_bytes() for p in again["files"]} == {p.name: p.read_bytes() for p in res["files"]}


def test_a_resume_that_rescores_nothing_publishes_the_same_bytes(results, tmp_path):
    import time

    from uniaudio.benchmark.runner import run

    first = publish([results], tmp_path / "a", date="2026-01-01")
    suite = results.parent / "suite"
    t0 = time.time()
    run(["asr"], "ground-truth", str(suite), None, results, resume=True, progress=False)
    assert time.time() - t0 < 20  # nothing to score again
    second = publish([results], tmp_path / "b", date="2026-01-01")
    assert {p.name: p.read_bytes() for p in second["files"]} == {p.name: p.read_bytes() for p in first["files"]}


def test_a_result_that_fails_validation_is_refused_and_the_rest_published(results, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(results, bad)
    from uniaudio.files import safe_name

    agg = bad / "results" / "asr" / safe_name(HOSTILE) / "aggregate.json"
    d = json.loads(agg.read_text())
    d["metrics"]["wer"]["value"]["wer"] = 0.0  # claims better than its own items say
    agg.write_text(json.dumps(d))
    (bad / "results" / "asr" / "ground-truth" / "items.jsonl").write_text("{not json\n")
    board = publish([bad], tmp_path / "lb", date="2026-01-01")["board"]
    reasons = {Path(x["path"]).name: x["reason"] for x in board["refused"]}
    assert "items give" in reasons[safe_name(HOSTILE)] and "not JSON" in reasons["ground-truth"]
    assert [r["system"] for r in board["tasks"][0]["rows"]] == ["partial"]


def chromium(tmp_path):
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("Debian chromium + chromium-driver not installed (run.sh installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              f"--user-data-dir={tmp_path / 'chrome-profile'}", "--window-size=1400,1000"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)


def artifacts(tmp_path) -> Path:
    """Where screenshots go: $UNIAUDIO_TEST_ARTIFACTS (CI) or the test's own folder."""
    d = Path(os.environ.get("UNIAUDIO_TEST_ARTIFACTS", tmp_path))
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.mark.slow
def test_pages_in_headless_chromium_sort_escape_and_run_nothing(results, tmp_path):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    lb = tmp_path / "lb"
    publish([results], lb, date="2026-01-01")
    driver = chromium(tmp_path)
    try:
        driver.get((lb / "task-asr.html").as_uri())
        table = driver.find_element(By.ID, "results")
        names = lambda: [r.find_elements(By.TAG_NAME, "td")[0].text for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")]  # noqa: E731
        assert sorted(names()) == sorted(["ground-truth", HOSTILE, "partial"])  # the hostile name is text
        wer = table.find_element(By.XPATH, ".//th[starts-with(normalize-space(.), 'wer ↓')]")
        wer.click()  # lower is better: best first
        values = [r.find_elements(By.TAG_NAME, "td")[1].get_attribute("data-value")
                  for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")]
        nums = [float(v) for v in values if v]
        assert nums == sorted(nums) and names()[0] in ("ground-truth", "partial") and names()[-1] == HOSTILE
        wer.click()  # second click: worst first
        assert names()[0] == HOSTILE
        driver.save_screenshot(str(artifacts(tmp_path) / "leaderboard-task-asr.png"))
        driver.get((lb / f"items-asr-{__import__('uniaudio.files', fromlist=['x']).safe_name(HOSTILE)}.html").as_uri())
        assert SCRIPT_TEXT in driver.find_element(By.TAG_NAME, "body").text  # shown, not run
        with pytest.raises(NoAlertPresentException):
            driver.switch_to.alert.text
        driver.get((lb / "index.html").as_uri())
        assert HOSTILE in driver.find_element(By.TAG_NAME, "body").text
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert severe == []
    finally:
        driver.quit()


@pytest.mark.slow
def test_the_published_demo_report_has_real_numbers_for_every_task(tmp_path):
    """The committed leaderboards/ (README: how to regenerate it) opens with a value for every task."""
    from selenium.webdriver.common.by import By

    from uniaudio.benchmark.tasks import TASKS

    index = REPO / "leaderboards" / "index.html"
    assert index.is_file(), "leaderboards/ (the published demo report) is missing"
    board = json.loads((REPO / "leaderboards" / "leaderboard.json").read_text())
    assert {t["task"] for t in board["tasks"]} == set(TASKS)
    for t in board["tasks"]:  # offline, CLAP has no weights: tta/ttm show their first metric that has values
        assert any(r["values"].get(t["primary"], {}).get("value") is not None for r in t["rows"]), t["task"]
    driver = chromium(tmp_path)
    try:
        driver.get(index.as_uri())
        tables = driver.find_elements(By.CSS_SELECTOR, "table.sortable")
        assert len(tables) == len(TASKS)
        driver.save_screenshot(str(artifacts(tmp_path) / "leaderboard-demo-index.png"))
        assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
    finally:
        driver.quit()


def test_publish_never_destroys_a_report(results, tmp_path):
    """A report is swapped in only when complete; a folder holding another report, or files no
    report made, is refused unless forced; nothing to publish writes nothing (issue 36)."""
    from uniaudio.benchmark.publish import PublishError

    lb = tmp_path / "lb"
    publish([results], lb, date="2026-01-01")
    before = {p.name: p.read_bytes() for p in lb.iterdir()}
    assert ".uniaudio-report.json" in before
    # a results folder whose only run has a corrupt items.jsonl line: refused before anything is written
    bad = tmp_path / "bad"
    shutil.copytree(results / "results" / "asr" / "ground-truth", bad / "results" / "asr" / "ground-truth")
    (bad / "results" / "asr" / "ground-truth" / "items.jsonl").write_text("{not json\n")
    with pytest.raises(PublishError, match="no results to publish"):
        publish([bad], lb, date="2026-01-01", force=True)
    assert {p.name: p.read_bytes() for p in lb.iterdir()} == before
    # another report's folder: refused (the checkout's leaderboards/ vs a 3-task run), unless forced
    other = tmp_path / "other"
    shutil.copytree(results, other)
    shutil.rmtree(other / "results" / "asr" / "partial")
    with pytest.raises(PublishError, match="report of other results"):
        publish([other], lb, date="2026-01-01")
    assert {p.name: p.read_bytes() for p in lb.iterdir()} == before
    forced = publish([other], lb, date="2026-01-01", force=True)
    assert not (lb / "items-asr-partial.html").exists()  # no stale page of the old report stays behind
    assert sorted(p.name for p in lb.iterdir()) == sorted(p.name for p in forced["files"])
    # the same sources again: republished in place
    publish([other], lb, date="2026-01-01")
    # a folder of someone else's files, or a report folder with a file added to it
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(PublishError, match="no `benchmark publish` made"):
        publish([results], mine, date="2026-01-01")
    (lb / "my-notes.txt").write_text("keep me too")
    with pytest.raises(PublishError, match="did not make"):
        publish([other], lb, date="2026-01-01")
    assert (mine / "notes.txt").read_text() == "keep me" and (lb / "my-notes.txt").is_file()


def test_a_publish_that_fails_midway_leaves_the_old_report(results, tmp_path, monkeypatch):
    from uniaudio.benchmark import publish as pub

    lb = tmp_path / "lb"
    publish([results], lb, date="2026-01-01")
    before = {p.name: p.read_bytes() for p in lb.iterdir()}

    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(pub.html, "items_page", broken)
    with pytest.raises(OSError):
        publish([results], lb, date="2026-01-02")
    assert {p.name: p.read_bytes() for p in lb.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left behind
    # killed between the two renames of the swap: the next publish finds the old report and puts it back
    monkeypatch.undo()
    lb.rename(tmp_path / ".lb.old-12345")
    publish([results], lb, date="2026-01-03")
    assert json.loads((lb / "leaderboard.json").read_text())["generated"] == "2026-01-03"


def test_pages_rank_by_the_first_metric_state_shared_failures_once_and_show_plain_cards(results, tmp_path):
    from uniaudio.benchmark.publish.html import card_html

    lb = tmp_path / "lb"
    board = publish([results], lb, date="2026-01-01")["board"]
    (asr,) = board["tasks"]
    wers = [r["values"]["wer"]["value"] for r in asr["rows"]]
    assert wers == sorted(wers) and asr["rows"][-1]["system"] == HOSTILE  # best (lowest WER) first, everywhere
    index = (lb / "index.html").read_text()
    assert index.index(">ground-truth<") < index.index(">partial<") and 'class="tasks"' in index
    assert "Fréchet" in card_html({"aggregation": "Fréchet distance", "x": {"y": "é"}}) and "\\u00e9" not in \
        card_html({"aggregation": "Fréchet distance", "x": {"y": "é"}})
    from uniaudio.benchmark.publish.html import items_page

    items = [{"id": f"u{i}", "values": {"utmos": float("nan")}, "errors": {"utmos": "model X is not available"}}
             for i in range(5)]
    page = items_page({"task": "tts", "primary": "utmos", "columns": []}, {"system": "s"}, items)
    assert page.count("model X is not available") == 1 and page.count("see note 1") == 5


def test_publish_to_object_storage(results, tmp_path, s3):
    """`benchmark publish --out s3://...`: the same files as a local publish, the marker last; a
    prefix holding another report is refused unless forced, and a forced replace removes the
    files the old report had that the new one has not."""
    from click.testing import CliRunner

    from uniaudio import storage
    from uniaudio.benchmark.publish import MARKER, PublishError
    from uniaudio.cli import benchmark

    bucket = s3.bucket("reports")
    local = publish([results], tmp_path / "lb", date="2026-01-01")
    res = CliRunner().invoke(benchmark, ["publish", str(results), "--out", f"{bucket}/lb", "--date", "2026-01-01"])
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in local["files"])
    assert sorted(n.rsplit("/", 1)[-1] for n in storage.glob(f"{bucket}/lb/*")) == names
    for name in names:
        if name != MARKER:  # the marker names its sources: relative locally, absolute for a remote report
            assert storage.read_bytes(f"{bucket}/lb/{name}") == (tmp_path / "lb" / name).read_bytes(), name
    storage.write_bytes(f"{bucket}/lb/stale-page.html", b"x")  # a file an older report had
    marker = json.loads(storage.read_bytes(f"{bucket}/lb/{MARKER}"))
    storage.write_bytes(f"{bucket}/lb/{MARKER}", json.dumps(dict(marker, files=[*marker["files"], "stale-page.html"])
                                                            ).encode())
    other = tmp_path / "other"
    shutil.copytree(results / "results" / "asr" / "ground-truth", other / "results" / "asr" / "ground-truth")
    with pytest.raises(PublishError, match="report of other results"):
        publish([other], f"{bucket}/lb", date="2026-01-01")
    publish([other], f"{bucket}/lb", date="2026-01-01", force=True)
    assert not storage.exists(f"{bucket}/lb/stale-page.html")
    assert json.loads(storage.read_bytes(f"{bucket}/lb/{MARKER}"))["sources"] == [str(other.resolve())]
