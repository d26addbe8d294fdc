"""KL taggers (PANNs CNN14, AST), VGGish/CNN14 FAD embedders: the real loading code on tiny
checkpoints built and saved here, front ends checked against independent implementations."""

import math

import numpy as np
import pytest
import torch

from uniaudio import audio, manifest
from uniaudio.manifest import Record
from uniaudio.benchmark import metrics as M


def tone(freq, seconds=2.0, sr=32000, seed=0):
    t = np.arange(int(seconds * sr)) / sr
    noise = np.random.default_rng(seed).standard_normal(len(t)) * 0.01
    return (0.3 * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_cnn14(tmp_path_factory):
    """A CNN14 with narrow blocks, saved in the PANNs checkpoint layout (torchlibrosa's
    front-end buffers included, which the loader must skip)."""
    from uniaudio.benchmark.nets.cnn14 import Cnn14

    torch.manual_seed(0)
    net = Cnn14(widths=(4, 4, 8, 8, 8, 8), embed_dim=16, n_classes=5).eval()
    for m in net.modules():  # scale-preserving init, and non-trivial batch-norm statistics so loading them matters
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.05, 0.05)
            m.running_var.uniform_(0.8, 1.2)
    with torch.no_grad():  # dB-scale input statistics (as trained ones are), and sharper labels for KL to see
        net.bn0.running_mean.fill_(-50.0)
        net.bn0.running_var.fill_(400.0)
        net.fc_audioset.weight.mul_(3.0)
    state = net.to_panns_state_dict()
    state["model"]["spectrogram_extractor.stft.conv_real.weight"] = torch.zeros(513, 1, 1024)
    state["model"]["logmel_extractor.melW"] = torch.zeros(513, 64)
    path = tmp_path_factory.mktemp("panns") / "Cnn14_tiny.pth"
    torch.save(state, path)
    return path, net


def test_cnn14_front_end_matches_librosa():
    import librosa

    from uniaudio.benchmark.nets.cnn14 import Cnn14

    net = Cnn14(widths=(4, 4, 4, 4, 4, 4), embed_dim=8, n_classes=3)
    x = tone(440)
    want_mel = librosa.filters.mel(sr=32000, n_fft=1024, n_mels=64, fmin=50, fmax=14000)
    assert np.abs(net.mel.numpy() - want_mel).max() < 1e-6
    power = np.abs(librosa.stft(x, n_fft=1024, hop_length=320, window="hann", center=True, pad_mode="reflect")) ** 2
    want = 10 * np.log10(np.maximum(want_mel @ power, 1e-10)).T
    got = net.logmel(torch.from_numpy(x)[None])[0].numpy()
    assert got.shape == want.shape and np.abs(got - want).max() < 1e-3


def test_cnn14_checkpoint_loads_and_tagger_matches_the_net(tiny_cnn14):
    from uniaudio.benchmark import taggers

    path, net = tiny_cnn14
    tagger = taggers.get("cnn14", model=str(path))
    x = tone(1000)
    with torch.no_grad():
        want = net(torch.from_numpy(x)[None])[0][0].double().numpy()
    assert np.allclose(tagger.logits(x, 32000), want, atol=1e-5)
    card = tagger.card()
    assert card["test_model"] is True and len(card["checksum"]) == 64 and card["tagger_sample_rate"] == 32000


def test_kl_metric_equals_hand_computation_and_rejects_bad_input(tiny_cnn14, tmp_path):
    from uniaudio.benchmark.metrics.kl import kl, softmax

    path, net = tiny_cnn14
    m = M.get("kl", model=str(path))
    ref, gen = tone(440), tone(3000, seed=1)
    paths = {k: str(audio.save(tmp_path / f"{k}.wav", w, 32000)) for k, w in (("ref", ref), ("gen", gen))}

    def sample(uid, r, g):
        return M.Sample(uid, ref_audio=audio.load(r, 16000)[0], hyp_audio=audio.load(g, 16000)[0],
                        paths={"ref_audio": r, "hyp_audio": g})

    same, diff = m.score([sample("same", paths["ref"], paths["ref"]), sample("diff", paths["ref"], paths["gen"])])
    assert same["kl"] == pytest.approx(0.0, abs=1e-12)
    with torch.no_grad():  # the files as read back (16-bit), through the net directly
        lr, lg = (net(torch.from_numpy(audio.load(paths[k], 32000)[0])[None])[0][0].double().numpy() for k in ("ref", "gen"))
    assert diff["kl"] == pytest.approx(kl(softmax(lr), softmax(lg)), rel=1e-5) and diff["kl"] > 0

    silent = M.Sample("z", ref_audio=ref[:16000], hyp_audio=np.zeros(16000, np.float32))
    short = M.Sample("s", ref_audio=ref[:16000], hyp_audio=ref[:1000])
    r_silent, r_short = m.score([silent, short])
    assert "silent" in str(r_silent) and "shorter than" in str(r_short)
    assert m.card()["direction"] == "KL(reference || generated)" and m.card()["sample_rate"] == 32000


def test_ast_tagger_through_transformers(tmp_path):
    from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification

    from uniaudio.benchmark import taggers

    torch.manual_seed(0)
    cfg = ASTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                    max_length=64, num_mel_bins=32, num_labels=6)
    model = ASTForAudioClassification(cfg).eval()
    model.save_pretrained(tmp_path / "ast")
    fe = ASTFeatureExtractor(num_mel_bins=32, max_length=64)
    fe.save_pretrained(tmp_path / "ast")
    t = taggers.get("ast", model=str(tmp_path / "ast"))
    x = tone(500, 1.0, 16000)
    with torch.no_grad():
        want = model(**fe(x, sampling_rate=16000, return_tensors="pt")).logits[0].double().numpy()
    assert t.logits(x, 16000).shape == (6,) and np.allclose(t.logits(x, 16000), want, atol=1e-6)
    assert t.card()["test_model"] is True


def test_vggish_front_end_and_tiny_checkpoint(tmp_path):
    from transformers.audio_utils import mel_filter_bank

    from uniaudio.benchmark import embedders
    from uniaudio.benchmark.nets.vggish import VGGish, examples, tf_mel_matrix

    # the TF reference's mel matrix (triangles in mel space, 1127 ln(1 + f/700)) from an independent implementation
    want = mel_filter_bank(257, 64, 125, 7500, 16000, norm=None, mel_scale="kaldi", triangularize_in_mel_space=True)
    assert np.abs(tf_mel_matrix() - want).max() < 1e-9
    assert examples(np.zeros(100)).shape == (0, 96, 64) and examples(tone(300, 2.0, 16000)).shape == (2, 96, 64)

    torch.manual_seed(0)
    net = VGGish(widths=(2, 4, 4, 4, 8, 8), hidden=16, dim=12).eval()
    torch.save(net.state_dict(), tmp_path / "vggish-tiny.pth")
    emb = embedders.get("vggish", model=str(tmp_path / "vggish-tiny.pth"))
    x = tone(300, 3.0, 16000)
    frames = emb.embed(x, 16000)
    with torch.no_grad():
        direct = net(torch.from_numpy(examples(x))).double().numpy()
    assert frames.shape == (3, 12) and np.allclose(frames, direct, atol=1e-6)
    assert (frames < 0).any()  # taken before the last ReLU, as fadtk does
    assert emb.note["test_model"] is True


def test_cnn14_clip_embedder(tiny_cnn14):
    from uniaudio.benchmark import embedders

    emb = embedders.get("cnn14", model=str(tiny_cnn14[0]))
    assert emb.embed(tone(440, 1.0), 32000).shape == (1, 16)


def test_missing_tagger_weights_name_the_download(tmp_path, monkeypatch):
    from uniaudio.benchmark import taggers
    from uniaudio.models import ModelNotFound

    monkeypatch.setenv("UNIAUDIO_MODELS", str(tmp_path))
    with pytest.raises(ModelNotFound, match=r"curl -L -o .*Cnn14_mAP=0.431.pth"):
        taggers.get("cnn14")


def test_tta_with_kl_and_fad_on_tiny_models(tiny_cnn14, tmp_path, demo_root):
    """The whole tta task offline: KL with the tiny CNN14 (ground truth = 0 on every item,
    shuffled > 0), FAD with the CNN14 clip embedder failing with a clear reason on a set
    smaller than its dimension."""
    from uniaudio import manifest
    from uniaudio.benchmark.runner import run
    from uniaudio.pipeline.recipes import records

    suite = tmp_path / "suite"
    manifest.write_manifest(suite / "tta.parquet", list(records("audiocaps", demo_root / "audiocaps")))
    opts = {"kl": {"model": str(tiny_cnn14[0])}, "fad": {"embedder": "cnn14", "model": str(tiny_cnn14[0])}}
    (gt,) = run(["tta"], "ground-truth", str(suite), None, tmp_path / "out", progress=False, metric_options=opts)
    (sh,) = run(["tta"], "shuffled", str(suite), None, tmp_path / "out", progress=False, metric_options=opts)
    assert gt["metrics"]["kl"]["items_failed"] == 0 and gt["metrics"]["kl"]["value"]["kl"] == pytest.approx(0, abs=1e-9)
    assert sh["metrics"]["kl"]["value"]["kl"] > 1e-4 and sh["metrics"]["kl"]["card"]["test_model"] is True
    fad = gt["metrics"]["fad"]
    assert math.isnan(fad["value"]["fad"]) and "more frames than dimensions" in fad["error"]


def test_fad_with_vggish_and_the_cache_follows_the_weights(tmp_path, demo_root):
    """FAD through the runner with a tiny VGGish: ground truth 0, reference stats cached on
    the second run, and recomputed when the embedder's weights change under the same path."""
    import os

    from uniaudio import manifest
    from uniaudio.benchmark.nets.vggish import VGGish
    from uniaudio.benchmark.runner import run
    from uniaudio.pipeline.recipes import records

    suite = tmp_path / "suite"
    manifest.write_manifest(suite / "tta.parquet", list(records("audiocaps", demo_root / "audiocaps")))
    ckpt = tmp_path / "vggish.pth"

    def save(seed):
        torch.manual_seed(seed)
        torch.save(VGGish(widths=(2, 4, 4, 4, 8, 8), hidden=16, dim=8).state_dict(), ckpt)
        os.utime(ckpt, (1e9 + seed, 1e9 + seed))  # distinct mtimes even within one clock tick

    opts = {"fad": {"embedder": "vggish", "model": str(ckpt)}}
    save(0)
    first, second = (run(["tta"], "ground-truth", str(suite), None, tmp_path / "out", progress=False,
                         metric_options=opts)[0]["metrics"]["fad"] for _ in range(2))
    assert first["value"]["fad"] == pytest.approx(0, abs=1e-6) and first["card"]["embedder"] == "vggish"
    assert first["value"]["reference_stats_cached"] is False and second["value"]["reference_stats_cached"] is True
    assert first["card"]["test_model"] is True
    save(1)
    third = run(["tta"], "ground-truth", str(suite), None, tmp_path / "out", progress=False, metric_options=opts)[0]
    assert third["metrics"]["fad"]["value"]["reference_stats_cached"] is False


def test_lsd_planted_and_bad_input():
    """LSD: 0 for identical signals; a gain g on the output reads |20 log10 g| dB exactly (every
    bin's log power moves by the same amount); silent or too-short inputs are errors."""
    from uniaudio.benchmark.metrics import MetricError, get

    m = get("lsd")
    x = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    assert m.pair(x, x)["lsd"] == 0.0
    assert m.pair(x, 0.5 * x)["lsd"] == pytest.approx(20 * np.log10(2), abs=1e-6)
    assert m.pair(x, 4.0 * x)["lsd"] == pytest.approx(20 * np.log10(4), abs=1e-6)
    with pytest.raises(MetricError, match="silent"):
        m.pair(x, np.zeros_like(x))
    with pytest.raises(MetricError, match="at least 2048"):
        m.pair(x[:1000], x[:1000])


@pytest.mark.slow
def test_sound_edit_items_and_floor_vs_ceiling(tmp_path):
    """The demo edits are exact (add: target = input + the event; remove: the reverse), the inputs'
    set differs from the targets' set, and the reference edit beats the unedited input on LSD
    and FAD; the tagger / CLAP weights absent here give NaN with the fetch command, not numbers."""
    from uniaudio.benchmark.runner import run
    from uniaudio.benchmark.tasks.sound_edit import sound_edit_items

    items = sound_edit_items(0)
    assert {it["op"] for it in items} == {"add", "remove"} and len({it["id"] for it in items}) == len(items)
    for it in items:
        extra = it["target"] - it["input"] if it["op"] == "add" else it["input"] - it["target"]
        assert np.abs(extra).max() > 0.05 and np.abs(it["target"]).max() <= 0.81
    assert not any(np.array_equal(a["input"], b["target"]) for a in items for b in items)
    suite = tmp_path / "suite"
    rows = []
    for it in items:
        src = audio.save(suite / "in" / f"{it['id']}.wav", it["input"], 16000)
        ref = audio.save(suite / "ref" / f"{it['id']}.wav", it["target"], 16000)
        rows.append(Record(id=it["id"], corpus="demo-sound-edit", split="test", domain="sound", path=str(ref),
                           caption=it["caption"], extra={"input_path": str(src), "instruction": it["instruction"]}))
    manifest.write_manifest(suite / "sound_edit.parquet", rows)
    res = {s: run(["sound_edit"], s, str(suite), None, tmp_path / "out", progress=False)[0]["metrics"]
           for s in ("passthrough", "ground-truth")}
    assert res["ground-truth"]["lsd"]["value"]["lsd"] == 0.0 < res["passthrough"]["lsd"]["value"]["lsd"]
    assert res["ground-truth"]["fad"]["value"]["fad"] < res["passthrough"]["fad"]["value"]["fad"]


def test_the_audioldm_eval_preset_scores_kl_with_the_16k_cnn14_at_16k(tiny_cnn14, tmp_path):
    """audioldm_eval at 16 kHz: CNN14's 16 kHz variant (512/160 STFT, 50-8000 Hz mels) reads the
    files at 16 kHz; FAD on VGGish. A 16 kHz net built here, saved in the PANNs layout."""
    from uniaudio.benchmark import protocols
    from uniaudio.benchmark.metrics.kl import kl, softmax
    from uniaudio.benchmark.nets.cnn14 import Cnn14

    options, record = protocols.resolve("audioldm-eval", None, None)
    assert options == {"fad": {"embedder": "vggish"}, "kl": {"tagger": "cnn14", "sample_rate": 16000}}
    assert record["paper_setting"] and "audioldm_eval" in record["source"]
    torch.manual_seed(1)
    net = Cnn14(widths=(4, 4, 8, 8, 8, 8), embed_dim=16, n_classes=5, sample_rate=16000).eval()
    with torch.no_grad():
        net.bn0.running_mean.fill_(-50.0)
        net.bn0.running_var.fill_(400.0)
        net.fc_audioset.weight.mul_(3.0)
    torch.save(net.to_panns_state_dict(), tmp_path / "Cnn14_16k.pth")
    m = M.get("kl", model=str(tmp_path / "Cnn14_16k.pth"), **{k: v for k, v in options["kl"].items() if k != "tagger"})
    assert m.card()["sample_rate"] == 16000 and m.card()["tagger"] == "panns-cnn14-16k"
    paths = [str(audio.save(tmp_path / f"{k}.wav", w, 32000)) for k, w in (("r", tone(440)), ("g", tone(2500, seed=2)))]
    (row,) = m.score([M.Sample("x", ref_audio=audio.load(paths[0], 16000)[0], hyp_audio=audio.load(paths[1], 16000)[0],
                               paths={"ref_audio": paths[0], "hyp_audio": paths[1]})])
    with torch.no_grad():
        lr, lg = (net(torch.from_numpy(audio.load(p, 16000)[0])[None])[0][0].double().numpy() for p in paths)
    assert row["kl"] == pytest.approx(kl(softmax(lr), softmax(lg)), rel=1e-5) and row["kl"] > 0
