"""Benchmark fidelity on data from elsewhere (issue 17): MMLU prompts and scoring exactly as
lm-eval-harness 0.4.x, hostile test-set ids, suites used from another working directory,
and a system that fails on one item only."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from uniaudio import audio, manifest
from uniaudio.benchmark.tasks import mmlu

# lm-eval's mmlu `_default_template_yaml` doc_to_text and its per-subject description, verbatim
LM_EVAL_DOC_TO_TEXT = ("{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\n"
                       "D. {{choices[3]}}\nAnswer:")
LM_EVAL_DESCRIPTION = "The following are multiple choice questions (with answers) about {{subject}}.\n\n"


def lm_eval_context(subject: str, shots: list[list[str]], test: list[str]) -> str:
    """lm-eval's context: description + shots (doc_to_text + " " + target) joined and ended
    by "\\n\\n" (fewshot_delimiter, first_n sampler) + the test doc_to_text."""
    import jinja2

    env = jinja2.Environment(keep_trailing_newline=True)
    text = env.from_string(LM_EVAL_DOC_TO_TEXT)

    def doc(row):
        return text.render(question=row[0], choices=row[1:5])

    desc = env.from_string(LM_EVAL_DESCRIPTION).render(subject=subject.replace("_", " "))
    return desc + "".join(doc(s) + " " + s[5] + "\n\n" for s in shots) + doc(test)


HARD_DEV = [
    ["  What does this print?\n```\nprint(1 +\n      2)\n```  ", "1", "2", "3", " 12 ", "C"],
    ["Stray whitespace after the question mark?   ", "yes", "no", "maybe", "never", "A"],
    ["A field with a \x85 next-line, a \x0c form feed and a \u2028 line separator", "a\x85b", "c", "d", "e", "B"],
    ['He said "quoted, with commas", then left.', "one", "two, three", "four", "five", "D"],
    ["\tTabbed question\r\nwith a CRLF inside", "w", "x", "y", "z", "A"],
]
HARD_TEST = [["Which passage?\n\nPassage one.\nPassage two.  ", "first", "second", "both", "neither", "B"]]


def write_hard_mmlu(root: Path, subject: str = "computer_security") -> Path:
    import csv

    for split, rows in (("dev", HARD_DEV), ("test", HARD_TEST)):
        (root / "data" / split).mkdir(parents=True, exist_ok=True)
        with open(root / "data" / split / f"{subject}_{split}.csv", "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(rows)  # quoting as pandas/csv writes the official files
    return root


def test_mmlu_prompts_equal_lm_eval_character_for_character(tmp_path):
    data = mmlu.load(write_hard_mmlu(tmp_path))
    dev, test = data["computer_security"]
    assert [q.question for q in dev] == [r[0] for r in HARD_DEV]  # newlines, \x85, \x0c, \u2028 survive
    assert dev[2].choices[0] == "a\x85b" and dev[3].choices[1] == "two, three"
    got = mmlu.prompt(test[0], dev[:5])
    assert got == lm_eval_context("computer_security", HARD_DEV, HARD_TEST[0])
    assert "print(1 +\n      2)" in got and "mark?\nA. yes" in got and "B. 2\nC. 3\nD.  12 \n" in got
    (rec,) = mmlu.records(tmp_path)
    assert rec.text == got


class MergingTokenizer:
    """A real `tokenizers` BPE with no pre-tokenizer and the merge ': ' so that the context
    "...Answer:" ends in ':' while "...Answer: A" holds ': ' then 'A' (a merge across the
    boundary, as SentencePiece vocabularies do)."""

    @staticmethod
    def build(corpus: str):
        from tokenizers import Tokenizer, models
        from transformers import PreTrainedTokenizerFast

        chars = sorted(set(corpus) | set(" ABCD:"))
        vocab = {c: i for i, c in enumerate(chars)}
        vocab[": "] = len(vocab)
        tok = Tokenizer(models.BPE(vocab=vocab, merges=[(":", " ")]))
        return PreTrainedTokenizerFast(tokenizer_object=tok)


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory):
    """A GPT-2 with LEARNED positions (n_positions=48): a prompt longer than that crashes it
    unless cut from the left, as lm-eval does."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    d = tmp_path_factory.mktemp("gpt2")
    root = write_hard_mmlu(d / "mmlu")
    data = mmlu.load(root)
    dev, test = data["computer_security"]
    corpus = "".join(mmlu.prompt(q, dev[:5]) for q in test) + " A B C D"
    tok = MergingTokenizer.build(corpus)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=48, n_embd=16, n_layer=1, n_head=2))
    tok.save_pretrained(d / "model")
    model.save_pretrained(d / "model")
    return d


def manual_loglikelihood(model, ids_ctx: list[int], ids_cont: list[int], max_length: int) -> float:
    import torch

    full = (ids_ctx + ids_cont)[-(max_length + 1):]
    with torch.no_grad():
        logits = model(torch.tensor([full[:-1]])).logits[0]
    logp = torch.log_softmax(logits, -1)
    n = len(ids_cont)
    return float(sum(logp[len(full) - 1 - n + i, t] for i, t in enumerate(ids_cont)))


def test_merged_continuation_and_left_truncation_follow_lm_eval(tiny_gpt2):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    lm = mmlu.HFCausalLM(str(tiny_gpt2 / "model"))
    assert lm.max_length == 48 and lm.add_bos_token is None and lm.settings()["bos_added"] is False  # GPT-2: none
    data = mmlu.load(tiny_gpt2 / "mmlu")
    dev, test = data["computer_security"]
    ctx = mmlu.prompt(test[0], dev[:5])
    tok = AutoTokenizer.from_pretrained(tiny_gpt2 / "model")
    enc = lambda s: tok(s, add_special_tokens=False).input_ids  # noqa: E731
    ctx_ids, whole = enc(ctx), enc(ctx + " A")
    assert whole[: len(ctx_ids)] != ctx_ids  # the tokenizer really merges across "Answer:| A"
    cont_ids = whole[len(ctx_ids):]  # lm-eval's rule: the whole string's tokens after the context's
    assert cont_ids == [tok.convert_tokens_to_ids("A")] != enc(" A")
    assert len(ctx_ids) > 10 * lm.max_length  # far longer than the model's window
    got = lm.loglikelihood(ctx, [" A", " B", " C", " D"])  # no IndexError from the position table
    model = AutoModelForCausalLM.from_pretrained(tiny_gpt2 / "model").eval()
    for letter, value in zip("ABCD", got):
        cont = enc(ctx + " " + letter)[len(ctx_ids):]
        assert value == pytest.approx(manual_loglikelihood(model, ctx_ids, cont, 48), abs=1e-5)
    assert lm.truncated > 0 and lm.settings()["truncation"].startswith("left")


def test_softmax_dtype_is_the_models_unless_asked(tiny_gpt2):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_gpt2 / "model")
    model = AutoModelForCausalLM.from_pretrained(tiny_gpt2 / "model").to(torch.bfloat16)
    native = mmlu.HFCausalLM("bf16", objects=(tok, model))
    wide = mmlu.HFCausalLM("bf16", objects=(tok, model), softmax_dtype="float32")
    assert native.settings()["softmax_dtype"] == "model (torch.bfloat16)"
    assert wide.settings()["softmax_dtype"] == "float32"
    ctx = "Question: B or C?\nAnswer:"
    ctx_ids = tok(ctx, add_special_tokens=False).input_ids
    (cont,) = tok(ctx + " C", add_special_tokens=False).input_ids[len(ctx_ids):]
    with torch.no_grad():
        logits = model(torch.tensor([ctx_ids])).logits[0, -1]
    assert native.loglikelihood(ctx, [" C"])[0] == float(torch.log_softmax(logits, -1)[cont])
    assert wide.loglikelihood(ctx, [" C"])[0] == pytest.approx(float(torch.log_softmax(logits.float(), -1)[cont]), abs=1e-6)
    assert native.loglikelihood(ctx, [" C"])[0] != wide.loglikelihood(ctx, [" C"])[0]  # the option matters
    with pytest.raises(ValueError, match="softmax_dtype"):
        mmlu.HFCausalLM("bf16", objects=(tok, model), softmax_dtype="int8")


def test_mmlu_task_keeps_every_log_likelihood_and_the_pick(tiny_gpt2, tmp_path):
    from uniaudio.benchmark.runner import run

    suite = tmp_path / "suite"
    manifest.write_manifest(suite / "mmlu.parquet", mmlu.records(tiny_gpt2 / "mmlu"))
    (res,) = run(["mmlu"], f"lm:{tiny_gpt2 / 'model'}", str(suite), None, tmp_path / "out", progress=False)
    (item,) = [json.loads(line) for line in (tmp_path / "out/results/mmlu/lm-model/items.jsonl").read_text().splitlines()]
    out = item["output"]
    assert set(out["loglikelihoods"]) == set("ABCD") and out["prediction"] in "ABCD"
    lls = out["loglikelihoods"]
    assert out["prediction"] == max(lls, key=lls.get) and out["truncated_tokens"] > 0
    assert item["values"]["accuracy"] == float(out["prediction"] == "B")
    assert res["system_card"]["scoring"]["max_length"] == 48


def speech_suite(folder: Path, ids: list[str], *, relative_to: Path | None = None) -> Path:
    """A tiny se suite (clean + noisy copies) written with paths typed relative to `relative_to`."""
    import os

    rng = np.random.default_rng(0)
    rows = []
    for k, uid in enumerate(ids):
        t = np.arange(16000) / 16000
        clean = (0.3 * np.sin(2 * np.pi * (150 + 40 * k) * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2).astype(np.float32)
        c = audio.save(folder / "clean" / f"c{k}.wav", clean, 16000)
        n = audio.save(folder / "noisy" / f"n{k}.wav", clean + 0.05 * rng.standard_normal(16000).astype(np.float32), 16000)
        rel = (lambda p: os.path.relpath(p, relative_to)) if relative_to else str
        rows.append(manifest.Record(id=uid, corpus="t", split="test", domain="speech", path=rel(c), text="x",
                                    extra={"input_path": rel(n)}))
    manifest.write_manifest(folder / "se.parquet", rows)
    manifest.write_manifest(folder / "codec.parquet", rows)  # no model metrics: quick to score
    return folder


def test_hostile_ids_write_nothing_outside_out(tmp_path):
    from uniaudio.benchmark.runner import run

    suite = speech_suite(tmp_path / "suite", ["../../../escape", "/abs/olute", "ok-1", ".hidden"])
    out = tmp_path / "deep" / "er" / "out"
    (res,) = run(["codec"], "passthrough", str(suite), None, out, progress=False)
    assert res["metrics"]["pesq"]["items_scored"] == 4
    written = {p.resolve() for p in tmp_path.rglob("*.wav")} - {p.resolve() for p in suite.rglob("*.wav")}
    assert written and all(str(p).startswith(str(out.resolve()) + "/") for p in written)
    names = sorted(p.name for p in (out / "outputs" / "passthrough" / "codec").iterdir())
    assert "ok-1.wav" in names and not any(n.startswith(".") for n in names) and len(names) == 4
    assert not (tmp_path / "escape.wav").exists() and not Path("/abs/olute.wav").exists()
    ids = [json.loads(line)["id"] for line in (out / "results/codec/passthrough/items.jsonl").read_text().splitlines()]
    assert sorted(ids) == sorted(["../../../escape", "/abs/olute", "ok-1", ".hidden"])  # ids themselves kept


@pytest.mark.slow
def test_suite_scores_the_same_from_another_working_directory(tmp_path, monkeypatch):
    from uniaudio.benchmark.runner import run

    monkeypatch.chdir(tmp_path)
    speech_suite(Path("data/suite"), ["a", "b"], relative_to=Path("."))  # built with relative paths
    (here,) = run(["se"], "passthrough", "data/suite", None, tmp_path / "out1", progress=False)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    (there,) = run(["se"], "passthrough", str(tmp_path / "data/suite"), None, tmp_path / "out2", progress=False)
    for name in ("pesq", "stoi", "si_sdr"):
        assert here["metrics"][name]["items_failed"] == 0
        assert here["metrics"][name]["value"] == there["metrics"][name]["value"]


@pytest.mark.slow
def test_a_system_failing_on_one_item_fails_that_item_only(tmp_path):
    from uniaudio.benchmark.runner import run

    suite = speech_suite(tmp_path / "suite", ["a", "b", "c"])
    (suite / "noisy" / "n1.wav").unlink()  # item b's input is gone
    (res,) = run(["se"], "passthrough", str(suite), None, tmp_path / "out", progress=False)
    m = res["metrics"]["pesq"]
    assert m["items_scored"] == 2 and m["items_failed"] == 1 and m["failure_reasons"] == {"system_failed": 1}
    items = {json.loads(line)["id"]: json.loads(line) for line in
             (tmp_path / "out/results/se/passthrough/items.jsonl").read_text().splitlines()}
    assert math.isnan(items["b"]["values"]["pesq"]) and "missing" in items["b"]["errors"]["pesq"]
    assert not math.isnan(items["a"]["values"]["pesq"])


class RaisingAdapter:
    """An adapter that dies on one item inside a whole-batch produce()."""
    name = "raiser"
    tasks = ("codec",)

    def produce(self, task, rows, outdir):
        from uniaudio.benchmark.tasks import output_file, row_value

        for r in rows:
            if r["id"] == "b":
                raise RuntimeError("cannot enhance b")
            wav, sr = audio.load(row_value(r, task.input))
            audio.save(output_file(outdir, r["id"], ".wav"), wav, sr)


def test_an_adapter_that_raises_is_retried_item_by_item(tmp_path, monkeypatch):
    import sys
    import types

    from uniaudio.benchmark.runner import run

    mod = types.ModuleType("fidelity_adapters")
    mod.RaisingAdapter = RaisingAdapter
    monkeypatch.setitem(sys.modules, "fidelity_adapters", mod)
    suite = speech_suite(tmp_path / "suite", ["a", "b", "c"])
    (res,) = run(["codec"], "fidelity_adapters:RaisingAdapter", str(suite), None, tmp_path / "out", progress=False)
    m = res["metrics"]["stoi"]
    assert m["items_scored"] == 2 and m["items_failed"] == 1
    items = [json.loads(line) for line in (tmp_path / "out/results/codec/raiser/items.jsonl").read_text().splitlines()]
    (b,) = [i for i in items if i["id"] == "b"]
    assert b["errors"]["stoi"] == "system_failed: RuntimeError: cannot enhance b"


def test_seed_tts_eval_normaliser_is_its_run_wer_rule():
    """Planted cases of Seed-TTS-eval's run_wer.py text rule: punctuation (ASCII and Chinese) gone
    except the apostrophe, one pass of double spaces, lower-case; zh: every character a word."""
    from uniaudio.benchmark.metrics.wer import WER
    from uniaudio.textnorm import text_normalizer as normalizer

    en = normalizer("seed-tts-eval", "en")
    assert en("Don't   stop, Mr. Smith!") == "don't  stop mr smith"  # one pass: three spaces -> two
    assert en("It's 42 “quoted” words…") == "it's 42 quoted words"  # digits stay digits (no number rule)
    assert normalizer("seed-tts-eval", "zh")("你好，世界！") == "你 好 世 界"
    w = WER(normalizer="seed-tts-eval")
    assert w.card()["normalizer"] == "seed-tts-eval" and "apostrophe" in w.card()["normalization"]
    with pytest.raises(KeyError, match="seed-tts-eval"):
        normalizer("no-such-normaliser")


@pytest.mark.parametrize("ref,hyp,cer", [
    ("今天是2024年12月6日，天气很好！", "今天是2024年12月6日天氣很好", 0.0),  # the transcript's 氣 -> 气 (zhconv)
    ("“我们走吧，”他说。", "我們走吧他說", 0.0),  # full-width quotes and stops are punctuation
    ("价格是３０元（含税）。", "价格是30元含税", 0.25),  # full-width digits are kept: 2 of 8 characters differ
    ("一九九八年，他来到北京", "1998年他来到北京", 0.4),  # no number rule: 4 substitutions of 10
    ("他說：「這是真的嗎？」", "他说这是真的吗", 3 / 7),  # the reference is not converted, only the transcript
])
def test_seed_tts_eval_zh_rule_on_tricky_strings(ref, hyp, cer):
    """The zh CER as Seed-TTS-eval's run_wer.py computes it: the values are what its own
    `process_one` gives on these pairs (benchmarks/fidelity.py --against seed-tts-eval: 15 pairs,
    largest difference 0)."""
    from uniaudio.benchmark.metrics.base import Sample
    from uniaudio.benchmark.metrics.wer import WER

    (got,) = WER(normalizer="seed-tts-eval", language="zh").score([Sample(id="x", ref_text=ref, hyp_text=hyp)])
    assert got["wer"] == pytest.approx(cer)


@pytest.mark.parametrize("ref,hyp,counts", [
    ("一二线城市虽然也处于调整中", "一二线城市也处于调整中", (13, 0, 2, 0)),
    ("但因为聚集了过多公共资源", "但是因为聚集了过多的公共资源", (12, 0, 0, 2)),
    ("我用iPhone打电话", "我用IPHONE打电话", (11, 0, 0, 0)),  # compute-cer is case-insensitive
    ("今天天气很好", "今天<unk>天气很好", (6, 0, 0, 0)),  # its tags are not speech
    ("《红楼梦》是一本书", "红楼梦是一部书", (7, 1, 0, 0)),
])
def test_aishell_cer_is_wenet_compute_cer(ref, hyp, counts):
    """The aishell-cer preset's CER counts (N, S, D, I) are what WeNet's tools/compute-cer.py (its
    AISHELL-1 recipe's scorer) prints for these pairs (benchmarks/fidelity.py --against wenet-cer:
    12 pairs, difference 0; where our rule folds more, e.g. traditional characters, it says so)."""
    from uniaudio.benchmark import metrics as M
    from uniaudio.benchmark.protocols import PROTOCOLS

    (got,) = M.get("cer", **PROTOCOLS["aishell-cer"].metric_options["cer"]).score([M.Sample("x", ref_text=ref,
                                                                                             hyp_text=hyp)])
    assert (got["cer_N"], got["cer_S"], got["cer_D"], got["cer_I"]) == counts


def test_fleurs_preset_is_whispers_notebook_recipe():
    """The `fleurs` preset's corpus WER and CER equal Whisper's notebook recipe: its
    BasicTextNormalizer on every reference and transcript, then jiwer over the two lists
    (benchmarks/fidelity.py --against jiwer: 6 lines in five languages, difference 0)."""
    import jiwer
    from whisper.normalizers import BasicTextNormalizer

    from uniaudio.benchmark import metrics as M
    from uniaudio.benchmark.protocols import PROTOCOLS

    pairs = [("L'été dernier, nous sommes allés à Paris.", "l'été dernier nous sommes allé a paris"),
             ("今天是2024年12月6日，天气很好。", "今天是二零二四年十二月六日天气很好"),
             ("Ça coûte 20 € — trop cher !", "ça coûte vingt euros trop cher")]
    basic = BasicTextNormalizer()
    for name, rate in (("wer", jiwer.wer), ("cer", jiwer.cer)):
        m = M.get(name, **PROTOCOLS["fleurs"].metric_options[name])
        ours = m.aggregate(m.score([M.Sample(str(i), ref_text=r, hyp_text=h) for i, (r, h) in enumerate(pairs)]))
        assert ours[name] == pytest.approx(rate([basic(r) for r, _ in pairs], [basic(h) for _, h in pairs]))


def test_seed_tts_eval_zh_preset_names_paraformer_and_is_nan_without_it():
    """The zh suites' preset: CER by Paraformer-zh through FunASR. Without FunASR (or its model
    offline) each item is NaN with what to install or fetch, never another ASR's number."""
    import numpy as np

    from uniaudio.benchmark.metrics.base import Sample
    from uniaudio.benchmark.metrics.wer import WER
    from uniaudio.benchmark.protocols import PROTOCOLS
    from uniaudio.benchmark.suites.base import SUITES

    opts = PROTOCOLS["seed-tts-eval-zh"].metric_options["wer"]
    assert opts["asr_backend"] == "funasr" and opts["asr_model"] == "paraformer-zh" and opts["language"] == "zh"
    assert SUITES["seed-tts-eval-zh"].preset == SUITES["seed-tts-eval-hard"].preset == "seed-tts-eval-zh"
    (res,) = WER(**opts).score([Sample(id="x", ref_text="你好", hyp_audio=np.zeros(16000, np.float32))])
    assert isinstance(res, Exception) and ("pip install funasr" in str(res) or "paraformer-zh" in str(res))
