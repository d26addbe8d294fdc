import json

import numpy as np
import pytest
import torch

from uniaudio import manifest
from uniaudio.config import from_dict
from uniaudio.pipeline.recipes import records
from uniaudio.tokenize import TokenizerError, get
from uniaudio.tokenize.codec_model import Codec, CodecConfig, VectorQuantizer
from uniaudio.train.codec_trainer import CodecTrainConfig, train

TINY = {"channels": 4, "latent_dim": 16, "n_codebooks": 4, "codebook_size": 32}


@pytest.fixture(scope="module")
def train_manifest(demo_root, tmp_path_factory):
    m = tmp_path_factory.mktemp("codec") / "train.parquet"
    manifest.write_manifest(m, list(records("librispeech", demo_root / "LibriSpeech", split="train-clean-100")))
    return m


def cfg(out, m, steps, **kw):
    return from_dict(CodecTrainConfig, {"manifests": [str(m)], "out": str(out), "model": TINY, "steps": steps,
                                        "batch_size": 2, "segment_seconds": 0.5, "log_every": 1,
                                        "checkpoint_every": 1, "threads": 1, "device": "cpu", **kw})


def test_resume_is_bit_exact(tmp_path, train_manifest):
    train(cfg(tmp_path / "straight", train_manifest, 4), progress=False)
    train(cfg(tmp_path / "resumed", train_manifest, 2), progress=False)
    train(cfg(tmp_path / "resumed", train_manifest, 4), progress=False)  # same folder: resumes at step 2
    a = torch.load(tmp_path / "straight/codec.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "resumed/codec.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    log = [json.loads(l) for l in (tmp_path / "resumed/log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4] and all(np.isfinite(r["loss"]) for r in log)
    card = (tmp_path / "resumed/MODEL_CARD.md").read_text()
    assert "4 steps" in card and str(train_manifest) in card and "ljspeech-mini was not used" in card


def test_resume_is_bit_exact_with_lr_schedule_and_codebook_focus(tmp_path, train_manifest):
    kw = {"warmup_steps": 2, "lr_decay_steps": 4, "focus_codebooks": 2, "focus_prob": 0.5}
    train(cfg(tmp_path / "straight", train_manifest, 4, **kw), progress=False)
    train(cfg(tmp_path / "resumed", train_manifest, 3, **kw), progress=False)
    train(cfg(tmp_path / "resumed", train_manifest, 4, **kw), progress=False)
    a = torch.load(tmp_path / "straight/codec.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "resumed/codec.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    log = [json.loads(l) for l in (tmp_path / "resumed/log.jsonl").read_text().splitlines()]
    c = cfg(tmp_path, train_manifest, 4, **kw)
    assert [r["lr"] for r in log] == pytest.approx([c.lr_at(s) for s in range(4)])
    assert "cosine" in (tmp_path / "resumed/MODEL_CARD.md").read_text()


def test_lr_schedule_and_codebook_focus(tmp_path, train_manifest):
    c = cfg(tmp_path, train_manifest, 10, lr=1e-3, warmup_steps=10, lr_decay_steps=110, min_lr_ratio=0.1)
    assert c.lr_at(0) == pytest.approx(1e-4) and c.lr_at(9) == pytest.approx(1e-3)
    assert c.lr_at(60) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5)) and c.lr_at(110) == c.lr_at(500) == pytest.approx(1e-4)
    assert cfg(tmp_path, train_manifest, 10).lr_at(1000) == 3e-4  # defaults: constant
    plain = [cfg(tmp_path, train_manifest, 1).n_q_at(s) for s in range(2000)]
    focus = [cfg(tmp_path, train_manifest, 1, focus_codebooks=3, focus_prob=0.5).n_q_at(s) for s in range(2000)]
    assert set(plain) == {1, 2, 3, 4} and 0.2 < plain.count(3) / 2000 < 0.3  # uniform over 4 codebooks
    assert 0.55 < focus.count(3) / 2000 < 0.7  # 0.5 + 0.5 * 0.25
    # without focus the draw is the one older runs made: their resume is unchanged
    assert plain[:50] == [int(np.random.default_rng([0, s, 7]).integers(1, 5)) for s in range(50)]


@pytest.mark.parametrize("bad, field", [
    ({"lr_decay_steps": 5, "warmup_steps": 5}, "lr_decay_steps"),
    ({"focus_codebooks": 9}, "focus_codebooks"),
    ({"focus_prob": 0.5}, "focus_codebooks"),
    ({"min_lr_ratio": 2.0}, "min_lr_ratio"),
    ({"gain_db": [6, -6]}, "gain_db"),
    ({"gain_db": [-6]}, "gain_db"),
    ({"gain_db": [-60, 0]}, "gain_db"),
    ({"gain_db": ["loud", 0]}, "gain_db"),
])
def test_schedule_config_errors_name_the_field(tmp_path, train_manifest, bad, field):
    from uniaudio.config import ConfigError

    with pytest.raises(ConfigError, match=field):
        cfg(tmp_path, train_manifest, 1, **bad)


def test_istft_decoder_trains_resumes_and_round_trips(tmp_path, train_manifest):
    model = {**TINY, "decoder": "istft", "decoder_dim": 16, "decoder_layers": 2}
    train(cfg(tmp_path / "straight", train_manifest, 3, model=model), progress=False)
    train(cfg(tmp_path / "resumed", train_manifest, 2, model=model), progress=False)
    train(cfg(tmp_path / "resumed", train_manifest, 3, model=model), progress=False)
    a = torch.load(tmp_path / "straight/codec.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "resumed/codec.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert "istft" in (tmp_path / "resumed/MODEL_CARD.md").read_text()
    tok = get("uniaudio-codec", checkpoint=str(tmp_path / "resumed/codec.pt"), n_codebooks=2)
    for n in (320, 16000, 16000 + 123):
        wav = np.random.default_rng(n).standard_normal(n).astype(np.float32) * 0.1
        codes = tok.encode(wav, 16000)
        assert codes.shape == (2, -(-n // 320)) and 0 <= codes.min() and codes.max() < 32
        assert abs(len(tok.decode(codes)) - n) < 320


def test_unknown_decoder_is_a_config_error(tmp_path, train_manifest):
    from uniaudio.config import ConfigError

    with pytest.raises(ConfigError, match="model.decoder"):
        cfg(tmp_path, train_manifest, 1, model={**TINY, "decoder": "wavenet"})
    with pytest.raises(ValueError, match="unknown codec decoder"):
        Codec(CodecConfig(decoder="wavenet"))


def test_init_from_a_checkpoint_and_old_runs_still_resume(tmp_path, train_manifest):
    from uniaudio.train.codec_trainer import init_weights

    train(cfg(tmp_path / "src", train_manifest, 2), progress=False)
    fresh = Codec(CodecConfig(**TINY))
    init_weights(fresh, str(tmp_path / "src/codec.pt"))  # inference checkpoint: no EMA state
    src = torch.load(tmp_path / "src/codec.pt", weights_only=True)["model"]
    state = fresh.state_dict()
    assert all(torch.equal(state[k], src[k]) for k in src)
    assert torch.equal(state["quantizer.layers.0.ema_sum"], src["quantizer.layers.0.codebook"])
    train(cfg(tmp_path / "ft", train_manifest, 1, init_from=str(tmp_path / "src/codec.pt")), progress=False)
    assert "initialised from" in (tmp_path / "ft/MODEL_CARD.md").read_text()
    with pytest.raises(RuntimeError, match="differs"):
        init_weights(Codec(CodecConfig(**{**TINY, "latent_dim": 8})), str(tmp_path / "src/codec.pt"))
    with pytest.raises(FileNotFoundError, match="init_from"):
        init_weights(fresh, str(tmp_path / "missing.pt"))
    # a run saved before the decoder fields existed resumes under today's defaults
    ck = torch.load(tmp_path / "src/last.pt", weights_only=True)
    for k in ("decoder", "decoder_dim", "decoder_layers"):
        del ck["train_config"]["model"][k]
    torch.save(ck, tmp_path / "src/last.pt")
    train(cfg(tmp_path / "src", train_manifest, 3), progress=False)
    assert torch.load(tmp_path / "src/last.pt", weights_only=True)["step"] == 3


def test_preload_crops_equal_disk_crops_and_train_the_same(tmp_path, train_manifest):
    from uniaudio.train.codec_trainer import CropSampler

    disk = CropSampler([str(train_manifest)], 16000, 0.5, seed=3)
    mem = CropSampler([str(train_manifest)], 16000, 0.5, seed=3, preload=True)
    assert mem.cache is not None and len(mem.cache) == len(disk.items)
    for step in range(5):  # 16 kHz FLAC: no resampling, so the very same samples
        assert torch.equal(disk.batch(step, 3)[0], mem.batch(step, 3)[0])
    train(cfg(tmp_path / "disk", train_manifest, 2), progress=False)
    train(cfg(tmp_path / "mem", train_manifest, 2, preload=True), progress=False)
    a = torch.load(tmp_path / "disk/codec.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "mem/codec.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_gain_augmentation_scales_the_same_crops_within_range_and_never_clips(tmp_path, train_manifest):
    from uniaudio.train.codec_trainer import CropSampler

    plain = CropSampler([str(train_manifest)], 16000, 0.5, seed=3, preload=True)
    aug = CropSampler([str(train_manifest)], 16000, 0.5, seed=3, preload=True, gain_db=[-12, 6])
    ratios = []
    for step in range(40):
        a, b = plain.batch(step, 4)[0], aug.batch(step, 4)[0]
        assert float(b.abs().max()) <= 0.99 + 1e-6
        for x, y in zip(a, b):  # the same crop, scaled by one gain
            g = float(y.abs().max() / x.abs().max())
            assert torch.allclose(y, x * g, atol=1e-6)
            ratios.append(20 * np.log10(g))
            if g < 0.99 / float(x.abs().max()) - 1e-3:  # not capped by the peak: inside the range
                assert -12 - 1e-3 <= ratios[-1] <= 6 + 1e-3
    assert min(ratios) < -8 and max(ratios) > 2  # the range is used, not one fixed gain
    assert torch.equal(aug.batch(7, 4)[0], aug.batch(7, 4)[0])  # a pure function of (seed, step): resume stays exact
    # trains and resumes bit-exactly with augmentation on
    train(cfg(tmp_path / "straight", train_manifest, 3, gain_db=[-6, 3]), progress=False)
    train(cfg(tmp_path / "resumed", train_manifest, 2, gain_db=[-6, 3]), progress=False)
    train(cfg(tmp_path / "resumed", train_manifest, 3, gain_db=[-6, 3]), progress=False)
    a = torch.load(tmp_path / "straight/codec.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "resumed/codec.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert "random gain -6..+3 dB" in (tmp_path / "resumed/MODEL_CARD.md").read_text()


def test_unreadable_crops_are_left_out_counted_and_stop_the_run_by_default(tmp_path):
    from uniaudio import audio
    from uniaudio.train.codec_trainer import CropSampler
    from uniaudio.train.common import UnreadableData

    good = audio.save(tmp_path / "good.wav", np.sin(np.arange(16000) / 5).astype(np.float32) * 0.3, 16000)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF" + b"\0" * 100)  # not audio, but its row claims a duration: found at crop time
    recs = [manifest.Record(id=p.stem, corpus="t", split="train", domain="speech", path=str(p), duration=1.0)
            for p in (good, bad)]
    manifest.write_manifest(tmp_path / "m.parquet", recs)
    for preload in (False, True):
        strict = CropSampler([str(tmp_path / "m.parquet")], 16000, 0.5, seed=0, preload=preload)
        with pytest.raises(UnreadableData, match="bad.wav"):  # no silent zeros, no substitute file
            for step in range(20):
                strict.batch(step, 8)
        lenient = CropSampler([str(tmp_path / "m.parquet")], 16000, 0.5, seed=0, preload=preload, max_bad_share=0.9)
        x, unreadable = lenient.batch(0, 8)
        assert len(unreadable) > 0 and all(p == str(bad) for p, _ in unreadable)
        assert x.shape == (8 - len(unreadable), 8000) and bool((x.abs().amax(1) > 0.1).all())


def test_codec_run_over_missing_files_fails_before_step_one_naming_them(tmp_path, train_manifest):
    from uniaudio.train.common import UnreadableData

    rows = list(manifest.iter_records(train_manifest))
    rows[1].path = str(tmp_path / "gone-1.flac")
    rows[3].path = str(tmp_path / "gone-3.flac")
    manifest.write_manifest(tmp_path / "m.parquet", rows)
    with pytest.raises(UnreadableData, match=r"2 of \d+ files .*gone-1\.flac \(missing\).*gone-3\.flac"):
        train(cfg(tmp_path / "run", tmp_path / "m.parquet", 2), progress=False)
    assert not (tmp_path / "run/last.pt").exists() and not (tmp_path / "run/log.jsonl").exists()
    # opting in trains on the rest and says so in the card
    train(cfg(tmp_path / "run", tmp_path / "m.parquet", 1, skip_missing_files=True), progress=False)
    assert "2 unreadable and left out" in (tmp_path / "run/MODEL_CARD.md").read_text()


def test_manifest_built_in_one_folder_trains_from_another(tmp_path, demo_root, monkeypatch):
    """Relative paths typed in one working directory keep working from any other."""
    import shutil

    corpus = tmp_path / "work" / "corpora"
    shutil.copytree(demo_root / "LibriSpeech" / "train-clean-100", corpus / "LibriSpeech" / "train-clean-100")
    monkeypatch.chdir(tmp_path / "work")
    manifest.write_manifest("ls.parquet", records("librispeech", "corpora/LibriSpeech"))
    monkeypatch.chdir(tmp_path)  # elsewhere
    res = train(cfg(tmp_path / "run", tmp_path / "work" / "ls.parquet", 1), progress=False)
    assert res["step"] == 1
    first = json.loads((tmp_path / "run/log.jsonl").read_text().splitlines()[0])
    assert first["loss"] < 100  # real audio; silence gave a loss of ~5e7


def test_device_is_validated(tmp_path, train_manifest):
    from uniaudio.config import ConfigError
    from uniaudio.train.common import resolve_device

    with pytest.raises(ConfigError, match="device"):
        cfg(tmp_path, train_manifest, 1, device="tpu")
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA device"):
            resolve_device("cuda")


def test_resume_with_another_model_is_refused(tmp_path, train_manifest):
    train(cfg(tmp_path / "o", train_manifest, 1), progress=False)
    bad = cfg(tmp_path / "o", train_manifest, 2)
    bad.model.channels = 8
    with pytest.raises(RuntimeError, match="use a new out folder"):
        train(bad, progress=False)


def test_quantizer_init_ema_and_dead_code_restart():
    torch.manual_seed(0)
    vq = VectorQuantizer(dim=4, size=8, decay=0.9, dead_threshold=1.0).train()
    x = torch.randn(256, 4) + 10.0  # data far from zero
    vq(x)
    assert bool(vq.initialized) and vq.codebook.mean().item() > 5  # k-means on the data
    vq.ema_count[3] = 0.0  # code 3 unused
    vq.codebook[3] = -100.0
    vq(x)
    assert vq.codebook[3].mean().item() > 5  # restarted on a current vector


def test_beam_search_rvq_is_greedy_at_width_one_and_never_further_from_the_latent():
    torch.manual_seed(0)
    m = Codec(CodecConfig(channels=4, latent_dim=8, codebook_size=16)).train()
    m(torch.randn(4, 6400) * 0.1, n_q=8)  # k-means init of every codebook
    m.eval()
    z = m.encoder(m.pad(torch.randn(2, 9600) * 0.1))
    rvq = m.quantizer
    greedy = rvq(z, 4)[1]
    assert torch.equal(rvq.beam_codes(z, 4, 1), greedy)

    def err(codes):  # squared latent error per frame
        return (rvq.decode(codes) - z).pow(2).sum(1)

    wide = rvq.beam_codes(z, 4, 8, chunk=7)  # odd chunk: frames split across chunks
    assert wide.shape == greedy.shape and wide.dtype == torch.long and 0 <= wide.min() and wide.max() < 16
    assert (err(wide) <= err(greedy) + 1e-6).all()
    assert err(wide).mean() < err(greedy).mean()  # it finds better paths, not just greedy's
    assert torch.equal(rvq.beam_codes(z, 4, 8, chunk=7), wide)  # deterministic
    x = torch.randn(1, 3200) * 0.1
    assert torch.equal(m.encode(x, 3, beam=1), m.encode(x, 3))
    with pytest.raises(ValueError, match="beam"):
        m.encode(x, 3, beam=0)


def test_tokenizer_round_trip_lengths_and_errors(tmp_path, train_manifest):
    train(cfg(tmp_path / "t", train_manifest, 1), progress=False)
    tok = get("uniaudio-codec", checkpoint=str(tmp_path / "t/codec.pt"), n_codebooks=3)
    assert (tok.sample_rate, tok.frame_rate, tok.n_codebooks) == (16000, 50.0, 3)
    rng = np.random.default_rng(0)
    for sr in (16000, 22050, 24000):
        for n in (sr, int(1.37 * sr)):
            codes = tok.encode(rng.uniform(-0.3, 0.3, n).astype(np.float32), sr)
            native = round(n * 16000 / sr)
            assert codes.shape == (3, -(-native // 320)) and 0 <= codes.min() and codes.max() < 32
            assert abs(len(tok.decode(codes)) - native) <= 320  # within one frame
    with pytest.raises(TokenizerError, match="at least"):
        tok.encode(np.zeros(100, np.float32), 16000)
    with pytest.raises(TokenizerError, match="NaN"):
        tok.encode(np.full(16000, np.nan, np.float32), 16000)
    with pytest.raises(TokenizerError, match="out of range"):
        tok.decode(np.full((3, 5), 32))
    with pytest.raises(FileNotFoundError, match="uniaudio train codec"):
        get("uniaudio-codec", checkpoint=str(tmp_path / "none.pt"))
    for bad in (0, 2.5, True):
        with pytest.raises(TokenizerError, match="beam"):
            get("uniaudio-codec", checkpoint=str(tmp_path / "t/codec.pt"), beam=bad)
    wide = get("uniaudio-codec", checkpoint=str(tmp_path / "t/codec.pt"), n_codebooks=3, beam=4)
    assert wide.version != tok.version and "beam4" in wide.version
    wav = rng.uniform(-0.3, 0.3, 16000).astype(np.float32)
    codes = wide.encode(wav, 16000)
    assert codes.shape == tok.encode(wav, 16000).shape and abs(len(wide.decode(codes)) - 16000) <= 320


def test_model_shapes_at_default_size():
    m = Codec(CodecConfig())
    assert m.config.hop == 320 and sum(p.numel() for p in m.parameters()) * 4 < 20 * 2**20  # fits the 20 MB budget
    y, codes, _ = m(torch.zeros(2, 16000 + 17), n_q=3)
    assert y.shape == (2, 16017) and codes.shape == (2, 3, 51)


def test_inference_checkpoint_drops_ema_state_and_decodes_the_same():
    torch.manual_seed(0)
    m = Codec(CodecConfig(channels=4, latent_dim=8, codebook_size=16)).train()
    m(torch.randn(2, 3200) * 0.1, n_q=8)  # k-means init + one EMA update
    m.eval()
    full, small = m.checkpoint(), m.checkpoint(inference=True)
    assert not any(k.endswith((".ema_sum", ".ema_count")) for k in small["model"]) and len(small["model"]) < len(full["model"])
    x = torch.randn(1, 3200) * 0.1
    a, b = Codec.from_checkpoint(full), Codec.from_checkpoint(small)
    assert torch.equal(a.encode(x, 3), b.encode(x, 3)) and torch.equal(a.decode(a.encode(x, 3)), b.decode(b.encode(x, 3)))
    broken = {"config": small["config"], "model": {k: v for k, v in small["model"].items() if "decoder" not in k}}
    with pytest.raises(RuntimeError, match="does not match its config"):
        Codec.from_checkpoint(broken)


def test_shipped_default_checkpoint_is_a_trained_codec(demo_root):
    from uniaudio import audio
    from uniaudio.benchmark.metrics.intrusive import log_mel
    from uniaudio.tokenize.uniaudio_codec import DEFAULT_CHECKPOINT

    assert DEFAULT_CHECKPOINT.stat().st_size <= 20 * 2**20
    card = DEFAULT_CHECKPOINT.with_name("MODEL_CARD.md").read_text()
    assert "ljspeech-mini" in card and "codec2" in card
    tok = get("uniaudio-codec")  # no arguments: the shipped weights, 3 codebooks
    r = sorted(records("librispeech", demo_root / "LibriSpeech"), key=lambda r: r.id)[0]
    wav = audio.load(r.path, 16000)[0]
    codes = tok.encode(wav, 16000)
    assert codes.shape == (3, -(-len(wav) // 320)) and 0 <= codes.min() and codes.max() < 1024
    out = tok.decode(codes)
    assert abs(len(out) - len(wav)) < 320
    n = min(len(out), len(wav))
    torch.manual_seed(0)
    untrained = Codec(CodecConfig()).eval()
    rand = untrained.decode(untrained.encode(torch.from_numpy(wav)[None], 3))[0].numpy()
    trained_err = np.abs(log_mel(wav[:n]) - log_mel(out[:n])).mean()
    random_err = np.abs(log_mel(wav[:n]) - log_mel(rand[:n])).mean()
    assert trained_err < 0.6 * random_err, (trained_err, random_err)


def test_adversarial_training_resumes_bit_exact_and_logs_gan_losses(tmp_path, train_manifest):
    kw = {"adv_weight": 1.0, "feat_weight": 2.0, "adv_start": 1, "disc_channels": 4}
    train(cfg(tmp_path / "straight", train_manifest, 3, **kw), progress=False)
    train(cfg(tmp_path / "resumed", train_manifest, 2, **kw), progress=False)
    train(cfg(tmp_path / "resumed", train_manifest, 3, **kw), progress=False)
    a = torch.load(tmp_path / "straight/last.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed/last.pt", weights_only=True)
    for part in ("model", "disc"):
        assert a[part].keys() == b[part].keys() and all(torch.equal(a[part][k], b[part][k]) for k in a[part])
    log = [json.loads(l) for l in (tmp_path / "resumed/log.jsonl").read_text().splitlines()]
    assert "d_loss" not in log[0] and all(np.isfinite(r[k]) for r in log[1:] for k in ("d_loss", "adv", "feat"))
    assert "adversarial" in (tmp_path / "resumed/MODEL_CARD.md").read_text()
    # a run saved without a discriminator goes on with a fresh one when the config enables it
    train(cfg(tmp_path / "plain", train_manifest, 1), progress=False)
    train(cfg(tmp_path / "plain", train_manifest, 2, **kw), progress=False)
    assert torch.load(tmp_path / "plain/last.pt", weights_only=True)["disc"] is not None
    with pytest.raises(Exception, match="adv_weight"):
        cfg(tmp_path, train_manifest, 1, adv_weight=-1.0)


@pytest.mark.slow
def test_discriminator_learns_real_from_fake_and_feature_matching_is_zero_on_real():
    from uniaudio.train.codec_losses import MultiScaleSTFTDiscriminator, discriminator_loss, generator_losses

    torch.manual_seed(0)
    disc = MultiScaleSTFTDiscriminator(channels=8)
    t = torch.arange(8000) / 16000
    real = torch.stack([0.5 * torch.sin(2 * torch.pi * f * t) for f in (220.0, 330.0, 440.0, 550.0)])
    fake = 0.3 * torch.randn(4, 8000)
    outs = disc(real)
    assert len(outs) == 3 and all(logits.shape[0] == 4 and len(feats) == 5 for logits, feats in outs)
    opt = torch.optim.Adam(disc.parameters(), 1e-3)
    with torch.no_grad():
        first = float(discriminator_loss(disc, real, fake))
    for _ in range(30):
        loss = discriminator_loss(disc, real, fake)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first, (first, loss.item())
    with torch.no_grad():
        adv, feat = generator_losses(disc, real, real.clone())
        adv_fake, feat_fake = generator_losses(disc, real, fake)
    assert float(feat) == 0.0 and float(adv) >= 0.0
    assert float(feat_fake) > 0.1 and float(adv_fake) > float(adv)  # the trained D scores noise as fake


def test_generator_losses_reach_the_codec_but_not_the_discriminator_weights():
    from uniaudio.train.codec_losses import MultiScaleSTFTDiscriminator, generator_losses

    torch.manual_seed(0)
    disc = MultiScaleSTFTDiscriminator(channels=4)
    real, fake = torch.randn(2, 4000), torch.randn(2, 4000, requires_grad=True)
    adv, feat = generator_losses(disc, real, fake)
    (adv + feat).backward()
    assert fake.grad is not None and float(fake.grad.abs().sum()) > 0
    assert all(p.grad is None and p.requires_grad for p in disc.parameters())
