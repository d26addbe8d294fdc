import math

import numpy as np
import pytest

from uniaudio.benchmark.tasks import mmlu
from uniaudio.benchmark.metrics.kl import paired_kl


def test_kl_equals_hand_computation():
    ref = {"a": np.log([0.5, 0.25, 0.25]), "b": np.log([0.9, 0.05, 0.05]), "only_ref": np.zeros(3)}
    gen = {"a": np.log([0.25, 0.5, 0.25]) + 7.0, "b": np.log([0.9, 0.05, 0.05]), "only_gen": np.zeros(3)}
    res = paired_kl(ref, gen)  # logits are shift-invariant under softmax: the +7 must not matter
    want_a = 0.5 * math.log(0.5 / 0.25) + 0.25 * math.log(0.25 / 0.5) + 0.25 * math.log(1.0)
    assert res["items"]["a"] == pytest.approx(want_a) and res["items"]["b"] == pytest.approx(0.0, abs=1e-12)
    assert res["kl"] == pytest.approx(want_a / 2) and res["pairs"] == 2
    assert res["unpaired_reference"] == ["only_ref"] and res["unpaired_generated"] == ["only_gen"]


def test_kl_bad_logits_are_nan_with_reason():
    res = paired_kl({"x": np.array([0.0, np.nan]), "y": np.zeros(3)}, {"x": np.zeros(2), "y": np.zeros(4)})
    assert math.isnan(res["items"]["x"]) and "non-finite" in res["errors"]["x"]
    assert "shapes" in res["errors"]["y"] and math.isnan(res["kl"]) and res["pairs"] == 0


def write_mmlu(root, subjects=("anatomy", "world_religions"), n_test=4):
    rng = np.random.default_rng(0)
    for split, n in (("dev", 5), ("test", n_test)):
        (root / "data" / split).mkdir(parents=True, exist_ok=True)
        for s in subjects:
            rows = []
            for i in range(n):
                ans = "ABCD"[rng.integers(4)]
                rows.append(f'"Question {i} about {s}, with a comma?",one,two,three,four,{ans}')
            (root / "data" / split / f"{s}_{split}.csv").write_text("\n".join(rows) + "\n")
    return root


class Planted:
    """Prefers the right letter: reads it from a lookup of the test questions."""

    def __init__(self, data):
        self.key = {mmlu.format_example(q, False): q.answer for _, (_, test) in data.items() for q in test}

    def loglikelihood(self, context, continuations):
        tail = context.rsplit("\n\n", 1)[-1]
        return [0.0 if c.strip() == self.key[tail] else -5.0 for c in continuations]


def test_prompt_format_and_planted_model(tmp_path):
    data = mmlu.load(write_mmlu(tmp_path))
    dev, test = data["anatomy"]
    p = mmlu.prompt(test[0], dev[:5])
    assert p.startswith("The following are multiple choice questions (with answers) about anatomy.\n\n")
    assert p.endswith("Question 0 about anatomy, with a comma?\nA. one\nB. two\nC. three\nD. four\nAnswer:")
    assert p.count("Answer:") == 6 and f"Answer: {dev[0].answer}\n\n" in p
    res = mmlu.evaluate(Planted(data), data)
    assert res["accuracy"] == 1.0 and res["questions"] == 8 and res["aggregation"].startswith("micro")
    always_a = type("A", (), {"loglikelihood": lambda self, c, conts: [0.0, -1.0, -1.0, -1.0]})()
    res_a = mmlu.evaluate(always_a, data)
    truth = [q.answer for _, (_, t) in data.items() for q in t]
    assert res_a["accuracy"] == pytest.approx(truth.count("A") / len(truth))


@pytest.mark.parametrize("line,match", [("q,a,b,c,d", "expected 6 columns"), ("q,a,b,c,d,E", "answer must be one of A-D")])
def test_malformed_csv(tmp_path, line, match):
    root = write_mmlu(tmp_path)
    bad = root / "data" / "test" / "anatomy_test.csv"
    bad.write_text(bad.read_text() + line + "\n")
    with pytest.raises(mmlu.MMLUFormatError, match=f"anatomy_test.csv line 5: {match}"):
        mmlu.load(root)


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    """A tiny Llama + tokenizer built here and saved with save_pretrained (hubs are closed)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    d = tmp_path_factory.mktemp("tiny-llama")
    corpus = [mmlu.prompt(q, dev[:5]) for dev, test in mmlu.load(write_mmlu(d / "mmlu")).values() for q in test]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    from tokenizers import decoders

    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    fast.save_pretrained(d / "model")
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=fast.vocab_size, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096,
                                 bos_token_id=1, eos_token_id=2)).save_pretrained(d / "model")
    return d


def test_hf_causal_lm_loglikelihood_matches_independent_computation(tiny_llama):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    data = mmlu.load(tiny_llama / "mmlu")
    lm = mmlu.HFCausalLM(str(tiny_llama / "model"))
    dev, test = data["world_religions"]
    ctx = mmlu.prompt(test[1], dev[:5])
    ours = lm.loglikelihood(ctx, [" A", " B", " C", " D"])

    tok = AutoTokenizer.from_pretrained(tiny_llama / "model")
    model = AutoModelForCausalLM.from_pretrained(tiny_llama / "model").eval()
    for cont, got in zip([" A", " B", " C", " D"], ours):
        ids = tok(ctx + cont).input_ids
        n = len(ids) - len(tok(ctx).input_ids)
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0]
        want = sum(torch.log_softmax(logits[i - 1], -1)[ids[i]].item() for i in range(len(ids) - n, len(ids)))
        assert got == pytest.approx(want, abs=1e-4)
    res = mmlu.evaluate(lm, data, limit=2)
    assert res["questions"] == 4 and 0.0 <= res["accuracy"] <= 1.0
    assert set(res["per_subject"]) == {"anatomy", "world_religions"}


@pytest.mark.slow
def test_benchmark_mmlu_command(tiny_llama, tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    bench = Path(sys.executable).parent / "benchmark"
    out = subprocess.run([str(bench), "mmlu", "--data", str(tiny_llama / "mmlu"), "--model", str(tiny_llama / "model"),
                          "--limit", "1", "--out", str(tmp_path / "r.json")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "micro average" in out.stdout and json.loads((tmp_path / "r.json").read_text())["questions"] == 2
    assert json.loads((tmp_path / "r.json").read_text())["n_parameters"] > 0 and " parameters)" in out.stdout
    bad = subprocess.run([str(bench), "mmlu", "--data", str(tmp_path), "--model", "x"], capture_output=True, text=True)
    assert bad.returncode == 1 and "no test/ folder" in bad.stderr


def test_mmlu_task_through_the_runner(tiny_llama, tmp_path):
    """`benchmark run --task mmlu`: the lm:MODEL system's answers equal mmlu.evaluate's
    predictions on the same model; ground truth scores 100% on every subject; per-subject
    keys come out of the aggregate."""
    from uniaudio import manifest
    from uniaudio.benchmark.runner import run

    suite = tmp_path / "suite"
    manifest.write_manifest(suite / "mmlu.parquet", mmlu.records(tiny_llama / "mmlu"))
    model = str(tiny_llama / "model")
    (res,) = run(["mmlu"], f"lm:{model}", str(suite), None, tmp_path / "out", progress=False)
    want = mmlu.evaluate(mmlu.HFCausalLM(model), mmlu.load(tiny_llama / "mmlu"))
    value = res["metrics"]["accuracy"]["value"]
    assert value["accuracy"] == pytest.approx(want["accuracy"])
    for subject, per in want["per_subject"].items():
        assert value[f"accuracy_{subject}"] == pytest.approx(per["accuracy"])
    assert res["system_card"]["model"] == model and res["system_card"]["n_parameters"] > 0
    (gt,) = run(["mmlu"], "ground-truth", str(suite), None, tmp_path / "out", progress=False)
    assert gt["metrics"]["accuracy"]["value"] == {"accuracy": 1.0, "accuracy_anatomy": 1.0, "accuracy_world_religions": 1.0}


def test_accuracy_metric_reads_letters_and_counts_missing_outputs_as_failures():
    from uniaudio.benchmark import metrics as M

    m = M.get("accuracy")
    got = m.score([M.Sample(str(i), hyp_text=h, ref_text="B", group="g") for i, h in
                   enumerate(["B", " (B) two", "B. two", "A", "I think it is B", ""])])
    assert [g["accuracy"] for g in got] == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]  # no leading letter = a wrong answer
    assert got[0]["accuracy_g"] == 1.0


def test_demo_mmlu_data_is_well_formed():
    data = mmlu.load(mmlu.DEMO)
    assert len(data) == 3 and all(len(dev) == 5 and len(test) == 5 for dev, test in data.values())
    assert len(mmlu.records(mmlu.DEMO)) == 15


@pytest.mark.slow
def test_chance_lm_is_the_same_model_in_every_process():
    """The chance baseline is rebuilt per run; its vocabulary must not depend on a process's
    hash order (tokenizers' ByteLevel.alphabet() comes back in a different order each time)."""
    import subprocess
    import sys

    code = ("from uniaudio.benchmark import systems; from uniaudio.benchmark.tasks import mmlu; "
            "r = mmlu.records(mmlu.DEMO)[0]; "
            "print(mmlu.answer(systems.ChanceLM().load(), r.text)[1])")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
            for _ in range(2)}
    assert len(outs) == 1, outs


def test_bos_follows_the_tokenizer_as_lm_eval_0_4_13_does(tiny_llama, tmp_path):
    """A Llama tokenizer that prepends <s> (a template post-processor): by default its BOS is in
    every encoding (lm-eval 0.4.13: add_bos_token=None leaves it to the tokenizer), text that
    starts with <s> gets no second one, and add_bos_token=False is the older rule (none)."""
    from tokenizers import Tokenizer, processors
    from transformers import PreTrainedTokenizerFast

    src = tiny_llama / "model"
    tok = Tokenizer.from_file(str(src / "tokenizer.json"))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    bos_dir = tmp_path / "bos-llama"
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
                            ).save_pretrained(bos_dir)
    for f in src.iterdir():
        if not f.name.startswith(("tokenizer", "special_tokens")):
            (bos_dir / f.name).write_bytes(f.read_bytes())
    default, never = mmlu.HFCausalLM(str(bos_dir)), mmlu.HFCausalLM(str(bos_dir), add_bos_token=False)
    assert default.encode("Answer: A")[0] == 1 and never.encode("Answer: A")[0] != 1
    assert default.encode("<s>Answer")[:2] != [1, 1]  # already there: not added twice
    assert default.settings()["bos_added"] and not never.settings()["bos_added"]
    data = mmlu.load(tiny_llama / "mmlu")
    dev, test = data["world_religions"]
    ctx = mmlu.prompt(test[1], dev[:5])
    a, b = default.loglikelihood(ctx, [" A", " B"]), never.loglikelihood(ctx, [" A", " B"])
    assert a != pytest.approx(b, abs=1e-6)  # the BOS changes the log-likelihoods (the reported finding)

