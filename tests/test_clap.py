"""CLAP score through the real transformers loading path, on a tiny CLAP saved here."""

import numpy as np
import pytest

from uniaudio import audio
from uniaudio.benchmark import metrics as M


@pytest.fixture(scope="module")
def tiny_clap(tmp_path_factory):
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor, RobertaTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(["a dog barks loudly", "rain falls on a roof", "a bell rings twice"] * 10,
                            trainers.BpeTrainer(vocab_size=120, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
                                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = RobertaTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                pad_token="<pad>", mask_token="<mask>")
    d = tmp_path_factory.mktemp("tiny-clap")
    torch.manual_seed(0)
    cfg = ClapConfig(text_config=dict(vocab_size=fast.vocab_size, hidden_size=16, num_hidden_layers=1,
                                      num_attention_heads=2, intermediate_size=32, max_position_embeddings=80,
                                      pad_token_id=1),
                     audio_config=dict(depths=[1, 1], num_attention_heads=[1, 2], patch_embeds_hidden_size=8,
                                       hidden_size=16, window_size=8, spec_size=256, num_mel_bins=64,
                                       enable_fusion=False, projection_hidden_size=16),
                     projection_dim=8)
    ClapModel(cfg).save_pretrained(d)
    ClapProcessor(feature_extractor=ClapFeatureExtractor(truncation="rand_trunc"), tokenizer=fast).save_pretrained(d)
    return d


def test_clap_score_equals_direct_cosine(tiny_clap, tmp_path):
    import torch
    from transformers import ClapModel, ClapProcessor

    rng = np.random.default_rng(0)
    wav48 = rng.uniform(-0.3, 0.3, 48000 * 3).astype(np.float32)
    path = audio.save(tmp_path / "x.wav", wav48, 48000)
    m = M.get("clap", model=str(tiny_clap))
    s = M.Sample("x", ref_text="a dog barks", hyp_audio=audio.load(path, 16000)[0], paths={"hyp_audio": str(path)})
    (r,) = m.score([s])

    proc, model = ClapProcessor.from_pretrained(tiny_clap), ClapModel.from_pretrained(tiny_clap).eval()
    x48 = audio.load(path, 48000)[0]
    with torch.no_grad():
        a = model.get_audio_features(**{k: v for k, v in proc(audio=[x48], sampling_rate=48000, return_tensors="pt").items()
                                        if k in ("input_features", "is_longer")})
        t = model.get_text_features(**{k: v for k, v in proc(text=["a dog barks"], return_tensors="pt").items()
                                       if k in ("input_ids", "attention_mask")})
    a, t = getattr(a, "pooler_output", a)[0], getattr(t, "pooler_output", t)[0]
    want = float(torch.nn.functional.cosine_similarity(a, t, dim=0))
    assert r["clap"] == pytest.approx(want, abs=1e-5)
    card = m.card()
    assert card["sample_rate"] == 48000 and len(card["checksum"]) == 64 and card["model"] == str(tiny_clap)
    assert card["test_model"] is True and "NOT comparable" in card["warning"]  # the card says a tiny model was used


def test_clap_long_audio_is_deterministic_and_bad_input_fails(tiny_clap):
    m = M.get("clap", model=str(tiny_clap))
    long = np.random.default_rng(1).uniform(-0.3, 0.3, 16000 * 23).astype(np.float32)  # 3 windows
    s = M.Sample("l", ref_text="rain falls", hyp_audio=long)
    assert m.score([s])[0]["clap"] == m.score([s])[0]["clap"]
    bad = m.score([M.Sample("e", ref_text="  ", hyp_audio=long), M.Sample("s", ref_text="rain", hyp_audio=long[:100])])
    assert "empty text" in str(bad[0]) and "0.1 s" in str(bad[1])


@pytest.mark.slow
def test_tta_task_with_tiny_clap_and_offline_fallback(tiny_clap, tmp_path, demo_root, monkeypatch):
    import json
    import math

    from uniaudio import manifest
    from uniaudio.benchmark.runner import run
    from uniaudio.pipeline.recipes import records

    suite = tmp_path / "suite"
    manifest.write_manifest(suite / "tta.parquet", [r for r in records("audiocaps", demo_root / "audiocaps")
                                                    if r.split in ("val", "test")])
    for system in ("ground-truth", "shuffled"):
        (res,) = run(["tta"], system, str(suite), None, tmp_path / "out", progress=False,
                     metric_options={"clap": {"model": str(tiny_clap)}})
        m = res["metrics"]["clap"]
        assert m["items_failed"] == 0 and -1 <= m["value"]["clap"] <= 1 and m["card"]["model"] == str(tiny_clap)
    # the shuffled floor really hands each item another item's audio
    out = tmp_path / "out" / "outputs" / "shuffled" / "tta"
    ids = sorted(p.stem for p in out.glob("*.wav"))
    assert len(ids) >= 2 and out.joinpath(f"{ids[0]}.wav").read_bytes() != \
        (tmp_path / "out/outputs/ground-truth/tta" / f"{ids[0]}.wav").read_bytes()

    # no weights and no network: every item NaN with the model name and the command that fetches it
    monkeypatch.setenv("UNIAUDIO_MODELS", str(tmp_path / "empty"))
    (res,) = run(["tta"], "ground-truth", str(suite), None, tmp_path / "out2", progress=False,
                 metric_options={"clap": {"model": "laion/clap-htsat-unfused"}})
    assert math.isnan(res["metrics"]["clap"]["value"]["clap"]) and res["metrics"]["clap"]["items_scored"] == 0
    line = json.loads((tmp_path / "out2/results/tta/ground-truth/items.jsonl").read_text().splitlines()[0])
    assert "hf download laion/clap-htsat-unfused" in line["errors"]["clap"]


@pytest.mark.slow
def test_fad_in_tta_cache_and_degradation(tmp_path, demo_root):
    """FAD with the packaged Whisper-encoder embedder: ground truth ~0, a degraded system
    higher, reference statistics cached by content (a changed file gets new statistics)."""
    from uniaudio import manifest
    from uniaudio.benchmark.runner import run
    from uniaudio.benchmark.tasks.se import add_noise
    from uniaudio.pipeline.recipes import records

    suite = tmp_path / "suite"
    rows = [r for r in records("audiocaps", demo_root / "audiocaps")]
    manifest.write_manifest(suite / "tta.parquet", rows)
    (gt,) = run(["tta"], "ground-truth", str(suite), None, tmp_path / "out", progress=False)
    fad_gt = gt["metrics"]["fad"]["value"]
    assert fad_gt["fad"] < 1e-6 and fad_gt["reference_stats_cached"] is False
    assert gt["metrics"]["fad"]["card"]["embedder"] == "whisper-tiny.en-encoder"
    # FAD-inf is reported with it: a number, or NaN with the reason (too few frames per subset)
    assert "fad_inf" in fad_gt and (fad_gt["fad_inf"] == fad_gt["fad_inf"] or "fad_inf_error" in fad_gt)

    noisy = tmp_path / "noisy" / "tta"
    noisy.mkdir(parents=True)
    for k, r in enumerate(rows):
        audio.save(noisy / f"{r.id}.wav", add_noise(audio.load(r.path, 16000)[0], 0.0, k), 16000)
    (bad,) = run(["tta"], str(tmp_path / "noisy"), str(suite), None, tmp_path / "out", progress=False)
    assert bad["metrics"]["fad"]["value"]["fad"] > 1.0 and bad["metrics"]["fad"]["value"]["reference_stats_cached"]
    caches = sorted((tmp_path / "out" / "cache").glob("fad-ref-*.npz"))
    assert len(caches) == 1

    # a reference file changes in place (same path, same process): its statistics must be recomputed
    audio.save(rows[0].path, add_noise(audio.load(rows[0].path, 16000)[0], 10.0, 99), 16000)
    (again,) = run(["tta"], "ground-truth", str(suite), None, tmp_path / "out", progress=False)
    assert again["metrics"]["fad"]["value"]["reference_stats_cached"] is False
    assert len(list((tmp_path / "out" / "cache").glob("fad-ref-*.npz"))) == 2


def test_fad_too_few_frames_is_nan_with_reason(tmp_path, demo_root):
    from uniaudio import manifest
    from uniaudio.benchmark.runner import run
    from uniaudio.pipeline.recipes import records

    suite = tmp_path / "suite"
    manifest.write_manifest(suite / "tta.parquet", list(records("audiocaps", demo_root / "audiocaps"))[:1])
    short = tmp_path / "sys" / "tta"
    short.mkdir(parents=True)
    r = list(records("audiocaps", demo_root / "audiocaps"))[0]
    audio.save(short / f"{r.id}.wav", audio.load(r.path, 16000)[0][:8000], 16000)  # 0.5 s = 25 frames < 384 dims
    (res,) = run(["tta"], str(tmp_path / "sys"), str(suite), None, tmp_path / "out", progress=False)
    import math

    assert math.isnan(res["metrics"]["fad"]["value"]["fad"]) and "more frames than dimensions" in res["metrics"]["fad"]["error"]


def test_clap_fad_embedder_uses_the_same_windows(tiny_clap):
    from uniaudio.benchmark import embedders

    emb = embedders.get("clap", model=str(tiny_clap))
    frames = emb.embed(np.random.default_rng(2).uniform(-0.3, 0.3, 16000 * 23).astype(np.float32), 16000)
    assert frames.shape == (3, 8) and frames.dtype == np.float64  # 23 s -> three 10 s windows
