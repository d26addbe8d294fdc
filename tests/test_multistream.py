"""The compact trainer, part 2 (issue 23): UniAudio 2.0's multi-stream model with a Llama as
its middle blocks and LoRA adapters."""

import numpy as np
import pytest
import torch

from uniaudio.tokenize.vocab import Vocabulary
from uniaudio.train.llm import LoRALinear, apply_lora, llama_shape, load_llama, merged_state_dict
from uniaudio.train.model import ModelConfig, MultiStreamLM


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    """A tiny Llama saved with save_pretrained (hubs are closed): the middle to load."""
    from transformers import LlamaConfig, LlamaForCausalLM

    d = tmp_path_factory.mktemp("llama")
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                                 rms_norm_eps=1e-5)).save_pretrained(d)
    return d


def build(llama, lora_rank=0, codes=16, k=3):
    v = Vocabulary()
    text = v.add("text", 50)  # the Llama's vocabulary: text id = offset + Llama id
    audio = v.add("audio", codes, codebooks=k)
    shape = llama_shape(str(llama))
    llm_vocab = shape.pop("llm_vocab")
    assert llm_vocab == 50
    cfg = ModelConfig(vocab_size=v.size, n_streams=k, max_rows=128, local_layers=1, kind="multistream",
                      bottom_layers=1, top_layers=1, empty_id=v.id("<empty>"), **shape)
    non_audio = torch.tensor([i for i in range(v.size) if not audio.offset <= i < audio.end])
    torch.manual_seed(1)
    m = MultiStreamLM(cfg, non_audio, codes, audio.offset, llm_text=(text.offset, text.size))
    load_llama(m, str(llama))
    if lora_rank:
        apply_lora(m.blocks, lora_rank, 16.0, 0.0, ("qkv", "o", "gate_up", "down"))
    return v, m


def test_llama_middle_keeps_the_llms_text_loglikelihoods(tiny_llama):
    """Experts at identity: on text, the model's scores over the LLM's vocabulary are the
    Llama's own logits, so its log-likelihoods are unchanged at step 0."""
    from transformers import LlamaForCausalLM

    v, m = build(tiny_llama)
    m.eval()
    tokens = torch.tensor([[3, 17, 42, 8, 25, 11, 30]])
    with torch.no_grad():
        want = LlamaForCausalLM.from_pretrained(tiny_llama).eval()(tokens).logits[0]
        off = v.ranges["text"].offset
        ids = (tokens + off)[..., None].expand(-1, -1, 3)
        h = m.global_forward(ids, torch.arange(tokens.shape[1])[None])
        got = m.text_logits(h)[0, :, -50:]  # the LLM's ids come last in the text head
    assert torch.allclose(got, want, atol=1e-4), (got - want).abs().max()
    assert torch.allclose(got.log_softmax(-1), want.log_softmax(-1), atol=1e-4)


def test_lora_trains_only_adapters_and_experts(tiny_llama):
    v, m = build(tiny_llama, lora_rank=4)
    assert all(isinstance(blk.attn.qkv, LoRALinear) for blk in m.blocks)
    frozen = {n for n, p in m.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith("blocks.") for n in frozen)
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    for name in ("llm_embed.weight", "llm_head.weight", "norm.weight"):  # the LLM's own stay too
        getattr(m, name.split(".")[0]).weight.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-2)
    rng = np.random.default_rng(0)
    rows = v.sequence_rows("tts", [("text", "text", rng.integers(0, 50, 6)),
                                   ("audio", "audio", rng.integers(0, 16, (3, 10)))], 1)
    ids = torch.as_tensor(rows.ids)[None]
    n = ids.shape[1]
    out = m(ids, torch.arange(n)[None], torch.zeros(1, n, dtype=torch.long), torch.as_tensor(rows.loss.astype(bool))[None])
    assert out["valid"][:, :3].any() and out["valid"][:, 3].all()  # audio targets and the text stream
    ((out["loss"] * out["valid"]).sum() / out["valid"].sum()).backward()
    opt.step()
    changed = {n for n, p in m.named_parameters() if not torch.equal(p.detach(), before[n])}
    middle = {n for n in changed if n.startswith("blocks.")}
    assert middle and all(n.endswith((".a", ".b")) for n in middle)  # LoRA only (b moved from zero)
    assert any(n.startswith(("bottom.", "top.")) for n in changed)  # the experts train
    assert not changed & {"llm_embed.weight", "llm_head.weight", "norm.weight"}
    # merged export: the plain model with merged weights computes what the adapted one does
    sd = merged_state_dict(m)
    _, plain = build(tiny_llama)
    plain.load_state_dict(sd)
    m.eval(), plain.eval()
    with torch.no_grad():
        a = m.global_forward(ids, torch.arange(n)[None])
        b = plain.global_forward(ids, torch.arange(n)[None])
    assert torch.allclose(a, b, atol=1e-5)


def test_multistream_flops_equal_flop_counter_mode(tiny_llama):
    from torch.utils.flop_counter import FlopCounterMode

    from uniaudio.train.flops import step_flops

    v, m = build(tiny_llama, lora_rank=4)
    rng = np.random.default_rng(1)
    rows = v.sequence_rows("tts", [("text", "text", rng.integers(0, 50, 6)),
                                   ("audio", "audio", rng.integers(0, 16, (3, 12)))], 1)
    ids = torch.as_tensor(rows.ids)[None]
    n = ids.shape[1]
    doc = torch.zeros(1, n, dtype=torch.long)
    with FlopCounterMode(display=False) as fc:
        out = m(ids, torch.arange(n)[None], doc, torch.as_tensor(rows.loss.astype(bool))[None])
        (out["loss"] * out["valid"]).sum().backward()
    bi, ti = out["rows"]
    n_audio = int((ids[bi, ti, 0] >= v.audio_range().offset).sum())
    assert 0 < n_audio < len(bi)  # the text target rows skip the local decoder
    # the CPU SDPA kernel of the global blocks is invisible to FlopCounterMode: compare the rest
    assert fc.get_total_flops() == step_flops(m, doc, len(bi), dense=True, global_attention=False, n_audio=n_audio)


@pytest.mark.slow
def test_a_multistream_checkpoint_answers_asr_and_tts(sent_out, tmp_path, demo_root):
    """Both directions from one checkpoint through the benchmark's lm-ckpt: system (numbers
    poor after 4 steps; every step real)."""
    from test_lm import TINY_MS, lm_config

    from uniaudio import manifest
    from uniaudio.benchmark.runner import run
    from uniaudio.manifest import Record
    from uniaudio.pipeline.recipes import records
    from uniaudio.train.lm import train

    sent, _ = sent_out
    train(lm_config(sent, tmp_path / "lm", steps=4, model=TINY_MS), progress=False)
    speech = sorted(records("librispeech", demo_root / "LibriSpeech", split="test-clean"), key=lambda r: r.id)[:2]
    rows = [Record(**{**r.__dict__, "extra": {**r.extra, "prompt_path": speech[1 - i].path}}) for i, r in enumerate(speech)]
    manifest.write_manifest(tmp_path / "suite" / "tts.parquet", rows)
    manifest.write_manifest(tmp_path / "suite" / "asr.parquet", speech)
    results = run(["asr", "tts"], f"lm-ckpt:{tmp_path / 'lm'}", str(tmp_path / "suite"), None, tmp_path / "bench",
                  progress=False)
    by_task = {r["task"]: r for r in results}
    for task in ("asr", "tts"):
        wer = by_task[task]["metrics"]["wer"]
        assert wer["items_scored"] == 2 and wer["items_failed"] == 0 and np.isfinite(wer["value"]["wer"]), task
    texts = sorted((tmp_path / "bench" / "outputs" / "lm-ckpt-lm" / "asr").glob("*.txt"))
    assert len(texts) == 2


@pytest.fixture(scope="module")
def mmlu_llama(tmp_path_factory):
    """A tiny Llama with a byte-level BPE tokenizer and MMLU-format data (hubs are closed)."""
    from test_kl_mmlu import write_mmlu
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from uniaudio.benchmark.tasks import mmlu

    d = tmp_path_factory.mktemp("mmlu-llama")
    data = mmlu.load(write_mmlu(d / "mmlu"))
    corpus = [mmlu.prompt(q, dev[:5]) for dev, test in data.values() for q in test]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer, tok.decoder = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>")
    fast.save_pretrained(d / "model")
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=fast.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096)
                     ).save_pretrained(d / "model")
    return d


def test_mmlu_through_the_backbone_is_the_llms_at_step_0(mmlu_llama):
    """The multi-stream model answers MMLU through its backbone by lm-eval's rule; with the
    experts at identity that is the Llama's own answers and log-likelihoods."""
    from transformers import AutoTokenizer

    from uniaudio.benchmark.tasks import mmlu
    from uniaudio.benchmark.backbone import BackboneCausalLM

    data = mmlu.load(mmlu_llama / "mmlu")
    want = mmlu.evaluate(mmlu.HFCausalLM(str(mmlu_llama / "model")), data, limit=2)
    tok = AutoTokenizer.from_pretrained(mmlu_llama / "model")
    v = Vocabulary()
    text = v.add("text", tok.vocab_size)
    audio = v.add("audio", 16, codebooks=3)
    shape = llama_shape(str(mmlu_llama / "model"))
    shape.pop("llm_vocab")
    cfg = ModelConfig(vocab_size=v.size, n_streams=3, max_rows=4096, local_layers=1, kind="multistream",
                      bottom_layers=1, top_layers=1, empty_id=v.id("<empty>"), llm_vocab=text.size, **shape)
    non_audio = torch.tensor([i for i in range(v.size) if not audio.offset <= i < audio.end])
    m = MultiStreamLM(cfg, non_audio, 16, audio.offset, llm_text=(text.offset, text.size))
    load_llama(m, str(mmlu_llama / "model"))
    got = mmlu.evaluate(mmlu.HFCausalLM("backbone", objects=(tok, BackboneCausalLM(m))), data, limit=2)
    assert got["accuracy"] == want["accuracy"] and got["questions"] == 4
    for a, b in zip(got["predictions"], want["predictions"]):
        assert a["prediction"] == b["prediction"]
        assert a["loglikelihoods"] == pytest.approx(b["loglikelihoods"], abs=1e-3)
